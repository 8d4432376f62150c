"""Artefacts to time: operators (batched into one compiled module) and whole networks.

These functions run inside compile worker processes, so that compiling never overlaps with
timing. Everything goes torch → ONNX → ``compile_onnx``'s import and pipeline, the same path
deploy takes. A batch of operators becomes one Relax module with one function per operator
(``op0``, ``op1``, ...): one compile call and one library instead of many, and each function is
exactly the operator's own compiled code, timed on its own.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from hwnas.errors import ExportError
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
    artifact: str = "tvm"                    # "tvm" (exported library), "onnx" or "debug"
    keys: tuple[str, ...] = ()
    family: str = "mbv3"
    arch: str | None = None
    space_config: dict | None = None
    tuning_dir: str | None = None


@dataclass(frozen=True)
class BuiltItem:
    key: str                                 # op key, or the arch string of a network
    path: str                                # library or ONNX file
    func: str                                # function to time in it
    input_shape: tuple[int, ...]
    tuned: tuple[int, int] | None = None     # (kernels tuned, kernels) of what was compiled


@dataclass(frozen=True)
class Built:
    task: BuildTask
    items: tuple[BuiltItem, ...]
    compile_s: float                         # wall time of this task in its worker


def _merge(mods: list) -> object:
    """One IRModule holding each module's ``main`` as ``op<i>``."""
    import tvm

    merged = tvm.IRModule()
    for i, mod in enumerate(mods):
        if len(mod.functions) != 1:
            raise ExportError("an operator's Relax module must hold only 'main' before lowering")
        (gv, fn), = mod.functions.items()
        merged[f"op{i}"] = fn.with_attr("global_symbol", f"op{i}")
    return merged


def _build_ops(task: BuildTask) -> list[BuiltItem]:
    from hwnas.compiler import compile_relax, export_library, library_suffix, onnx_to_relax
    from hwnas.compiler.database import load_database
    from hwnas.compiler.onnx_export import op_to_onnx

    out = Path(task.out_dir)
    ops = [OpSpec.from_key(k, task.family) for k in task.keys]
    files = [op_to_onnx(op, out / f"{task.name}-{i}.onnx") for i, op in enumerate(ops)]
    if task.artifact == "onnx":
        return [BuiltItem(op.key, str(f), "main", op.input_nchw) for op, f in zip(ops, files)]
    mods = [onnx_to_relax(f, {INPUT: op.input_nchw}) for op, f in zip(ops, files)]
    for f in files:
        f.unlink()
    compiled = compile_relax(_merge(mods), task.target,
                             load_database(task.tuning_dir, required=True, target=task.target))
    lib = export_library(compiled.executable, out / f"{task.name}{library_suffix(task.target)}",
                         task.target)
    counts = (compiled.tuned, compiled.kernels)
    return [BuiltItem(op.key, str(lib), f"op{i}", op.input_nchw, counts)
            for i, op in enumerate(ops)]


def _build_network(task: BuildTask) -> list[BuiltItem]:
    from hwnas.compiler import compile_onnx, export_library, library_suffix
    from hwnas.compiler.database import load_database
    from hwnas.compiler.onnx_export import network_to_onnx

    space = space_from_config(task.space_config)
    arch = space.parse(task.arch)
    out = Path(task.out_dir)
    onnx_path = network_to_onnx(space, arch, out / f"{task.name}.onnx")
    shape = space.input_shape(arch)
    if task.artifact == "onnx":
        return [BuiltItem(task.arch, str(onnx_path), "main", shape)]
    compiled = compile_onnx(onnx_path, {INPUT: shape}, task.target,
                            load_database(task.tuning_dir, required=True, target=task.target))
    onnx_path.unlink()
    lib = export_library(compiled.executable, out / f"{task.name}{library_suffix(task.target)}",
                         task.target)
    return [BuiltItem(task.arch, str(lib), "main", shape, (compiled.tuned, compiled.kernels))]


def _build_debug(task: BuildTask) -> list[BuiltItem]:
    """The debug runtime's artefact: what each function would run, no compiler involved."""
    from hwnas.runtime.debug import debug_costs, write_debug_artefact

    if task.space_config is None:
        raise ExportError("a debug build needs the space configuration of its operators")
    space = space_from_config(task.space_config)
    path = Path(task.out_dir) / f"{task.name}.debug.json"
    if task.arch is not None:
        arch = space.parse(task.arch)
        write_debug_artefact(path, {"main": {**debug_costs(space, space.ops(arch)),
                                             "network": True}})
        return [BuiltItem(task.arch, str(path), "main", space.input_shape(arch))]
    ops = [OpSpec.from_key(k, task.family) for k in task.keys]
    write_debug_artefact(path, {f"op{i}": debug_costs(space, [op]) for i, op in enumerate(ops)})
    return [BuiltItem(op.key, str(path), f"op{i}", op.input_nchw) for i, op in enumerate(ops)]


def build(task: BuildTask) -> Built:
    """Build one task (in a worker process or in-process)."""
    t0 = time.perf_counter()
    if task.artifact == "debug":
        items = _build_debug(task)
    else:
        items = _build_network(task) if task.arch is not None else _build_ops(task)
    return Built(task, tuple(items), time.perf_counter() - t0)
