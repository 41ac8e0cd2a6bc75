"""Keeping autograd's per-step temporaries from piling up in glibc's heap.

A backward pass through T recurrent steps makes one gradient of W_hh per step, (G·H × H)
float64 (2 MiB at H = 512, 8 MiB at H = 1024), each freed as soon as it is added up, between
small allocations that live on (the gradients of the states). glibc's malloc serves blocks
above its *dynamic* mmap threshold with mmap only until the first such block is freed; from
then on blocks of that size come from the heap, where the small survivors split every freed
block, so the heap grows by about one gradient per step: a process that needs 300 MiB peaked
at 1 GiB for 300 lags at H = 512 (and grows without bound with the lags). Measured by
benchmarks/bench_memory.py.

:func:`large_temporaries_mapped` fixes the threshold at glibc's initial 128 KiB for the
autograd replays (every large block is then mapped and returned when freed) and afterwards at
32 MiB, the largest value the dynamic threshold takes, so the sweep's BLAS buffers keep coming
from the warm heap (a fixed 128 KiB everywhere doubled the CPU time of a bptt run). A no-op
where the C library is not glibc. The setting is process-wide and stays at 32 MiB after the
first analysis with gradients: a program that calls ``rnngrad.bptt`` keeps that threshold
(glibc's own maximum for its dynamic one), and glibc's dynamic adjustment stops.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
from functools import lru_cache
from typing import Iterator

M_MMAP_THRESHOLD = -3
DURING = 128 * 1024
AFTER = 32 * 1024 * 1024


@lru_cache(maxsize=1)
def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        library = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    if library is None or not hasattr(library, "gnu_get_libc_version"):
        return None
    return library


@contextlib.contextmanager
def large_temporaries_mapped() -> Iterator[None]:
    """Within: blocks of 128 KiB and more are mapped and unmapped (glibc only)."""
    library = _glibc()
    if library is None:
        yield
        return
    library.mallopt(M_MMAP_THRESHOLD, DURING)
    try:
        yield
    finally:
        library.mallopt(M_MMAP_THRESHOLD, AFTER)
