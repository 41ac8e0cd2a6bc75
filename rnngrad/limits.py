"""The resource limits every layer shares: how much memory an analysis may take by default.

Torch- and NumPy-free (layer 0), so that the readers in :mod:`rnngrad.io` and the options
the command line imports at start-up read the one default from here.
"""

from __future__ import annotations

# --max-memory when not given: GiB an analysis may hold, estimated before anything is read,
# inflated or allocated.
DEFAULT_MAX_MEMORY_GIB = 8.0
DEFAULT_MAX_BYTES = int(DEFAULT_MAX_MEMORY_GIB * 1024**3)


def gib(count: int | float) -> str:
    """A byte count for people: ``1.5 GiB`` (MiB below one GiB)."""
    if count >= 1024**3:
        return f"{count / 1024**3:.1f} GiB"
    return f"{count / 1024**2:.1f} MiB"


def allocation_failed(exc: BaseException) -> bool:
    """Whether ``exc`` is torch's allocator running out of memory (a RuntimeError that says
    so), as opposed to a bug."""
    if not isinstance(exc, RuntimeError):
        return False
    text = str(exc)
    return "can't allocate memory" in text or "DefaultCPUAllocator" in text or (
        "out of memory" in text.lower())
