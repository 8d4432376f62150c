"""Artefacts to time: operators (a batch of them built together) and whole networks.

These functions run inside compile worker processes, so that compiling never overlaps with
timing. The task's runtime backend builds them (``hwnas.runtime.backend``): for TVM, torch →
ONNX → ``compile_onnx``'s import and pipeline, the same path deploy takes, with a batch of
operators compiled into one library.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from hwnas.runtime import backend_of
from hwnas.spaces import OpSpec, space_from_config
from hwnas.targets import Target

__all__ = ["BuildTask", "BuiltItem", "Built", "build", "INPUT"]

INPUT = "input"


@dataclass(frozen=True)
class BuildTask:
    """Operators (``keys``) or one network (``arch``) to build into ``out_dir``."""

    name: str
    target: Target
    out_dir: str
    runtime: str                             # the backend that builds it (hwnas.runtime.RUNTIMES)
    keys: tuple[str, ...] = ()
    family: str = "mbv3"
    arch: str | None = None
    space_config: dict | None = None
    tuning_dir: str | None = None


@dataclass(frozen=True)
class BuiltItem:
    key: str                                 # op key, or the arch string of a network
    path: str                                # the built file (a library, an ONNX file, ...)
    func: str                                # function to time in it
    input_shape: tuple[int, ...]
    tuned: tuple[int, int] | None = None     # (kernels tuned, kernels) of what was compiled


@dataclass(frozen=True)
class Built:
    task: BuildTask
    items: tuple[BuiltItem, ...]
    compile_s: float                         # wall time of this task in its worker


def _counts(artefact) -> tuple[int, int] | None:
    t = artefact.tuning
    return None if t is None else (t["tuned"], t["kernels"])


def build(task: BuildTask) -> Built:
    """Build one task (in a worker process or in-process) with its runtime's backend."""
    t0 = time.perf_counter()
    backend = backend_of(task.target, task.runtime)
    database = None
    if backend.tuned:
        from hwnas.compiler.database import load_database

        database = load_database(task.tuning_dir, required=True, target=task.target)
    space = None if task.space_config is None else space_from_config(task.space_config)
    out = Path(task.out_dir)
    if task.arch is not None:
        arch = space.parse(task.arch)
        a = backend.build_network(space, arch, task.target, out / task.name, database)
        items = [BuiltItem(task.arch, str(a.path), a.func, space.input_shape(arch), _counts(a))]
    else:
        ops = [OpSpec.from_key(k, task.family) for k in task.keys]
        built = backend.build_ops(space, ops, task.target, out, task.name, database)
        items = [BuiltItem(op.key, str(a.path), a.func, op.input_nchw, _counts(a))
                 for op, a in zip(ops, built)]
    return Built(task, tuple(items), time.perf_counter() - t0)
