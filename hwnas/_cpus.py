"""The CPUs this process may use, as they were before TVM's runtime pinned any thread.

``runtime.config_threadpool`` pins the calling thread to one core. A process spawned from that
thread inherits the one-core mask, so two compile workers, or onnxruntime's two threads, would
share a single core. Pools hand ``allowed_cpus()`` to their workers, which ``restore`` it;
code that starts processes itself runs under ``unpinned()``.
"""
from __future__ import annotations

import contextlib
import os
from typing import Iterator

__all__ = ["allowed_cpus", "current_cpus", "restore", "unpinned"]


def current_cpus() -> tuple[int, ...] | None:
    """The calling thread's CPU mask now (None where affinity is unsupported)."""
    return tuple(sorted(os.sched_getaffinity(0))) if hasattr(os, "sched_getaffinity") else None


_ALLOWED = current_cpus()

# TVM sizes its thread pool once, when first used: TVM_NUM_THREADS workers, or else half the
# logical CPUs on x86 (it assumes two hyper-threads per core), and ``config_threadpool`` can
# only lower that. On a VM whose vCPUs are whole cores (this 2-vCPU host) every "2-thread" TVM
# run was single-threaded, tuning and timing alike. Let the pool reach every CPU allowed; a
# target's ``threads`` then chooses how many run (spawned workers inherit the variable).
if _ALLOWED:
    os.environ.setdefault("TVM_NUM_THREADS", str(len(_ALLOWED)))


def allowed_cpus() -> tuple[int, ...] | None:
    """This process's CPU mask when hwnas was first imported (None where unsupported)."""
    return _ALLOWED


def restore(cpus: tuple[int, ...] | None) -> None:
    """Let this process run on ``cpus`` again (a no-op where affinity is unsupported)."""
    if cpus and hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, cpus)
        except OSError:                  # a CPU went offline: keep the inherited mask
            pass


@contextlib.contextmanager
def unpinned() -> Iterator[None]:
    """Run the block on ``allowed_cpus()``, so that processes it starts get every CPU; the
    calling thread's mask is put back afterwards."""
    before = current_cpus()
    restore(allowed_cpus())
    try:
        yield
    finally:
        restore(before)
