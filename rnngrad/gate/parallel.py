"""``rnngrad check --jobs N``: models measured in parallel processes, results in model order.

Each model's measurement (spectrum + bptt, :func:`rnngrad.gate.check.measure`) is independent
of the others, so N worker processes measure N models at a time. Everything the user sees
comes back in model order: :func:`measured` yields one :class:`Outcome` per model, in order,
whose :meth:`~Outcome.result` returns that model's figures or raises its error (the same
:class:`~rnngrad.errors.RnngradError` subclass, message and hint as ``--jobs 1``), so the
report, its rendering and the exit code are those of a sequential run.

Workers come from a *fork server* (where the OS has one): a fresh process that imports the
analyses, and torch with them, once, before any thread pool starts, and then forks a worker per
job, so N workers cost one torch import, not N; forking the calling process instead could
deadlock on its running torch or OpenMP threads. The server starts with the thread variables
below in its environment and lives as long as the calling process (a later pool reuses it).
Without a fork server (Windows) workers are spawned, fresh interpreters that import torch each.

Threads: a worker gets ``cores // N`` threads (at least one) for torch, OpenMP, MKL and
OpenBLAS, so N workers do not oversubscribe the machine (two 2-thread BLAS pools on 2 busy
cores run several times slower than one). ``--jobs 1`` runs in the calling process, exactly
as before. Memory: ``--max-memory`` bounds each model's process, so N jobs may hold up to N
times that; a worker the system kills is reported as its model's error.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from rnngrad.errors import ResourceError, RnngradError
from rnngrad.limits import allocation_failed

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
# What the fork server imports before it forks workers: the analyses (and torch, NumPy).
PRELOAD = ["rnngrad.gate.check", "rnngrad.bptt.analysis", "rnngrad.spectrum.analysis"]
Progress = Callable[[int, int, str], None]
Measure = Callable[[Any, Any, Progress | None], Any]


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS tells)."""
    counter = getattr(os, "process_cpu_count", None)  # Python 3.13+
    if counter is not None:
        return max(1, counter() or 1)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def threads_per_job(jobs: int, cores: int | None = None) -> int:
    """Threads each of ``jobs`` workers may use so that together they fill the cores once."""
    return max(1, (cores or available_cores()) // max(1, jobs))


@dataclass(frozen=True)
class Outcome:
    """One model's measurement: :meth:`result` gives its figures or raises its error."""

    _get: Callable[[], Any]

    def result(self) -> Any:
        return self._get()


def measured(sources: list[Any], configs: list[Any], *, jobs: int, measure: Measure,
             on_progress: Progress | None = None) -> Iterator[Outcome]:
    """One :class:`Outcome` per source, in order; ``jobs`` > 1 measures in worker processes.

    With one job (or one model) each outcome measures when its result is asked for, in this
    process, with the lag-by-lag progress of ``on_progress``; with more, the workers start at
    once and ``on_progress`` hears of each model as its result is taken, in order.
    """
    jobs = min(jobs, len(sources))
    if jobs <= 1:
        for source, config in zip(sources, configs):
            yield Outcome(lambda source=source, config=config: measure(source, config,
                                                                        on_progress))
        return
    from concurrent.futures import ProcessPoolExecutor

    threads = threads_per_job(jobs)
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=_context(threads),
                               initializer=_limit_threads, initargs=(threads,))
    finished = False
    try:
        futures = [pool.submit(_measure_in_worker, measure, source, config)
                   for source, config in zip(sources, configs)]
        for index, future in enumerate(futures):
            if on_progress:
                on_progress(index, len(futures), str(sources[index]))
            yield Outcome(lambda future=future, source=sources[index]: _result(future, source))
        if on_progress:
            on_progress(len(futures), len(futures), "done")
        finished = True
    finally:  # closed early (an error stops the run, as with --jobs 1): start no more models
        pool.shutdown(wait=True, cancel_futures=not finished)


def _context(threads: int) -> Any:
    """The fork server's context (started with ``threads`` per pool), else spawn's."""
    import multiprocessing

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    from multiprocessing import forkserver

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    with _environment({name: str(threads) for name in THREAD_VARIABLES}):
        forkserver.ensure_running()  # a no-op when this process started it already
    return context


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """``os.environ`` with ``values`` set, restored afterwards (the server inherits it)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _limit_threads(threads: int) -> None:
    """Worker start: thread pools sized to ``threads`` (the variables for what loads later,
    torch's own setting when the fork server has loaded it already)."""
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


@dataclass(frozen=True)
class _Failure:
    """A worker's RnngradError, sent back as plain data (its class, message and hint)."""

    kind: type
    message: str
    hint: str


def _measure_in_worker(measure: Measure, source: Any, config: Any) -> Any:
    try:
        return measure(source, config, None)
    except RnngradError as exc:
        return _Failure(kind=type(exc), message=exc.message, hint=exc.hint)
    except RuntimeError as exc:
        if allocation_failed(exc):  # torch's allocator: the model's error, as MemoryError is
            raise MemoryError(str(exc)) from None
        raise


def _result(future: Any, source: Any) -> Any:
    """A worker's figures, or its error; a worker that died (killed by the system, most
    likely for memory) is that model's error, and the models after it share the pool's fate."""
    from concurrent.futures.process import BrokenProcessPool

    try:
        return _unwrap(future.result())
    except BrokenProcessPool:
        raise ResourceError(f"{source}: a worker process died while measuring it (killed by "
                            "the system, most likely out of memory)",
                            "rerun with --jobs 1, or lower --max-memory (it applies to each "
                            "of the --jobs processes)") from None


def _unwrap(value: Any) -> Any:
    if isinstance(value, _Failure):
        raise value.kind(value.message, value.hint)
    return value
