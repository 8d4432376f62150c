"""Other work on the device: how many of its cores something else kept busy while we timed.

A/B timing against a reference network cancels drift that slows both networks alike (a lower
clock, time slices with quiet gaps). It cannot cancel the loss of a whole core to another
process: each network's parallel speed-up then collapses by its own amount, and the
candidate/reference ratio itself can move (from 5% under to 9% over its quiet value, in
the noise benchmark's loaded deploys on a 2-core host with one core held). A timing
made then cannot tell "the device is slower" from "the device is busy". So a local runtime
also counts, over each measurement, the CPU time every other process spent on the cores this
process may use (``/proc/stat``: user, nice, system, irq, softirq and steal, less this
process's own CPU time), as cores: ``1.0`` is one core held for the whole interval.

Runtimes that cannot see the device's other work (TVM RPC) have no probe, and their
measurements say nothing about it.
"""
from __future__ import annotations

from typing import Callable

from hwnas.runtime.bundle_runner import busy_seconds, cores_between, reading

__all__ = ["CpuContention", "ScriptedContention", "BUSY_CORES"]

#: other work holding this many cores or more makes a measurement "contended"
BUSY_CORES = 0.5

class CpuContention:
    """The cores other processes kept busy on this machine since ``start()``: ``cores()``.

    Counted on the CPUs this process may use; our own threads (TVM's pool, onnxruntime's) are
    this process's CPU time and are left out. None where ``/proc/stat`` is unreadable."""

    #: the shortest interval worth counting over (/proc/stat counts in 10 ms ticks): a
    #: measurement under a probe goes on at least this long
    min_window_s = 0.25

    def __init__(self, cpus: tuple[int, ...] | None = None) -> None:
        from hwnas._cpus import allowed_cpus

        self.cpus = cpus if cpus is not None else allowed_cpus()
        self._start: tuple[float, float, float] | None = None

    @staticmethod
    def available() -> bool:
        return busy_seconds(None) is not None

    def start(self) -> "CpuContention":
        self._start = reading(self.cpus)
        return self

    def cores(self) -> float | None:
        """Other work since ``start()``, in cores; None under a few clock ticks (noise)."""
        return cores_between(self._start, reading(self.cpus), 0.05)


class ScriptedContention:
    """A probe whose reading is scripted (tests, the debug device): ``busy(i)`` cores for the
    ``i``-th measurement."""

    min_window_s = 0.0

    def __init__(self, busy: Callable[[int], float]) -> None:
        self.busy = busy
        self.count = 0

    def start(self) -> "ScriptedContention":
        return self

    def cores(self) -> float | None:
        value = float(self.busy(self.count))
        self.count += 1
        return value
