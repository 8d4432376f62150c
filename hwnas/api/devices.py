"""Devices to measure on when none is at hand: an emulated device of another architecture
(qemu-user, served over TVM RPC), a local TVM RPC farm, and the state of any tracker."""
from __future__ import annotations

import os


def list_emulated_arches() -> list[str]:
    """Architectures an emulated device can have."""
    from hwnas.farm.emulated_arch import EMULATED_ARCHES

    return EMULATED_ARCHES.names()


def emulated_arch(name: str = "aarch64"):
    """The spec of an emulated architecture (``list_emulated_arches()``): its name and the
    targets that run on it."""
    from hwnas.farm.emulated_arch import get_arch

    return get_arch(name)


def _check_emulated(arch: str, port: int, tracker: str | None, key: str | None):
    """The architecture's spec, every serving option checked (before anything is downloaded)."""
    from hwnas._checks import check_int
    from hwnas.errors import TargetError
    from hwnas.runtime import parse_address

    spec = emulated_arch(arch)
    check_int(port, "port", 0, 65535, TargetError)
    if bool(tracker) != bool(key):
        raise TargetError("a tracker and a device key go together")
    if tracker:
        parse_address(tracker, "tracker")
    return spec


def setup_emulated_device(arch: str = "aarch64", cache: str | os.PathLike | None = None, *,
                          port: int = 9090, tracker: str | None = None,
                          key: str | None = None):
    """Set up (once, cached in ``cache``; default ``$HWNAS_CACHE/emulated/<arch>`` or
    ``~/.cache/hwnas/emulated/<arch>``) or check the emulated root of ``arch``: Debian's Python
    and TVM's runtime for it, run by qemu-user. The first run downloads about 150 MB. The
    options it will be served with (``port``, ``tracker`` and ``key``) are checked first.
    Returns ``(arch spec, root)``; the spec names the targets that run on it."""
    from hwnas.farm import ensure_root

    spec = _check_emulated(arch, port, tracker, key)
    return spec, ensure_root(spec.name, cache)


def serve_emulated_device(arch: str = "aarch64", port: int = 9090, *, host: str = "127.0.0.1",
                          tracker: str | None = None, key: str | None = None,
                          cache: str | os.PathLike | None = None,
                          log: str | os.PathLike | None = None):
    """Start TVM's RPC server in the emulated root of ``arch`` on ``host:port`` (0: any free
    port), registered at ``tracker`` under ``key`` when given; returns the running
    ``EmulatedDevice`` (``address``, ``alive``, ``stop()``). Its timings are the emulator's:
    tables and bundles measured through it say so."""
    from hwnas.farm import start_emulated_device

    spec = _check_emulated(arch, port, tracker, key)
    return start_emulated_device(spec.name, port, host=host, tracker=tracker, key=key,
                                 cache_dir=cache, log_path=log)


def start_farm(servers: int = 2, keys: str | list[str] = (), port: int = 9190,
               log_dir: str | os.PathLike | None = None):
    """Start a TVM RPC tracker on 127.0.0.1 (``port`` 0: any free port) and ``servers`` RPC
    servers under each of ``keys``, and wait until all are registered; returns the running
    ``Farm`` (``address``, ``keys``, ``servers``, ``tracker``, ``stop()``)."""
    from hwnas._checks import check_int
    from hwnas.errors import TargetError
    from hwnas.farm import start_farm as _start

    check_int(servers, "servers per key", 1, error=TargetError)
    return _start(servers, keys, port, None if log_dir is None else str(log_dir))


def tracker_status(tracker: str) -> dict:
    """The devices registered at ``tracker`` (``HOST:PORT``): ``{"tracker": "HOST:PORT",
    "keys": {key: {"servers": [addresses], "free": n, "pending": n}}}``, keys sorted."""
    from hwnas.farm import tracker_summary
    from hwnas.runtime import parse_address

    host, port = parse_address(tracker, "tracker")
    summary = tracker_summary(host, port)
    servers: dict[str, list[str]] = {}
    for info in summary.get("server_info", []):
        key = info.get("key", "").partition(":")[2]
        servers.setdefault(key, []).append(":".join(map(str, info.get("addr", []))))
    queue = summary.get("queue_info", {})
    keys = {}
    for key in sorted(set(queue) | set(servers)):
        q = queue.get(key, {"free": 0, "pending": 0})
        keys[key] = {"servers": sorted(servers.get(key, [])), "free": q["free"],
                     "pending": q["pending"]}
    return {"tracker": f"{host}:{port}", "keys": keys}
