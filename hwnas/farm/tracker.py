"""Talking to a TVM RPC tracker with TVM's own message helpers, with bounded waits.

``tvm.rpc.connect_tracker`` retries an unreachable tracker for 60 s, logging each try; a
command should say at once that the tracker is not there.
"""
from __future__ import annotations

import socket
import struct
from contextlib import contextmanager
from typing import Iterator

from hwnas.errors import DeviceError

__all__ = ["open_tracker", "tracker_summary", "free_devices", "registered_devices"]


@contextmanager
def open_tracker(host: str, port: int, timeout_s: float = 10.0) -> Iterator[socket.socket]:
    """A connection that has passed the tracker handshake; closed on exit."""
    from tvm.rpc import base

    try:
        sock = socket.create_connection((host, port), timeout=timeout_s)
    except OSError as exc:
        reason = (exc.strerror or str(exc) or type(exc).__name__).lower()
        raise DeviceError(f"cannot reach RPC tracker {host}:{port}: {reason}") from None
    try:
        sock.settimeout(timeout_s)
        try:
            sock.sendall(struct.pack("<i", base.RPC_TRACKER_MAGIC))
            magic = struct.unpack("<i", base.recvall(sock, 4))[0]
        except OSError as exc:
            raise DeviceError(f"RPC tracker {host}:{port} did not answer: {exc}") from None
        if magic != base.RPC_TRACKER_MAGIC:
            raise DeviceError(f"{host}:{port} is not a TVM RPC tracker")
        yield sock
    finally:
        sock.close()


def tracker_summary(host: str, port: int, timeout_s: float = 10.0) -> dict:
    """The tracker's own summary: ``queue_info`` (free/pending per key) and ``server_info``."""
    from tvm.rpc import base

    with open_tracker(host, port, timeout_s) as sock:
        try:
            base.sendjson(sock, [base.TrackerCode.SUMMARY])
            reply = base.recvjson(sock)
        except OSError as exc:
            raise DeviceError(f"lost the RPC tracker {host}:{port}: {exc}") from None
    if reply[0] != base.TrackerCode.SUCCESS:
        raise DeviceError(f"RPC tracker {host}:{port} refused a summary: {reply}")
    return reply[1]


def free_devices(summary: dict, key: str) -> int:
    return int(summary.get("queue_info", {}).get(key, {}).get("free", 0))


def registered_devices(summary: dict, key: str) -> list[str]:
    """Addresses of the servers registered under ``key``, free or busy."""
    return [":".join(map(str, i.get("addr", []))) for i in summary.get("server_info", [])
            if i.get("key") == f"server:{key}"]
