"""ONNX → Relax → compiled executable for a ``Target``, through named pipelines.

Profiling, deploy and the benchmarks all compile through ``compile_onnx`` so that latency tables
describe exactly the code that ships.
"""
from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Callable

from hwnas._registry import Registry
from hwnas.errors import ExportError
from hwnas.targets import Target

__all__ = ["PIPELINES", "fuse_for_tuning", "onnx_to_relax", "compile_relax", "compile_onnx",
           "export_library", "library_suffix"]

#: name → fn(tvm_target, database) -> (passes applied first, ``relax_pipeline`` for tvm.compile,
#: or None for tvm.compile's own default)
PIPELINES: Registry[Callable] = Registry("compile pipeline")


def fuse_for_tuning():
    """Legalize and fuse as TVM's "zero" pipeline does, then mark weights as layout-free.

    The mark (``layout_free_buffers`` on each kernel) lets MetaSchedule's ``RewriteLayout``
    choose a packed layout for constant weights; without it a GEMV such as the 960→1280 1×1
    conv before the classifier can only be tiled with strided, unvectorised weight reads.
    Tuning extracts its tasks after exactly these passes, so database keys match what ships.
    Unlike ``relax.get_pipeline("zero")`` this never applies a database by itself.
    """
    import tvm
    from tvm import relax

    t = relax.transform
    return tvm.transform.Sequential([t.LegalizeOps(), t.AnnotateTIROpPattern(), t.FoldConstant(),
                                     t.FuseOps(), t.FuseTIR(), t.CanonicalizeBindings(),
                                     t.AttachAttrLayoutFreeBuffers()])


@PIPELINES.register("cpu")
def _cpu_pipeline(tvm_target, database=None):
    """Legalize, fuse and lower for CPUs; apply tuned schedules when a database is given.

    Tuned schedules may repack weights; ``SplitLayoutRewritePreproc`` moves each repack into
    its own function, which ``FoldConstant`` runs once at compile time on the bound weights, so
    the library ships packed weights and its interface stays ``main(input)``.
    """
    from tvm import relax

    if database is None:
        return [], relax.get_default_pipeline(tvm_target)
    t = relax.transform
    with tvm_target:  # the pass takes its target from the context it is constructed in
        apply_database = t.MetaScheduleApplyDatabase()
    return [fuse_for_tuning(), apply_database, t.SplitLayoutRewritePreproc(), t.FoldConstant(),
            t.CanonicalizeBindings(), t.DeadCodeElimination()], None


@PIPELINES.register("gpu")
def _gpu_pipeline(tvm_target, database=None):
    """Zero pipeline plus the dlight GPU schedule rules (TVM's untuned GPU path)."""
    from tvm import relax
    from tvm.s_tir import dlight as dl

    passes = [relax.get_pipeline("zero")]
    if database is not None:
        passes.append(relax.transform.MetaScheduleApplyDatabase())
    passes.append(dl.ApplyDefaultSchedule(dl.gpu.Matmul(), dl.gpu.GEMV(), dl.gpu.Reduction(),
                                          dl.gpu.GeneralReduction(), dl.gpu.Fallback()))
    return passes, None


def onnx_to_relax(model, input_shapes: dict[str, tuple[int, ...]]):
    """Import an ONNX model (path or ``ModelProto``) with its weights bound as constants."""
    import onnx
    from tvm import relax
    from tvm.relax.frontend.onnx import from_onnx

    if isinstance(model, (str, os.PathLike)):
        model = onnx.load(str(model))
    try:
        mod = from_onnx(model, shape_dict={k: list(v) for k, v in input_shapes.items()},
                        keep_params_in_input=False)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        unsupported = sorted({n.op_type for n in model.graph.node} - _supported_onnx_ops())
        if unsupported:
            raise ExportError(f"ONNX ops not supported by TVM's Relax frontend: "
                              f"{', '.join(unsupported)}") from None
        raise ExportError(f"TVM could not import the ONNX model: {first}") from None
    return relax.transform.DecomposeOpsForInference()(mod)


def _supported_onnx_ops() -> set[str]:
    from tvm.relax.frontend.onnx import onnx_frontend

    return set(onnx_frontend._get_convert_map().keys())


def compile_relax(mod, target: Target, database=None):
    """Compile a Relax module with the target's pipeline (optionally a tuning database)."""
    import tvm

    tvm_target = target.tvm()
    passes, relax_pipeline = PIPELINES.get(target.pipeline)(tvm_target, database)
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(tvm_target)
            if database is not None:
                stack.enter_context(database)
            for p in passes:
                mod = p(mod)
        # tvm.compile under an active cuda target context fails host codegen: call it outside.
        if relax_pipeline is None:
            return tvm.compile(mod, target=tvm_target)
        return tvm.compile(mod, target=tvm_target, relax_pipeline=relax_pipeline)
    except Exception as exc:
        lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()] or [type(exc).__name__]
        raise ExportError(f"TVM compile for target '{target.name}' failed: {lines[-1]}") from None


def compile_onnx(model, input_shapes: dict[str, tuple[int, ...]], target: Target, database=None):
    return compile_relax(onnx_to_relax(model, input_shapes), target, database)


def library_suffix(target: Target) -> str:
    """``.so`` when we can link for the target here, else a ``.tar`` of object files."""
    if target.export_format == "tar":
        return ".tar"
    if target.cross_compiler and not shutil.which(target.cross_compiler):
        return ".tar"
    return ".so"


def export_library(executable, path: str | os.PathLike, target: Target) -> Path:
    """Write the compiled library; cross targets use the target's cross compiler."""
    from tvm.support import cc

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    try:
        if path.suffix == ".so" and target.cross_compiler:
            executable.export_library(str(tmp), fcompile=cc.cross_compiler(target.cross_compiler))
        else:
            executable.export_library(str(tmp))
        os.replace(tmp, path)
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
        raise ExportError(f"exporting the library for '{target.name}' failed: {first}") from None
    return path
