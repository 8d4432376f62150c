"""An emulated device on this machine: TVM's stock RPC server in an emulated root.

``start_emulated_device("aarch64")`` sets the root up when needed (``ensure_root``: cached
after the first time) and starts ``python -m tvm.exec.rpc_server`` with the root's Python
under qemu-user, optionally registered at a tracker under a key. Libraries cross-compiled for
the architecture (the ``rpi4`` target, say) then load, run and are timed there through the
usual ``--rpc`` / ``--tracker`` paths, with no device on the desk.

The timings are the emulator's, not the device's: the server reports that it is emulated
(``hwnas.device_info``), tables and bundles measured through it say so, and predictors,
searches and deploys refuse such tables unless emulated timings are allowed explicitly.

Like a farm's servers, the server runs in its own process group (its session workers are
forked children that keep the port open), and stopping it signals the whole group.
"""
from __future__ import annotations

import logging
import os
import socket
import subprocess
import time
from dataclasses import dataclass

from hwnas.errors import DeviceError
from hwnas.farm.emulated_root import EmulatedRoot, ensure_root
from hwnas.farm.emulated_state import hold_root
from hwnas.farm.local import LOOPBACK, _stop_group, _stop_group_now, free_port
from hwnas.farm.tracker import registered_devices, tracker_summary

__all__ = ["EmulatedDevice", "start_emulated_device"]

log = logging.getLogger("hwnas.farm")


@dataclass
class EmulatedDevice:
    """A running emulated RPC server. Use as a context manager, or call ``stop()``."""

    root: EmulatedRoot
    port: int
    proc: subprocess.Popen
    host: str = LOOPBACK
    tracker: str | None = None          # HOST:PORT it registers at
    key: str | None = None
    log_path: str | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def describe(self) -> str:
        return self.root.describe()

    def wait_ready(self, timeout_s: float = 300.0) -> None:
        """Block until the server accepts connections (and is registered at its tracker)."""
        deadline = time.monotonic() + timeout_s
        while True:
            if not self.alive:
                where = f"; its log: {self.log_path}" if self.log_path else ""
                raise DeviceError(f"the emulated {self.root.arch.name} RPC server on "
                                  f"{self.address} exited with status {self.proc.returncode} "
                                  f"while starting{where}")
            if self._ready():
                return
            if time.monotonic() > deadline:
                raise DeviceError(f"the emulated {self.root.arch.name} RPC server on "
                                  f"{self.address} was not ready within {timeout_s:.0f} s")
            time.sleep(0.5)

    def _ready(self) -> bool:
        if self.tracker:
            host, _, port = self.tracker.rpartition(":")
            try:
                summary = tracker_summary(host, int(port))
            except DeviceError:
                return False
            return any(a.endswith(f":{self.port}") for a in registered_devices(summary, self.key))
        try:
            socket.create_connection((self.host, self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def kill(self) -> None:
        """Kill the server's whole process group at once, as a device that vanishes would."""
        _stop_group_now(self.proc)

    def stop(self, grace_s: float = 5.0) -> None:
        _stop_group(self.proc, grace_s)

    def __enter__(self) -> "EmulatedDevice":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_emulated_device(arch: str = "aarch64", port: int = 0, *, host: str = LOOPBACK,
                          tracker: str | None = None, key: str | None = None,
                          cache_dir: str | os.PathLike | None = None,
                          log_path: str | os.PathLike | None = None,
                          ready_timeout_s: float = 300.0) -> EmulatedDevice:
    """Set up (or reuse) the ``arch`` root and start its RPC server on ``host:port`` (``port``
    0: any free port), registered at ``tracker`` (``HOST:PORT``) under ``key`` when given;
    returns once it serves. Everything is stopped again on failure."""
    if bool(tracker) != bool(key):
        raise DeviceError("an emulated device registers at a tracker under a key: give both")
    if key and ":" in key:
        raise DeviceError(f"a device key has no ':', got '{key}'")
    root = ensure_root(arch, cache_dir)
    port = port or free_port(host)
    args = [str(root.python), "-m", "tvm.exec.rpc_server", "--host", host, "--port", str(port),
            "--port-end", str(port + 1)]
    if tracker:
        args += ["--tracker", tracker, "--key", key]
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    lock = hold_root(root.cache_dir)    # no setup replaces the root under a running server
    try:
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                pass_fds=(lock,))
    finally:
        os.close(lock)
        if log_path:
            out.close()
    device = EmulatedDevice(root, port, proc, host, tracker, key,
                            None if log_path is None else str(log_path))
    t0 = time.perf_counter()
    try:
        device.wait_ready(ready_timeout_s)
    except BaseException:
        device.stop(grace_s=1.0)
        raise
    log.info("emulated %s device serving on %s%s in %.1f s", root.arch.name, device.address,
             f" (key '{key}' at tracker {tracker})" if tracker else "", time.perf_counter() - t0)
    return device
