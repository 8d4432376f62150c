"""Compiled whole networks kept across runs: ``<cache>/networks/<key><suffix>``.

Every deploy, profile, adapt and held-out run interleaves its timings with the same reference
network, and compiling it (tuned) costs about 20 s each time. The library only depends on what
the key holds: the build task (target, space, arch, runtime), the tuning database's
digest, the TVM target and version, torch's version (the ONNX export), and a digest of the
hwnas sources that make the network and compile it. So it is built once and reused; a key
that changes builds afresh, and a cached file that no longer loads is dropped and rebuilt.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

from hwnas.profile.build import BuildTask, BuiltItem
from hwnas.runtime import backend_of

__all__ = ["cache_key", "cached_network", "drop"]

#: hwnas sources a compiled network depends on (relative to the package)
_SOURCES = ("compiler", "nn", "spaces", "profile/build.py", "runtime/backend.py",
            "runtime/tvm_backend.py", "runtime/onnxruntime.py")


def _source_digest() -> str:
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for part in _SOURCES:
        p = root / part
        for f in sorted([p] if p.is_file() else p.rglob("*.py")):
            h.update(str(f.relative_to(root)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def cache_key(task: BuildTask) -> str | None:
    """The cache key of a network build task (None: not cacheable, built every time)."""
    if task.arch is None or not backend_of(task.target, task.runtime).cache_networks:
        return None
    import torch

    from hwnas.compiler.database import database_digest, target_identity

    ident = {"target": target_identity(task.target), "resolved": task.target.resolved,
             "runtime": task.runtime, "arch": task.arch, "space": task.space_config,
             "database": None if task.tuning_dir is None else database_digest(task.tuning_dir),
             "torch": torch.__version__, "sources": _source_digest()}
    blob = json.dumps(ident, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:24]


def _dir() -> Path:
    from hwnas.compiler.database import cache_root

    return cache_root() / "networks"


def cached_network(pool, task: BuildTask) -> tuple[BuiltItem, bool]:
    """The network of ``task``, from the cache or built by ``pool`` and then cached:
    (item, True when it came from the cache). Uncacheable tasks are built as usual, into
    ``task.out_dir``."""
    key = cache_key(task)
    if key is None:
        return pool.run([task])[0].items[0], False
    found = sorted(_dir().glob(f"{key}.*"))
    if found:
        space_shape = _shape(task)
        return BuiltItem(task.arch, str(found[0]), "main", space_shape), True
    item = pool.run([replace(task, name=f"{task.name}-{key}")])[0].items[0]
    src = Path(item.path)
    dest = _dir() / f"{key}{src.suffix}"
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
    except OSError:
        tmp.unlink(missing_ok=True)
        return item, False                 # an unwritable cache: use the fresh build
    src.unlink(missing_ok=True)
    return replace(item, path=str(dest)), False


def drop(item: BuiltItem) -> None:
    """Remove a cached library that did not load (it is rebuilt next time)."""
    Path(item.path).unlink(missing_ok=True)


def _shape(task: BuildTask) -> tuple[int, ...]:
    from hwnas.spaces import space_from_config

    space = space_from_config(task.space_config)
    return tuple(space.input_shape(space.parse(task.arch)))
