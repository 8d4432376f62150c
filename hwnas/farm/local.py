"""A local device farm: TVM's own RPC tracker plus N TVM RPC servers registered under keys.

This is a thin launcher for tests and demos. Every process is TVM's stock entry point
(``python -m tvm.exec.rpc_tracker`` and ``python -m tvm.exec.rpc_server``), started in its own
process group: the server forks a session worker that keeps the port open when only the parent
dies, so stopping (or killing, to simulate a lost device) always signals the whole group.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field

from hwnas._checks import check_int
from hwnas.errors import DeviceError, HwnasError, TargetError
from hwnas.farm.tracker import free_devices, tracker_summary

__all__ = ["Farm", "FarmServer", "start_farm", "free_port"]

log = logging.getLogger("hwnas.farm")

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """A port the OS reports unused right now (it may be taken again before it is bound)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _spawn(args: list[str], log_path: str | None) -> subprocess.Popen:
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    try:
        return subprocess.Popen([sys.executable, "-m", *args], stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    finally:
        if log_path:
            out.close()


def _stop_group(proc: subprocess.Popen, grace_s: float) -> None:
    """SIGTERM the process group, then SIGKILL what is left after ``grace_s``."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait_s)
            # the leader is gone; the forked session worker may linger in the group
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            break
        except subprocess.TimeoutExpired:
            continue
        break
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        log.warning("process %d did not exit", proc.pid)


@dataclass
class FarmServer:
    key: str
    port: int
    proc: subprocess.Popen
    killed: bool = False          # stopped on purpose (kill_server), not failed

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None


@dataclass
class Farm:
    """A running tracker and its servers. Use as a context manager, or call ``stop()``."""

    port: int
    tracker: subprocess.Popen
    servers: list[FarmServer] = field(default_factory=list)
    host: str = LOOPBACK

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def keys(self) -> list[str]:
        return list(dict.fromkeys(s.key for s in self.servers))

    def summary(self) -> dict:
        return tracker_summary(self.host, self.port)

    def add_server(self, key: str, log_path: str | None = None) -> FarmServer:
        port = free_port(self.host)
        proc = _spawn(["tvm.exec.rpc_server", "--host", self.host, "--port", str(port),
                       "--port-end", str(port + 1), "--tracker", self.address, "--key", key],
                      log_path)
        server = FarmServer(key, port, proc)
        self.servers.append(server)
        return server

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        """Block until every live server is registered (free) at the tracker."""
        want: dict[str, int] = {}
        for s in self.servers:
            want[s.key] = want.get(s.key, 0) + (not s.killed)
        deadline = time.monotonic() + timeout_s
        while True:
            dead = [s for s in self.servers if not s.alive and not s.killed]
            if dead:
                raise DeviceError(f"RPC server for key '{dead[0].key}' on port {dead[0].port} "
                                  f"exited with status {dead[0].proc.returncode} while starting")
            try:
                summary = self.summary()
            except DeviceError:
                summary = {}
            if all(free_devices(summary, k) >= n for k, n in want.items()):
                return
            if time.monotonic() > deadline:
                have = {k: free_devices(summary, k) for k in want}
                raise DeviceError(f"RPC servers did not register at tracker {self.address} within "
                                  f"{timeout_s:.0f} s (free per key {have}, wanted {want})")
            time.sleep(0.5)

    def kill_server(self, server: FarmServer) -> None:
        """Kill one server's whole process group at once, as a device that vanishes would."""
        server.killed = True
        _stop_group_now(server.proc)

    def stop(self, grace_s: float = 5.0) -> None:
        for s in self.servers:
            _stop_group(s.proc, grace_s)
        _stop_group(self.tracker, grace_s)

    def __enter__(self) -> "Farm":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _stop_group_now(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


def _check_free(host: str, port: int) -> None:
    """Refuse a port something already listens on (TVM's tracker would fail to bind it, and a
    connect test would then reach the other process)."""
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError as exc:
            raise DeviceError(f"port {port} on {host} is in use "
                              f"({(exc.strerror or str(exc)).lower()}); choose another") from None


def _wait_listening(host: str, port: int, proc: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DeviceError(f"RPC tracker on {host}:{port} exited with status {proc.returncode}")
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise DeviceError(f"RPC tracker on {host}:{port} did not start within {timeout_s:.0f} s")


def _check_key_runs_here(key: str) -> None:
    """The farm's servers run this machine's code: a key that names a target whose code runs
    elsewhere (``rpi4``, ``server-gpu``) would route that target's profiles to the wrong
    device (profiling takes a key's target from its name), so it is refused."""
    from hwnas.targets import list_targets, load_target

    if key in list_targets() and load_target(key).is_cross:
        raise TargetError(f"key '{key}' names target '{key}', whose code does not run on this "
                          f"machine, where the farm's RPC servers run; give a key of this "
                          f"machine's target (x86-host) or a key no target has, or register "
                          f"an emulated device or the real one under '{key}'")


def start_farm(servers: int, keys: str | list[str] | dict[str, int], port: int = 0,
               log_dir: str | None = None, ready_timeout_s: float = 120.0) -> Farm:
    """Start a tracker on 127.0.0.1 (``port`` 0: any free port) and ``servers`` RPC servers per
    key (a ``{key: count}`` mapping sets the count per key), and wait until all of them are
    registered. Everything is stopped again on failure."""
    if isinstance(keys, str):
        keys = [keys]
    counts = dict(keys) if isinstance(keys, dict) else {k: servers for k in keys}
    if not counts or any(not isinstance(k, str) or not k or ":" in k or isinstance(n, bool)
                         or not isinstance(n, int) or n < 1 for k, n in counts.items()):
        raise HwnasError(f"a farm needs at least 1 server per key and non-empty keys without "
                         f"':', got {counts}")
    for key in counts:
        _check_key_runs_here(key)
    check_int(port, "tracker port (0: any free port)", 0, 65535)
    if port:
        _check_free(LOOPBACK, port)
    port = port or free_port()
    logf = (lambda name: os.path.join(log_dir, name)) if log_dir else (lambda name: None)
    tracker = _spawn(["tvm.exec.rpc_tracker", "--host", LOOPBACK, "--port", str(port),
                      "--port-end", str(port + 1)], logf("tracker.log"))
    farm = Farm(port, tracker)
    try:
        _wait_listening(LOOPBACK, port, tracker, 60.0)
        time.sleep(0.5)
        if tracker.poll() is not None:       # it lost the port to another process after all
            raise DeviceError(f"RPC tracker on {LOOPBACK}:{port} exited with status "
                              f"{tracker.returncode} (port in use?)")
        for key, n in counts.items():
            for i in range(n):
                farm.add_server(key, logf(f"server-{key}-{i}.log"))
        farm.wait_ready(ready_timeout_s)
    except BaseException:
        farm.stop(grace_s=1.0)
        raise
    log.info("tracker %s: %d servers under %s", farm.address, len(farm.servers), ", ".join(counts))
    return farm
