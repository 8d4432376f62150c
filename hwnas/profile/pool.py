"""Compile in worker processes, in waves, so that timing never runs beside a compile.

The parent hands a wave of tasks to the pool, waits for all of them, and only then measures
what they built, alone on the machine. ``workers=0`` builds in-process (small jobs, tests).
"""
from __future__ import annotations

import logging
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Iterable, Iterator, Sequence

from hwnas.errors import ExportError
from hwnas.profile.build import Built, BuildTask, build

__all__ = ["BuildPool", "waves"]

log = logging.getLogger("hwnas.profile")


def _exit_with(parent: int) -> None:
    """End this worker once ``parent`` is gone: a parent killed by SIGTERM (a process
    manager, ``kill``) never closes its pool, and its idle workers (600 MB each) would wait
    on a dead pipe forever."""
    import os
    import time

    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def _init_worker(cpus: tuple[int, ...] | None, parent: int | None = None) -> None:
    import threading

    import torch

    from hwnas._cpus import restore

    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()
    restore(cpus)        # not the one core a TVM-pinned parent thread would hand down
    # One compile per core: more threads per worker only contend with the other workers.
    torch.set_num_threads(1)
    logging.getLogger("hwnas").setLevel(logging.WARNING)


def waves(tasks: Sequence[BuildTask], size: int) -> Iterator[list[BuildTask]]:
    for i in range(0, len(tasks), max(1, size)):
        yield list(tasks[i:i + max(1, size)])


class BuildPool:
    """A spawn-context process pool (TVM and torch are not fork-safe)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            import multiprocessing as mp
            import os

            from hwnas._cpus import allowed_cpus

            self._pool = ProcessPoolExecutor(self.workers, mp_context=mp.get_context("spawn"),
                                             initializer=_init_worker,
                                             initargs=(allowed_cpus(), os.getpid()))
        return self._pool

    def run(self, tasks: Iterable[BuildTask]) -> list[Built]:
        """Build every task and return the results in order, once all have finished."""
        tasks = list(tasks)
        if self.workers <= 0:
            return [build(t) for t in tasks]
        futures = [self._executor().submit(build, t) for t in tasks]
        try:
            return [f.result() for f in futures]
        except BrokenProcessPool:
            self.close()
            raise ExportError("a compile worker process died (out of memory or a crash in TVM); "
                              "resume the run, or compile in-process (0 workers) to see the failure") from None
        except BaseException:               # Ctrl-C or a failed task: stop compiling now
            self.abort()
            raise

    def abort(self) -> None:
        """Stop the workers at once: queued compiles would otherwise run to the end first."""
        if self._pool is not None:
            # The executor offers no public way to stop tasks already handed to a worker.
            for proc in list(getattr(self._pool, "_processes", {}).values()):
                proc.terminate()
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> "BuildPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
