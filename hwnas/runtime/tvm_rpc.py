"""TVM over RPC: upload the exported library, load it on the device, time it there.

A device that runs hwnas's ``hwnas.device_info`` remote function (an emulated device does)
also says what it is: its machine, its CPU, and whether it is an emulator. A stock TVM RPC
server says nothing, and is taken to be what its target file describes.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

from hwnas.errors import DeviceError
from hwnas.runtime._base import host_description, parse_address
from hwnas.runtime.elf import elf_machine, same_machine
from hwnas.runtime.tvm_local import TVMRuntime

__all__ = ["TVMRPCRuntime"]

log = logging.getLogger(__name__)

_LOOPBACK = ("127.0.0.1", "localhost", "::1")
#: how long a device may take to connect and answer TVM's RPC handshake (seconds)
CONNECT_TIMEOUT_S = 30.0
#: how long one remote operation may take: an upload, a load, one timing call (a timing call
#: is at most ``repeat`` x ``number`` runs of about 1 ms to 1 s each), a run (seconds)
CALL_TIMEOUT_S = 120.0


class TVMRPCRuntime(TVMRuntime):
    """``device`` is ``rpc://host:port`` or ``tracker://host:port/key``."""

    name = "tvm-rpc"
    _uploads = 0                                # libraries sent in this session

    def __init__(self, target, device: str, timeout_s: float | None = None,
                 call_timeout_s: float | None = None) -> None:
        super().__init__(target)
        self.device = device
        self.call_timeout_s = CALL_TIMEOUT_S if call_timeout_s is None else call_timeout_s
        self._tmp = tempfile.TemporaryDirectory(prefix="hwnas-rpc-")
        self._modules: dict[tuple, object] = {}     # file identity → module loaded remotely
        self._lost: str | None = None               # why the session was given up
        before = _socket_fds()
        try:
            self.remote = self._connect(CONNECT_TIMEOUT_S if timeout_s is None else timeout_s)
        except BaseException:                # an unreachable device leaves nothing behind
            self._tmp.cleanup()
            raise
        self._session_fds = _socket_fds() - before  # the session's sockets (Linux)
        self.device_info = _device_info(self.remote)
        self.pin_threads()

    @property
    def address(self) -> str:
        return self.device

    def _connect(self, timeout_s: float):
        from tvm import rpc

        _probe(self.device, timeout_s)
        try:
            if self.device.startswith("rpc://"):
                host, port = parse_address(self.device[len("rpc://"):], "rpc address")
                self._host = host
                return _within(timeout_s, lambda: rpc.connect(host, port, session_timeout=0),
                               f"the RPC server {host}:{port} accepted the connection but did "
                               f"not answer TVM's RPC handshake within {timeout_s:g} s (not a "
                               f"TVM RPC server, or busy serving another client)")
            rest = self.device[len("tracker://"):]
            addr, _, key = rest.partition("/")
            host, port = parse_address(addr, "tracker address")
            self._host = host
            tracker = rpc.connect_tracker(host, port)
            return tracker.request(key, priority=1, session_timeout=0, max_retry=2)
        except DeviceError:
            raise
        except Exception as exc:  # noqa: BLE001  (TVM reports sockets as generic errors)
            raise DeviceError(f"cannot reach RPC {'server' if 'rpc://' in self.device else 'tracker'} "
                              f"{self.device.split('://', 1)[1]}: {_reason(exc)}") from None

    @property
    def emulator(self) -> str | None:
        return self.device_info.get("emulator") or None

    def alive(self) -> bool:
        """Whether the session still answers: tells a lost device from a failing operator."""
        try:
            self._global("runtime.config_threadpool")
            return True
        except Exception:  # noqa: BLE001  (any failure here means the session is gone)
            return False

    def _fail(self, exc: Exception, doing: str) -> DeviceError:
        if self.remote is not None and self.alive():
            return DeviceError(f"the RPC device {self.device} failed {doing}: {_reason(exc)}")
        return DeviceError(f"lost the RPC device {self.device} while {doing}: {_reason(exc)}")

    def _device_api(self):
        if self.remote is None:
            raise DeviceError(self._lost or f"the RPC device {self.device} was closed in this "
                              "session; reconnect to it")
        return self.remote

    def _call(self, doing: str, fn, *args):
        """``fn(*args)`` within ``call_timeout_s``. A device that stops answering is given up
        with one line naming it and the step; its session is not used again (a call left
        waiting on it ends when the device closes the socket)."""
        self._device_api()
        try:
            return _within(self.call_timeout_s, lambda: fn(*args),
                           f"the RPC device {self.device} stopped answering while {doing} "
                           f"(no reply within {self.call_timeout_s:g} s)")
        except DeviceError as exc:
            self._give_up(str(exc))
            raise

    def _give_up(self, why: str) -> None:
        """The device stopped answering: its session is not used again (the next call fails
        with ``why``). Every remote object still held (a loaded module, a VM, a tensor) would
        ask the silent device to free it when released, and wait for it forever: the
        session's sockets are shut first, so that those requests fail at once."""
        self._sever()
        self._lost = why
        self.remote = None
        self._loaded = None
        self._modules.clear()

    def _release(self, held: list) -> None:
        """Drop remote objects within the call deadline. Each release asks the device to free
        the object and waits for its answer, which a silent device never gives; and it waits
        holding Python's lock, so no other thread can step in: a timer signal to this (the
        main) thread wakes the wait and shuts the session's sockets, and the releases left
        fail at once. A device that did not answer is given up, and the next call fails with
        one line naming it; the release itself never raises, as it runs where objects are
        dropped."""
        # given up (the sockets are shut, frees fail at once), or not the main thread (which
        # alone receives signals): dropped as they are
        if self.remote is None or not _alarm_usable():
            held.clear()
            return
        if _drop_within(self.call_timeout_s, held, self._sever):
            self._give_up(f"the RPC device {self.device} stopped answering while releasing "
                          f"remote objects (no reply within {self.call_timeout_s:g} s)")
            log.warning("%s", self._lost)

    def _sever(self) -> None:
        import socket

        for fd in self._session_fds:
            try:
                with socket.socket(fileno=os.dup(fd)) as s:
                    s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _global(self, name: str):
        return self._call(f"looking up '{name}'", self._device_api().get_function, name)

    def _load_module(self, artefact):
        from hwnas.compiler import export_library, library_suffix

        if isinstance(artefact, (str, os.PathLike)):
            path = Path(artefact)
            if not path.is_file():
                raise DeviceError(f"compiled library not found: {path}")
        else:
            path = export_library(artefact, Path(self._tmp.name) / f"mod{library_suffix(self.target)}",
                                  self.target)
        # The server's session keeps every library it loaded until the session ends (its
        # memory grows by about the library's size per load), so a library loaded before is
        # reused, not sent again: whole networks are timed in rounds that revisit each one.
        st = path.stat()
        key = (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino)
        if key not in self._modules:
            self._check_machine(path)
            # A fresh remote name per upload: rewriting a library that the server's session
            # still has mapped (loaded earlier under the same name) crashes it with SIGSEGV.
            self._uploads += 1
            name = f"{self._uploads}-{path.name}"
            remote = self._device_api()
            self._call(f"uploading {path.name}", remote.upload, str(path), name)
            self._modules[key] = self._call(f"loading {path.name}", remote.load_module, name)
        return self._modules[key]

    def _check_machine(self, path: Path) -> None:
        """A library for another machine than the device reports: one line, before upload."""
        device = self.device_info.get("machine")
        built = elf_machine(path)
        if device and built and not same_machine(device, built):
            raise DeviceError(f"{path.name} is built for {built}, but the RPC device "
                              f"{self.device} is {device}: compile it for a target of that "
                              f"architecture")

    def describe(self) -> str:
        text = f"{self.target.description or self.target.name} via TVM RPC {self.device}"
        info = self.device_info
        if self.emulator:
            text += (f" (emulated: {info.get('machine')} under {self.emulator} on "
                     f"{info.get('cpu') or 'this machine'}, {info.get('cpus')} CPUs)")
        elif self._host in _LOOPBACK:
            text += f" (this machine: {host_description()})"
        return f"{text}; {self.target.threads} TVM threads"

    def close(self) -> None:
        held = [self._loaded, self._modules.copy()]
        self._loaded = None
        self._modules.clear()
        self._release(held)
        self.remote = None
        self._tmp.cleanup()


def _device_info(remote) -> dict:
    """What the device reports through ``hwnas.device_info``; {} from a stock TVM server."""
    try:
        report = remote.get_function("hwnas.device_info")
    except Exception:  # noqa: BLE001  (a stock server has no such function)
        return {}
    try:
        info = json.loads(report())
    except Exception:  # noqa: BLE001  (a malformed report is no report)
        return {}
    return info if isinstance(info, dict) else {}


def _within(seconds: float, call, late: str):
    """``call()``, given up with ``DeviceError(late)`` after ``seconds``: TVM's handshake has
    no deadline of its own, and a device that accepts and never answers would block forever.
    The abandoned call ends in its thread when the device closes the socket."""
    import threading

    box: dict = {}

    def run() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:  # noqa: BLE001  (re-raised in the caller's thread)
            # without its traceback: the call's frames hold the session (and a TVM RPC server
            # serves one session at a time) as long as the caller keeps the error
            box["error"] = exc.with_traceback(None)

    worker = threading.Thread(target=run, name="hwnas-rpc-call", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise DeviceError(late)
    if "error" in box:
        raise box["error"]
    return box["value"]


def _alarm_usable() -> bool:
    import signal
    import threading

    return (hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
            and signal.getitimer(signal.ITIMER_REAL)[0] == 0)


def _drop_within(seconds: float, held: list, on_late) -> bool:
    """Clear ``held`` in this (the main) thread; if that takes ``seconds``, ``on_late()`` runs
    from a SIGALRM handler, which interrupts a blocked socket read (TVM's socket layer runs
    Python's signal handlers on EINTR, then retries). True when it fired."""
    import signal

    fired: list = []

    def late(_signum, _frame) -> None:
        if not fired:
            fired.append(True)
            on_late()

    previous = signal.signal(signal.SIGALRM, late)
    try:
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            held.clear()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    finally:
        signal.signal(signal.SIGALRM, previous)
    return bool(fired)


def _socket_fds() -> set[int]:
    """This process's open sockets (empty where ``/proc`` does not list them)."""
    out = set()
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return out
    for name in names:
        try:
            if os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                out.add(int(name))
        except OSError:
            pass
    return out


def _probe(device: str, timeout_s: float) -> None:
    """Open and close a plain socket first: TVM's own connect error does not say why."""
    import socket

    kind, _, rest = device.partition("://")
    host, port = parse_address(rest.partition("/")[0], f"{kind} address")
    what = "server" if kind == "rpc" else "tracker"
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as exc:
        reason = (exc.strerror or str(exc) or type(exc).__name__).lower()
        raise DeviceError(f"cannot reach RPC {what} {host}:{port}: {reason}") from None


def _reason(exc: Exception) -> str:
    text = str(exc).lower()
    for needle, reason in (("refused", "connection refused"), ("reset", "connection reset"),
                           ("timed out", "timed out"), ("broken pipe", "connection lost"),
                           ("closed", "connection closed"), ("no such host", "unknown host"),
                           ("rpccode", "the server closed the connection")):
        if needle in text:
            return reason
    lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()] or [type(exc).__name__]
    return lines[-1][:200]
