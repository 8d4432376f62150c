"""Spread measurements over every free device a TVM RPC tracker holds under one key.

One thread per device takes the next item from a shared queue, preferring an item from the
library it already has loaded (no second upload). When a device's session dies, the item it was
timing goes back to the queue and the device is dropped; the others carry on. Only when every
device is lost does the run stop, with one ``DeviceError``; what was measured is already saved,
and ``--resume`` continues. Devices that become free later are picked up at the next call.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from hwnas._checks import check_int
from hwnas.errors import DeviceError
from hwnas.farm.device import TrackedDevice, request_device
from hwnas.farm.tracker import free_devices, registered_devices, tracker_summary
from hwnas.runtime._base import Runtime, parse_address
from hwnas.runtime.protocol import DEFAULT_PROTOCOL, Measurement, Protocol

__all__ = ["DeviceFarm", "DeviceMeasurement", "WorkQueue"]

log = logging.getLogger("hwnas.farm")


@dataclass(frozen=True)
class DeviceMeasurement(Measurement):
    """A measurement plus the device (server address) that took it."""

    device: str = ""

    def extra(self) -> dict:
        return {**super().extra(), "device": self.device}


class WorkQueue:
    """Items to measure, shared by the device threads.

    ``take`` waits while the queue is empty but items are still in flight elsewhere: a device
    that dies puts its item back, and someone must be there to take it.
    """

    def __init__(self, items: Sequence) -> None:
        self._todo = list(items)
        self._in_flight = 0
        self._busy: dict[str, int] = {}        # library → items taken from it so far
        self._aborted = False
        self._cond = threading.Condition()

    def take(self, prefer_path: str | None = None):
        with self._cond:
            while not self._todo and self._in_flight and not self._aborted:
                self._cond.wait()
            if not self._todo or self._aborted:
                return None
            item = self._todo.pop(self._pick(prefer_path))
            self._in_flight += 1
            self._busy[item.path] = self._busy.get(item.path, 0) + 1
            return item

    def _pick(self, prefer_path: str | None) -> int:
        """The loaded library first (no upload); else one no other device works on, so that
        devices spread over libraries instead of all uploading the same one; else the first."""
        for i, it in enumerate(self._todo):
            if it.path == prefer_path:
                return i
        return next((i for i, it in enumerate(self._todo) if not self._busy.get(it.path)), 0)

    def done(self) -> None:
        with self._cond:
            self._in_flight -= 1
            self._cond.notify_all()

    def put_back(self, item) -> None:
        with self._cond:
            self._in_flight -= 1
            self._todo.insert(0, item)
            self._cond.notify_all()

    def abort(self) -> None:
        with self._cond:
            self._aborted = True
            self._cond.notify_all()

    @property
    def left(self) -> list:
        with self._cond:
            return list(self._todo)


def _profile_inputs(item) -> dict:
    from hwnas.profile.build import INPUT
    from hwnas.profile.networks import random_input

    return {INPUT: random_input(item.input_shape)}


@dataclass
class _Round:
    """What the device threads of one measuring round share."""

    queue: WorkQueue
    protocol: Protocol
    on_item: Callable[[object, Measurement], None]
    inputs: Callable[[object], dict]
    lock: threading.Lock = field(default_factory=threading.Lock)
    failures: list[BaseException] = field(default_factory=list)

    def fail(self, exc: BaseException) -> None:
        self.failures.append(exc)
        self.queue.abort()


class DeviceFarm(Runtime):
    """All free servers under ``key`` at ``tracker`` (``host:port``), at most ``parallel``."""

    name = "tvm-farm"
    family = "tvm"

    def __init__(self, target, tracker: str, key: str, parallel: int = 0,
                 request_timeout_s: float = 15.0) -> None:
        super().__init__(target)
        self.tracker = parse_address(tracker, "tracker address")
        self.key = key
        self.parallel = check_int(parallel, "devices measuring at once (0: every free one)", 0)
        self.request_timeout_s = request_timeout_s
        self.devices: list[TrackedDevice] = []
        self.used: dict[str, int] = {}          # server → items it measured
        self.lost: list[str] = []
        self._last_error = ""
        self._each = target.name                # one device's description, for table metadata
        if not self.refresh() and not (self._registered() and self._wait_for_one()):
            raise DeviceError(f"no free device under key '{key}' at RPC tracker {tracker} "
                              f"within {request_timeout_s:.0f} s ({self._queue_text()})")

    # ---- devices
    @property
    def address(self) -> str:
        return f"tracker://{self.tracker[0]}:{self.tracker[1]}/{self.key}"

    @property
    def emulator(self) -> str | None:
        """The emulator of any device held (a table measured partly on one is emulated)."""
        return next((d.emulator for d in self.devices if d.emulator), None)

    def _queue_text(self) -> str:
        q = tracker_summary(*self.tracker).get("queue_info", {})
        known = ", ".join(f"{k}: {v['free']} free" for k, v in sorted(q.items())) or "none"
        return f"keys at the tracker: {known}"

    def refresh(self) -> int:
        """Take every free server under the key (up to ``parallel`` in all); returns how many
        devices are held."""
        want = (self.parallel or 1 << 30) - len(self.devices)
        free = free_devices(tracker_summary(*self.tracker), self.key)
        for _ in range(min(want, free)):
            dev = request_device(self.target, self.tracker, self.key, self.request_timeout_s)
            if dev is not None:       # None: it vanished after the tracker counted it
                self._join(dev)
        return len(self.devices)

    def _registered(self) -> int:
        """Servers registered under the key, free or busy."""
        return len(registered_devices(tracker_summary(*self.tracker), self.key))

    def _wait_for_one(self) -> bool:
        """Queue at the tracker for a busy device (e.g. one still finishing a session)."""
        dev = request_device(self.target, self.tracker, self.key, self.request_timeout_s)
        if dev is not None:
            self._join(dev)
        return dev is not None

    def _join(self, dev: TrackedDevice) -> None:
        self.devices.append(dev)
        self.used.setdefault(dev.server, 0)
        self._each = dev.describe()
        log.info("device %s (key %s) joined", dev.server, self.key)

    def _drop(self, dev: TrackedDevice, reason: str) -> None:
        if dev in self.devices:
            self.devices.remove(dev)
            self.lost.append(dev.server)
            self._last_error = reason
            log.warning("device %s lost (%s); %d left under key %s", dev.server, reason,
                        len(self.devices), self.key)
            dev.close()

    # ---- measuring
    def measure_items(self, items: Sequence, protocol: Protocol,
                      on_item: Callable[[object, Measurement], None],
                      inputs: Callable[[object], dict] | None = None) -> None:
        """Time every item (``.path``, ``.func``, ``.input_shape``) somewhere in the farm and
        hand each result to ``on_item`` (called under a lock, one at a time). ``inputs(item)``
        defaults to the profiler's: one seeded random tensor of the item's input shape."""
        todo = list(items)
        while todo:
            self.refresh()                   # devices that became free since the last round
            if not self.devices:
                raise DeviceError(f"all devices under key '{self.key}' at RPC tracker "
                                  f"{self.tracker[0]}:{self.tracker[1]} were lost "
                                  f"({', '.join(self.lost)}; last: {self._last_error}); "
                                  f"{len(todo)} of {len(items)} items unmeasured, the rest "
                                  "are saved; resume the profile to continue")
            rnd = _Round(WorkQueue(todo), protocol, on_item, inputs or _profile_inputs)
            self._run_threads(rnd)
            if rnd.failures:
                raise rnd.failures[0]
            todo = rnd.queue.left

    def _work(self, dev: TrackedDevice, rnd: "_Round") -> None:
        """One device's loop: take, time, report; on a lost session put the item back."""
        while (item := rnd.queue.take(dev.loaded)) is not None:
            try:
                m = dev.sample(item.path, rnd.inputs(item), rnd.protocol, item.func)
            except DeviceError as exc:
                rnd.queue.put_back(item)
                if dev.alive():               # the device answers: the operator itself failed
                    rnd.fail(exc)
                else:
                    with rnd.lock:
                        self._drop(dev, str(exc))
                return
            except BaseException as exc:  # noqa: BLE001  (re-raised in the caller)
                rnd.queue.put_back(item)
                rnd.fail(exc)
                return
            try:
                with rnd.lock:
                    rnd.on_item(item, DeviceMeasurement(m.latency, m.number, m.attempts,
                                                        device=dev.server))
                    self.used[dev.server] += 1
            except BaseException as exc:  # noqa: BLE001
                rnd.fail(exc)
            rnd.queue.done()

    def _run_threads(self, rnd: "_Round") -> None:
        threads = [threading.Thread(target=self._work, args=(d, rnd), daemon=True,
                                    name=f"hwnas-farm-{d.server}") for d in list(self.devices)]
        for t in threads:
            t.start()
        try:
            for t in threads:
                while t.is_alive():
                    t.join(timeout=0.5)   # a timed join lets Ctrl-C through
        except BaseException:
            rnd.queue.abort()
            raise

    def timer(self, artefact, inputs: dict[str, np.ndarray], func: str = "main"):
        raise DeviceError("a device farm spreads whole measurements over its devices; it has "
                          "no timer of one device (interleaved reference timing needs one)")

    def sample(self, artefact, inputs: dict[str, np.ndarray],
               protocol: Protocol = DEFAULT_PROTOCOL, func: str = "main") -> Measurement:
        """One measurement on whichever device is free, moving on when a device is lost."""
        from hwnas.profile.build import BuiltItem

        item = BuiltItem("", str(artefact), func, ())
        out: list[Measurement] = []
        self.measure_items([item], protocol, lambda _i, m: out.append(m), lambda _i: inputs)
        return out[0]

    def run(self, artefact, inputs: dict[str, np.ndarray], func: str = "main") -> list[np.ndarray]:
        while self.devices:
            dev = self.devices[0]
            try:
                return dev.run(artefact, inputs, func)
            except DeviceError as exc:
                if dev.alive():
                    raise
                self._drop(dev, str(exc))
        raise DeviceError(f"no device left under key '{self.key}' at RPC tracker "
                          f"{self.tracker[0]}:{self.tracker[1]} (last: {self._last_error})")

    def describe(self) -> str:
        servers = ", ".join(self.used) or "none"
        return (f"{len(self.used)} device(s) under key '{self.key}' at RPC tracker "
                f"{self.tracker[0]}:{self.tracker[1]} ({servers}); each: {self._each}")

    def tally(self) -> str:
        """Items measured per device in this run, and the devices lost on the way."""
        text = ", ".join(f"{server}: {n}" for server, n in self.used.items())
        return text + (f"; lost: {', '.join(self.lost)}" if self.lost else "")

    def close(self) -> None:
        for dev in self.devices:
            dev.close()
        self.devices = []
