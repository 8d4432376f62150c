"""A load generator for tests and benchmarks: a busy device on demand.

``LoadGenerator(cores=1, duty=1.0, kind="cpu", seconds=60)`` runs one worker process per core:
busy CPU arithmetic (``cpu``) or memory-bandwidth copies between two 64 MB buffers
(``memory``), ``duty`` of every ``period_s``, each pinned to its own CPU. It is bounded twice:
every worker stops by itself at its deadline, and also as soon as the process that started it
is gone; ``stop()`` (or leaving the ``with`` block) ends them at once.
"""
from __future__ import annotations

import atexit
import multiprocessing
import os
import time

__all__ = ["LoadGenerator", "KINDS"]

KINDS = ("cpu", "memory")


def _work(kind: str, duty: float, period_s: float, deadline: float, parent: int,
          cpu: int | None) -> None:
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, {cpu})
        except OSError:
            pass
    buffers = None
    if kind == "memory":
        import numpy as np

        buffers = (np.ones(8 << 20), np.empty(8 << 20))          # 2 x 64 MB of float64
    x = 1.0001
    while time.monotonic() < deadline and os.getppid() == parent:
        busy_until = time.monotonic() + duty * period_s
        while time.monotonic() < busy_until:
            if buffers is not None:
                buffers[1][:] = buffers[0]
            else:
                for _ in range(2000):
                    x = x * 1.0000001 + 1e-9
        rest = (1.0 - duty) * period_s
        if rest > 0:
            time.sleep(rest)


class LoadGenerator:
    """Busy work on ``cores`` CPUs (the last ones this process may use), ``duty`` of the time,
    for at most ``seconds``."""

    def __init__(self, cores: int = 1, duty: float = 1.0, kind: str = "cpu",
                 seconds: float = 60.0, period_s: float = 0.1) -> None:
        from hwnas.errors import HwnasError

        if kind not in KINDS:
            raise HwnasError(f"load kind must be one of {', '.join(KINDS)}, got '{kind}'")
        if not (isinstance(cores, int) and cores >= 1):
            raise HwnasError(f"load cores must be a positive integer, got {cores!r}")
        if not 0 < duty <= 1:
            raise HwnasError(f"load duty must be in (0, 1], got {duty!r}")
        if not 0 < seconds <= 24 * 3600 or not 0 < period_s <= 10:
            raise HwnasError("load seconds must be in (0, 86400] and period_s in (0, 10]")
        self.cores, self.duty, self.kind = cores, duty, kind
        self.seconds, self.period_s = seconds, period_s
        self._procs: list = []

    def start(self) -> "LoadGenerator":
        from hwnas._cpus import allowed_cpus

        cpus = list(allowed_cpus() or [])
        ctx = multiprocessing.get_context("spawn")
        deadline = time.monotonic() + self.seconds     # CLOCK_MONOTONIC is system-wide
        for i in range(self.cores):
            cpu = cpus[-1 - (i % len(cpus))] if cpus else None
            p = ctx.Process(target=_work, args=(self.kind, self.duty, self.period_s, deadline,
                                                os.getpid(), cpu), daemon=True)
            p.start()
            self._procs.append(p)
        atexit.register(self.stop)
        return self

    @property
    def running(self) -> bool:
        return any(p.is_alive() for p in self._procs)

    def stop(self) -> None:
        for p in self._procs:
            if p.is_alive():
                p.terminate()
        for p in self._procs:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
                p.join(timeout=5)
        self._procs = []

    def __enter__(self) -> "LoadGenerator":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
