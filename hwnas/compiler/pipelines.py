"""Relax → compiled executable for a ``Target``, through named pipelines.

Profiling, deploy and the benchmarks all compile through ``compile_onnx`` so that latency tables
describe exactly the code that ships.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Callable

from hwnas._registry import Registry
from hwnas.errors import ExportError
from hwnas.targets import Target

__all__ = ["PIPELINES", "Compiled", "fuse_for_tuning", "compile_relax", "compile_onnx"]

#: name → fn(tvm_target, database) -> (passes applied first, ``relax_pipeline`` for tvm.compile,
#: or None for tvm.compile's own default)
PIPELINES: Registry[Callable] = Registry("compile pipeline")


@dataclass(frozen=True)
class Compiled:
    """A compiled executable and how much of it runs tuned schedules."""

    executable: Any
    kernels: int                    # fused kernels (what MetaSchedule tunes)
    tuned: int                      # of those, scheduled from the tuning database
    untuned: tuple[str, ...] = ()   # names of the kernels the database had no record for

    def tuning_json(self) -> dict:
        return {"kernels": self.kernels, "tuned": self.tuned, "untuned": list(self.untuned)}

    @property
    def summary(self) -> str:
        return f"{self.tuned}/{self.kernels}"


def _kernels(mod) -> tuple[int, tuple[str, ...]]:
    """(PrimFuncs of ``mod``, names of those not scheduled by a database)."""
    import tvm

    prims = [(gv.name_hint, f) for gv, f in mod.functions.items()
             if isinstance(f, tvm.tirx.PrimFunc)]
    return len(prims), tuple(sorted(name for name, f in prims
                                    if not (f.attrs and f.attrs.get("tirx.is_scheduled"))))


def fuse_for_tuning():
    """Legalize and fuse as TVM's "zero" pipeline does, then mark weights as layout-free.

    The mark (``layout_free_buffers`` on each kernel) lets MetaSchedule's ``RewriteLayout``
    choose a packed layout for constant weights; without it a GEMV such as the 960→1280 1×1
    conv before the classifier can only be tiled with strided, unvectorised weight reads.
    Tuning extracts its tasks after exactly these passes, so database keys match what ships.
    Unlike ``relax.get_pipeline("zero")`` this never applies a database by itself.
    ``FoldConstantCalls`` before ``FoldConstant`` gives the same module in a quarter of the time
    (``hwnas.compiler.constants``).
    """
    import tvm
    from tvm import relax

    from hwnas.compiler.constants import FoldConstantCalls

    t = relax.transform
    return tvm.transform.Sequential([t.LegalizeOps(), t.AnnotateTIROpPattern(),
                                     FoldConstantCalls(), t.FoldConstant(),
                                     t.FuseOps(), t.FuseTIR(), t.CanonicalizeBindings(),
                                     t.AttachAttrLayoutFreeBuffers()])


@PIPELINES.register("cpu")
def _cpu_pipeline(tvm_target, database=None):
    """Legalize, fuse and lower for CPUs; apply tuned schedules when a database is given.

    Tuned schedules may repack weights; ``SplitLayoutRewritePreproc`` moves each repack into
    its own function, which constant folding runs once at compile time on the bound weights
    (all repacks built in one module, ``FoldConstantCalls``), so the library ships packed
    weights and its interface stays ``main(input)``.
    """
    from tvm import relax

    from hwnas.compiler.constants import FoldConstantCalls

    if database is None:
        return [], relax.get_default_pipeline(tvm_target)
    t = relax.transform
    with tvm_target:  # the pass takes its target from the context it is constructed in
        apply_database = t.MetaScheduleApplyDatabase()
    return [fuse_for_tuning(), apply_database, t.SplitLayoutRewritePreproc(),
            FoldConstantCalls(), t.FoldConstant(),
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


def compile_relax(mod, target: Target, database=None) -> Compiled:
    """Compile a Relax module with the target's pipeline (optionally a tuning database), and
    count its kernels and how many the database scheduled."""
    import tvm

    tvm_target = target.tvm()
    passes, relax_pipeline = PIPELINES.get(target.pipeline)(tvm_target, database)
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(tvm_target)
            if database is not None:
                stack.enter_context(database)
            if not passes:                   # untuned: count the kernels tuning would see
                n, names = _kernels(fuse_for_tuning()(mod))
            for p in passes:
                mod = p(mod)
            if passes:
                n, names = _kernels(mod)
        # tvm.compile under an active cuda target context fails host codegen: call it outside.
        if relax_pipeline is None:
            ex = tvm.compile(mod, target=tvm_target)
        else:
            ex = tvm.compile(mod, target=tvm_target, relax_pipeline=relax_pipeline)
        return Compiled(ex, n, n - len(names) if database is not None else 0, names)
    except Exception as exc:
        lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()] or [type(exc).__name__]
        raise ExportError(f"TVM compile for target '{target.name}' failed: {lines[-1]}") from None


def compile_onnx(model, input_shapes: dict[str, tuple[int, ...]], target: Target,
                 database=None) -> Compiled:
    """Import an ONNX model (``frontend.onnx_to_relax``) and compile it for ``target``."""
    from hwnas.compiler.frontend import onnx_to_relax

    return compile_relax(onnx_to_relax(model, input_shapes), target, database)
