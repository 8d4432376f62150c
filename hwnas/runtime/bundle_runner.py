"""``runner.py``, copied into every bundle (not ``model.py``: Python would import the
bundle's ``model.so`` for that name): the bundle's network on TVM's runtime, with a thread
pool that follows the cores other work leaves free. Standard library, numpy and TVM's runtime
only (no hwnas, no TVM compiler), so it runs wherever the bundle's library runs.

    from runner import Model
    net = Model()                  # the folder this file is in
    logits = net(x)                # x shaped like manifest["input"]["shape"]

Why the pool is resized: TVM's workers meet at a barrier after every parallel kernel. When
another process holds one of the pool's cores, each barrier waits for the descheduled
worker's next time slice (milliseconds), once per kernel: on a 2-core host with two busy
processes, a 0.2 ms network took 50-350 ms per call with 2 threads and 0.26 ms with 1.
So the pool is sized to the cores that other processes left idle over the last interval
(``/proc/stat``, less this process's own CPU time), re-checked every ``check_every_s``.
Where ``/proc/stat`` is unreadable the pool keeps its first size.

An idle worker also yields its core up to ``TVM_THREAD_POOL_SPIN_COUNT`` times (300000 by
default) before it sleeps, and each yield to a busy process costs a time slice: under that
load a process took minutes to exit, waiting for such a worker (a resized pool's new workers
spin first). ``SPIN_COUNT`` (2000) bounds that wait to seconds; on a quiet host 200, 2000,
20000 and 300000 read alike within this machine's noise (0.227-0.229 ms on one network;
medians over 12 networks 0.54-0.57x onnxruntime in one run, 0.97x against 0.90x for 200
against 300000 in another). It is set unless the environment sets it, before TVM's pool
first starts.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

__all__ = ["Model", "threads_for", "OtherWork", "busy_seconds", "reading", "cores_between",
           "AFFINITY_BIG", "AFFINITY_SHARE_ALL"]

# threading::ThreadGroup::AffinityMode: kBig pins one worker per core; kSpecifyThreadShareAllCore
# lets every worker run on any of the given cores
AFFINITY_BIG = 1
AFFINITY_SHARE_ALL = -3
# /proc/stat per-CPU fields after the name: user nice system idle iowait irq softirq steal
_BUSY_FIELDS = (0, 1, 2, 5, 6, 7)
#: other work holding less than this share of a core leaves that core free
IDLE_BELOW = 0.25
#: yields of an idle TVM worker before it sleeps
SPIN_COUNT = 2000


def threads_for(cores: int, other_busy: float | None, most: int | None = None) -> int:
    """The pool size for ``cores`` usable cores of which other processes kept ``other_busy``
    busy (in cores; None: unknown, all cores): a core counts as taken once other work holds
    ``IDLE_BELOW`` of it. At least 1, at most ``most``."""
    most = cores if most is None else min(most, cores)
    if other_busy is None:
        return max(1, most)
    taken = max(0, int(-(-(other_busy - IDLE_BELOW) // 1)))      # ceil, after the allowance
    return max(1, min(most, cores - taken))


def busy_seconds(cpus: tuple[int, ...] | None) -> float | None:
    """Seconds the CPUs ``cpus`` (None: all) spent busy since boot, from ``/proc/stat`` (user,
    nice, system, irq, softirq, steal); None where it is unreadable."""
    try:
        lines = Path("/proc/stat").read_text(encoding="ascii").splitlines()
    except OSError:
        return None
    hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total, seen = 0, False
    for line in lines:
        name, _, rest = line.partition(" ")
        if not (name.startswith("cpu") and name[3:].isdigit()):
            continue
        if cpus is not None and int(name[3:]) not in cpus:
            continue
        fields = rest.split()
        try:
            total += sum(int(fields[i]) for i in _BUSY_FIELDS if i < len(fields))
        except ValueError:
            return None
        seen = True
    return total / hz if seen else None


def _cpus() -> tuple[int, ...] | None:
    return tuple(sorted(os.sched_getaffinity(0))) if hasattr(os, "sched_getaffinity") else None


def reading(cpus: tuple[int, ...] | None) -> tuple[float, float, float] | None:
    """(now, busy seconds of ``cpus``, this process's CPU seconds); None where ``/proc/stat``
    is unreadable. Two readings give the cores other processes held between them."""
    busy = busy_seconds(cpus)
    if busy is None:
        return None
    return time.monotonic(), busy, time.process_time()


def cores_between(a, b, min_wall_s: float = 0.0) -> float | None:
    """Cores other processes held between readings ``a`` and ``b`` (clipped at 0: /proc/stat
    counts in ticks); None when either is missing or they lie under ``min_wall_s`` apart."""
    if a is None or b is None:
        return None
    wall = b[0] - a[0]
    if wall <= 0 or wall < min_wall_s:
        return None
    return max(0.0, ((b[1] - a[1]) - (b[2] - a[2])) / wall)


class OtherWork:
    """How many cores other processes kept busy since the previous ``sample()``: the busy time
    of this process's CPUs in ``/proc/stat`` less this process's own CPU time."""

    def __init__(self, cpus: tuple[int, ...] | None = None) -> None:
        self.cpus = cpus
        self._last = reading(cpus)

    def sample(self) -> float | None:
        """Cores held by other processes since the last sample (None: unknown)."""
        now = reading(self.cpus)
        last, self._last = self._last, now
        return cores_between(last, now)


class Model:
    """The bundle in ``folder`` (default: this file's folder) on TVM's CPU runtime.

    ``library`` and ``input_shape`` name a compiled library alone instead of a bundle.
    ``threads``: the most threads its pool may use (default: the CPUs this process may run
    on). ``adaptive``: resize the pool to the cores other work leaves free, looked at every
    ``check_every_s`` seconds of calls; ``threads_now`` is the current size."""

    def __init__(self, folder: str | os.PathLike | None = None, threads: int | None = None,
                 adaptive: bool = True, check_every_s: float = 0.25, *,
                 library: str | os.PathLike | None = None,
                 input_shape: tuple[int, ...] | None = None) -> None:
        os.environ.setdefault("TVM_THREAD_POOL_SPIN_COUNT", str(SPIN_COUNT))
        import numpy as np
        import tvm
        from tvm.runtime.vm import VirtualMachine   # not tvm.relax: that needs the compiler

        self._np = np
        if library is not None:              # a library alone: its input shape is given
            here = Path(library).resolve().parent
            self.manifest = {"input": {"shape": list(input_shape)},
                             "files": {"library": Path(library).name}}
        else:
            here = Path(folder) if folder is not None else Path(__file__).resolve().parent
            self.manifest = json.loads((here / "manifest.json").read_text())
        self.shape = tuple(self.manifest["input"]["shape"])
        device = self.manifest.get("tvm_device", "cpu")    # the target's GPU kind, or cpu
        self.dev = tvm.device(device, 0)
        if not self.dev.exist:
            raise RuntimeError(f"this bundle runs on a {device} device (manifest.json: "
                               "tvm_device), and this machine has none that TVM's runtime "
                               "can use")
        cpus = _cpus()
        self.cores = len(cpus) if cpus else (os.cpu_count() or 1)
        self.most = max(1, min(int(threads or self.cores), self.cores))
        self._shared = self.manifest.get("target", {}).get("affinity") == "shared"
        self._cpus = cpus
        self._config = tvm.get_global_func("runtime.config_threadpool")
        self.adaptive, self.check_every_s = adaptive, check_every_s
        self.threads_now = 0
        self._work = OtherWork(cpus) if adaptive else None
        if self._work is not None:
            time.sleep(0.1)                  # one short look at the host before the first call
        self._resize(self._target_threads())
        self._next_check = time.monotonic() + check_every_s
        lib = tvm.runtime.load_module(str(here / self.manifest["files"]["library"]))
        self._vm = VirtualMachine(lib, self.dev)
        self._main = self._vm["main"]
        # one input buffer on the device, refilled by each call (an allocation per call cost
        # about 10 us, 3-5% of a 0.3 ms network); so one call at a time per Model
        self._input = tvm.runtime.empty(self.shape, "float32", self.dev)

    def _target_threads(self) -> int:
        busy = self._work.sample() if self._work is not None else None
        return threads_for(self.cores, busy, self.most)

    def _resize(self, n: int) -> None:
        if n == self.threads_now:
            return
        if self._shared and self._cpus:
            self._config(AFFINITY_SHARE_ALL, n, [str(c) for c in self._cpus])
        else:
            self._config(AFFINITY_BIG, n)
        self.threads_now = n

    def __call__(self, x):
        """The network's output for ``x`` (a numpy array of the input's shape, or C,H,W). One
        call at a time: the input buffer is shared."""
        if self._work is not None and time.monotonic() >= self._next_check:
            self._resize(self._target_threads())
            self._next_check = time.monotonic() + self.check_every_s
        x = self._np.ascontiguousarray(x, dtype="float32")
        self._input.copyfrom(x if x.shape == self.shape else x.reshape(self.shape))
        return self._main(self._input).numpy()
