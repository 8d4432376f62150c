"""One device handed out by a TVM RPC tracker: a session on a known server.

``tvm.rpc.TrackerSession.request`` returns a session but not which server it reached. A farm
table records which device measured each entry, so this speaks the same two messages the TVM
client does (``TrackerCode.REQUEST``, then ``rpc.connect`` with the match key the tracker hands
out) and keeps the server's address.
"""
from __future__ import annotations

import socket

from hwnas.errors import DeviceError
from hwnas.farm.tracker import open_tracker
from hwnas.runtime.tvm_rpc import TVMRPCRuntime

__all__ = ["TrackedDevice", "request_device"]


class TrackedDevice(TVMRPCRuntime):
    """A TVM RPC runtime on a session the tracker assigned; ``server`` is ``host:port``."""

    name = "tvm-tracked"

    def __init__(self, target, session, server: str, key: str) -> None:
        self._session = session
        self.server = server
        self.key = key
        super().__init__(target, device=f"rpc://{server}")

    def _connect(self, timeout_s: float):
        self._host = self.server.rpartition(":")[0]
        return self._session

    @property
    def loaded(self) -> str | None:
        """The artefact whose module is loaded on the device now (reused without an upload)."""
        return self._loaded[0] if self._loaded else None


def request_device(target, tracker: tuple[str, int], key: str,
                   timeout_s: float = 15.0) -> TrackedDevice | None:
    """Ask the tracker for one free server under ``key``; None if none came within ``timeout_s``.

    The request waits in the tracker's queue until a server is free, so the wait is bounded
    here; closing the connection on timeout withdraws the request at the tracker.
    """
    from tvm import rpc
    from tvm.rpc import base

    host, port = tracker
    with open_tracker(host, port, timeout_s) as sock:
        try:
            base.sendjson(sock, [base.TrackerCode.REQUEST, key, "", 1])
            reply = base.recvjson(sock)
        except (socket.timeout, TimeoutError):
            return None
        except OSError as exc:
            raise DeviceError(f"lost the RPC tracker {host}:{port}: {exc}") from None
    if reply[0] != base.TrackerCode.SUCCESS:
        raise DeviceError(f"RPC tracker {host}:{port} refused a request for key '{key}': {reply}")
    url, server_port, matchkey = reply[1]
    try:
        session = rpc.connect(url, server_port, matchkey, session_timeout=0)
    except Exception:  # noqa: BLE001  (the server vanished between hand-out and connect)
        return None
    try:
        return TrackedDevice(target, session, f"{url}:{server_port}", key)
    except DeviceError:
        return None
