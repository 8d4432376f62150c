"""Constant folding of ``call_tir`` on weights, with every kernel built in one LLVM module.

Relax's ``FoldConstant`` evaluates each ``call_tir`` whose arguments are constants (a weight's
layout repack after ``SplitLayoutRewritePreproc``, an ``add`` of two bias constants after
``LegalizeOps``) by building its PrimFunc on its own with ``tirx.build``: one LLVM module per
kernel, about 0.1 s each, half of a tuned network's compile time. ``FoldConstantCalls`` finds
the same calls, chains included (a constant fed through two kernels), builds all of their
PrimFuncs together in one module, for the same generic ``llvm`` target, runs them in binding
order and binds each result as a constant. Running ``FoldConstant`` after it leaves nothing
costly to fold, and gives the module it would have given alone: the same kernels on the same
inputs, so the same constants and the same structure (tuning database keys included).
"""
from __future__ import annotations

__all__ = ["FoldConstantCalls", "fold_constant_calls"]

_EVAL_TARGET = "llvm"          # what FoldConstant evaluates with


def _static_shape(ty) -> tuple[tuple[int, ...], str] | None:
    from tvm import relax
    from tvm.ir.prim.expr import IntImm

    if not isinstance(ty, relax.TensorType) or ty.shape is None or ty.dtype is None:
        return None
    shape = getattr(ty.shape, "values", None)
    if shape is None or not all(isinstance(d, IntImm) for d in shape):
        return None
    return tuple(int(d) for d in shape), str(ty.dtype)


def _outputs(call) -> list[tuple[tuple[int, ...], str]] | None:
    """The output (shape, dtype) of a ``call_tir``, or None when not static."""
    from tvm import relax

    ty = call.ty_args[0]
    fields = ty.fields if isinstance(ty, relax.TupleType) else [ty]
    outs = [_static_shape(f) for f in fields]
    return None if any(o is None for o in outs) else outs


class _Plan:
    """The foldable bindings of one Relax function, in binding order."""

    def __init__(self) -> None:
        self.bindings: list = []             # (VarBinding, GlobalVar, args, outputs)
        self.const_vars: set = set()

    def arg_ok(self, arg) -> bool:
        from tvm import relax
        from tvm.ir.expr import Constant

        return isinstance(arg, Constant) or (isinstance(arg, relax.Var)
                                                   and arg in self.const_vars)


def _plan(func, mod, call_tir_op) -> _Plan:
    from tvm import relax, tirx

    plan = _Plan()
    body = func.body
    if not isinstance(body, relax.SeqExpr):
        return plan
    for block in body.blocks:
        for b in block.bindings:
            v = b.value if isinstance(b, relax.VarBinding) else None
            if not (isinstance(v, relax.Call) and v.op.same_as(call_tir_op)):
                continue
            gv, args = v.args[0], v.args[1]
            if (len(v.args) != 2 or not isinstance(gv, relax.GlobalVar)
                    or not isinstance(mod[gv], tirx.PrimFunc)
                    or not isinstance(args, relax.Tuple)
                    or not all(plan.arg_ok(a) for a in args.fields)):
                continue
            outs = _outputs(v)
            if outs is None:
                continue
            plan.bindings.append((b, gv, list(args.fields), outs))
            plan.const_vars.add(b.var)
    return plan


def _build(mod, gvs: list) -> dict:
    """One LLVM module holding every PrimFunc of ``gvs``: GlobalVar → callable."""
    import tvm

    names = {gv: f"fold_{i}" for i, gv in enumerate(gvs)}
    lib_mod = tvm.IRModule({tvm.ir.GlobalVar(n): mod[gv].with_attr("global_symbol", n)
                            for gv, n in names.items()})
    lib = tvm.tirx.build(lib_mod, target=_EVAL_TARGET)
    return {gv: lib[n] for gv, n in names.items()}


def _rebuild(func, folded: dict):
    """``func`` with each binding in ``folded`` (Var → constant expression) bound to it."""
    from tvm import relax

    body = func.body
    blocks = []
    for block in body.blocks:
        bindings = [relax.VarBinding(b.var, folded[b.var]) if b.var in folded else b
                    for b in block.bindings]
        blocks.append(relax.DataflowBlock(bindings) if isinstance(block, relax.DataflowBlock)
                      else relax.BindingBlock(bindings))
    return relax.Function(func.params, relax.SeqExpr(blocks, body.body), func.ret_ty,
                          func.is_pure, func.attrs, func.span)


def fold_constant_calls(mod):
    """``mod`` with every ``call_tir`` on constants evaluated (see the module docstring)."""
    import tvm
    from tvm import relax
    from tvm.ir.expr import Constant

    call_tir_op = tvm.ir.Op.get("relax.call_tir")
    plans = {gv: _plan(f, mod, call_tir_op) for gv, f in mod.functions.items()
             if isinstance(f, relax.Function)}
    gvs = list(dict.fromkeys(gv for p in plans.values() for _, gv, _, _ in p.bindings))
    if not gvs:
        return mod
    kernels = _build(mod, gvs)
    cpu = tvm.cpu(0)
    out = mod.clone()
    for fgv, plan in plans.items():
        if not plan.bindings:
            continue
        values: dict = {}                     # Var → tensor(s) computed here
        folded: dict = {}
        for b, gv, args, outs in plan.bindings:
            ins = [a.value if isinstance(a, Constant) else values.get(a) for a in args]
            if any(x is None or isinstance(x, list) for x in ins):
                continue                      # a tuple as an argument: left to FoldConstant
            res = [tvm.runtime.empty(shape, dtype, cpu) for shape, dtype in outs]
            kernels[gv](*ins, *res)
            is_tuple = isinstance(b.value.ty_args[0], relax.TupleType)
            values[b.var] = res if is_tuple else res[0]
            folded[b.var] = (relax.Tuple([relax.const(r) for r in res]) if is_tuple
                             else relax.const(res[0]))
        out.update_func(fgv, _rebuild(mod[fgv], folded))
    return out


def FoldConstantCalls():  # noqa: N802  (a pass, named like TVM's)
    """The pass form of ``fold_constant_calls``."""
    import tvm

    @tvm.transform.module_pass(opt_level=0, name="hwnas.FoldConstantCalls")
    def _pass(mod, _ctx):
        return fold_constant_calls(mod)

    return _pass
