"""Devices as data: ``targets/<name>.toml`` → ``Target``.

A target file looks like::

    description = "Raspberry Pi 4B, Cortex-A72, 64-bit OS"
    runtime = "tvm"                      # a runtime kind (hwnas.runtime.RUNTIMES: tvm,
                                         # onnxruntime, debug), checked when connecting
    device = "rpc"                       # "local"; "rpc" (address given when connecting);
                                         # "rpc://host:port"; "tracker://host:port/key"
    threads = 4
    affinity = "pinned"                  # "pinned": one worker per big core (an RPC device's
                                         # default); "shared" (local devices only, their
                                         # default): the workers share every allowed core
    pipeline = "cpu"                     # a name in hwnas.compiler.pipelines.PIPELINES
    [tvm]                                 # the TVM target, dict form
    kind = "llvm"
    mtriple = "aarch64-linux-gnu"
    mcpu = "cortex-a72"
    [host]                                # optional host target for cross builds
    kind = "llvm"
    [export]
    format = "so"                         # "so" or "tar"
    cross_compiler = "aarch64-linux-gnu-gcc"

``mcpu = "native"`` resolves to this machine's CPU (LLVM's name for it) when the target is
first compiled for, measured or written down; listing targets loads no compiler.
"""
from __future__ import annotations

import functools
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hwnas.errors import TargetError

__all__ = ["Target", "load_target", "list_targets", "target_path", "host_cpu"]

EXPORT_FORMATS = ("so", "tar")
#: how TVM's worker threads sit on the cores: "pinned" gives each worker its own (big) core
#: (on big.LITTLE, the big ones); "shared" lets every worker run on any allowed core, so that
#: a core held by other work does not stall every parallel region behind the worker pinned
#: there (the reference network ran x400 slower so, with one of two cores held)
AFFINITIES = ("pinned", "shared")


def target_path(name: str) -> Path | None:
    """``<name>.toml`` in the first data folder that has it (``hwnas._data``), or None."""
    from hwnas import _data

    return _data.find("targets", f"{name}.toml")


def host_cpu() -> str:
    import tvm

    return tvm.target.codegen.llvm_get_system_cpu()


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    tvm_target: dict[str, Any]
    host: dict[str, Any] | None = None
    device: str = "local"
    runtime: str = "tvm"
    threads: int = 1
    affinity: str = "pinned"
    pipeline: str = "cpu"
    export_format: str = "so"
    cross_compiler: str | None = None
    path: str = ""
    extra: dict[str, Any] = field(default_factory=dict)   # other tables: a runtime's own ([debug])

    @functools.cached_property
    def resolved(self) -> dict[str, Any]:
        """``tvm_target`` with ``mcpu = "native"`` replaced by this machine's CPU."""
        return _resolve_native(self.tvm_target)

    @property
    def mcpu(self) -> str:
        """The LLVM CPU the target compiles for ("" for GPU targets)."""
        return str(self.resolved.get("mcpu", ""))

    @property
    def cpu_slug(self) -> str | None:
        """The CPU model as a folder-name part (``znver5``): what keeps one CPU model's
        measurements apart from another's. None without a CPU model (a GPU's arch is fixed by
        its target) or with a name unfit for a folder."""
        mcpu = self.mcpu
        if not mcpu or not all(c.isalnum() or c in "-_." for c in mcpu):
            return None
        return mcpu

    @property
    def is_gpu(self) -> bool:
        return self.tvm_target.get("kind") in ("cuda", "rocm", "vulkan", "opencl", "metal")

    @property
    def tvm_device_type(self) -> str:
        """The TVM device the compiled code runs on, by its runtime name: the GPU's kind
        (``cuda``, ``vulkan``, ...) for a GPU target, else ``cpu``."""
        return self.tvm_target["kind"] if self.is_gpu else "cpu"

    @property
    def is_cross(self) -> bool:
        """True when the artefact cannot run on this machine (another ISA or a GPU)."""
        hostish = self.host or self.tvm_target
        return self.is_gpu or "mtriple" in hostish and not hostish["mtriple"].startswith("x86_64")

    def tvm(self):
        """The ``tvm.target.Target`` object (dict form, host attached)."""
        import tvm

        try:
            if self.host:
                return tvm.target.Target(dict(self.resolved), host=_resolve_native(self.host))
            return tvm.target.Target(dict(self.resolved))
        except Exception as exc:  # tvm raises its own error types for bad dicts
            msg = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            raise TargetError(f"{self.path or self.name}: invalid TVM target: {msg}") from None

    def to_json(self) -> dict:
        return {"name": self.name, "description": self.description, "tvm": self.resolved,
                "host": _resolve_native(self.host), "device": self.device, "runtime": self.runtime,
                "threads": self.threads, "affinity": self.affinity, "pipeline": self.pipeline,
                "export_format": self.export_format, "cross_compiler": self.cross_compiler}


def _resolve_native(d: dict[str, Any] | None) -> dict[str, Any] | None:
    if d is None:
        return None
    d = dict(d)
    if d.get("mcpu") == "native":
        d["mcpu"] = host_cpu()
    return d


def _need(data: dict, key: str, typ, path: Path, where: str = ""):
    label = f"{where}{key}"
    if key not in data:
        raise TargetError(f"{path}: missing key '{label}'")
    val = data[key]
    if not isinstance(val, typ):
        want = typ.__name__ if isinstance(typ, type) else "/".join(t.__name__ for t in typ)
        raise TargetError(f"{path}: key '{label}' must be {want}, got {type(val).__name__}")
    return val


def parse_target(path: Path, data: dict) -> Target:
    """Validate a parsed TOML dict; every problem names the file and the key."""
    tvm_t = _need(data, "tvm", dict, path)
    kind = _need(tvm_t, "kind", str, path, "tvm.")
    host = data.get("host")
    if host is not None and not isinstance(host, dict):
        raise TargetError(f"{path}: key 'host' must be a table")
    for where, table in (("tvm.", tvm_t), ("host.", host or {})):
        for key in ("kind", "mtriple", "mcpu", "arch"):
            if key in table and not isinstance(table[key], str):
                raise TargetError(f"{path}: key '{where}{key}' must be a string, got "
                                  f"{type(table[key]).__name__}")
    runtime = data.get("runtime", "tvm")
    if not isinstance(runtime, str):
        raise TargetError(f"{path}: key 'runtime' must be a string, got {type(runtime).__name__}")
    device = data.get("device", "local")
    if not isinstance(device, str) or not (device in ("local", "rpc")
                                           or device.startswith(("rpc://", "tracker://"))):
        raise TargetError(f"{path}: key 'device' must be 'local', 'rpc' (address given with "
                          f"when connecting), 'rpc://host:port' or 'tracker://host:port/key', "
                          f"got {device!r}")
    threads = data.get("threads", 1)
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= 4096:
        raise TargetError(f"{path}: key 'threads' must be a positive integer, got {threads!r}")
    affinity = data.get("affinity", "shared" if device == "local" else "pinned")
    if affinity not in AFFINITIES:
        raise TargetError(f"{path}: key 'affinity' must be one of {list(AFFINITIES)}, "
                          f"got {affinity!r}")
    if affinity == "shared" and device != "local":
        raise TargetError(f"{path}: key 'affinity' can be 'shared' only for a local device "
                          f"(TVM's RPC cannot pass the list of cores); use 'pinned'")
    export = data.get("export", {})
    if not isinstance(export, dict):
        raise TargetError(f"{path}: key 'export' must be a table")
    fmt = export.get("format", "so")
    if fmt not in EXPORT_FORMATS:
        raise TargetError(f"{path}: key 'export.format' must be one of {list(EXPORT_FORMATS)}, got '{fmt}'")
    cross = export.get("cross_compiler")
    if cross is not None and not (isinstance(cross, str) and cross):
        raise TargetError(f"{path}: key 'export.cross_compiler' must be a program name")
    pipeline = data.get("pipeline", "gpu" if kind == "cuda" else "cpu")
    if not isinstance(pipeline, str):
        raise TargetError(f"{path}: key 'pipeline' must be a string")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise TargetError(f"{path}: key 'description' must be a string")
    known = {"description", "runtime", "device", "threads", "affinity", "pipeline", "tvm", "host", "export"}
    return Target(name=path.stem, description=description, tvm_target=dict(tvm_t),
                  host=None if host is None else dict(host), device=device, runtime=runtime, threads=threads,
                  affinity=affinity, pipeline=pipeline, export_format=fmt,
                  cross_compiler=cross, path=str(path),
                  extra={k: v for k, v in data.items() if k not in known})


def load_target(name_or_path: str | os.PathLike) -> Target:
    """Load ``targets/<name>.toml`` (or an explicit ``.toml`` path)."""
    p = Path(name_or_path)
    path = p if p.suffix == ".toml" else target_path(str(name_or_path))
    if path is None or not path.exists():
        names = ", ".join(list_targets()) or "none"
        where = f"no {path}" if path is not None else "no such targets/*.toml"
        raise TargetError(f"unknown target '{name_or_path}' ({where}); available: {names}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise TargetError(f"{path}: malformed TOML: {exc}") from None
    except UnicodeDecodeError:
        raise TargetError(f"{path}: not a text (TOML) file") from None
    except IsADirectoryError:
        raise TargetError(f"target file {path} is a folder") from None
    except OSError as exc:
        raise TargetError(f"cannot read target file {path}: {exc.strerror}") from None
    return parse_target(path, data)


def list_targets() -> list[str]:
    """Names of every ``targets/*.toml`` in the data folders (``hwnas._data``)."""
    from hwnas import _data

    return sorted({p.stem for d in _data.search_dirs("targets") if d.is_dir()
                   for p in d.glob("*.toml")})
