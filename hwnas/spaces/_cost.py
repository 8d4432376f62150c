"""Analytic cost of one MobileNet-family operator: multiply-adds, parameters, activations."""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

from hwnas.nn.widths import make_divisible
from hwnas.spaces._base import OpSpec

__all__ = ["op_cost", "cost_table"]


def _prod(shape) -> int:
    return int(math.prod(shape))


def op_cost(op: OpSpec) -> tuple[int, int, int]:
    """(MACs, params, peak activation elements) of ``op`` at batch 1.

    Peak activation counts the tensors alive at once inside the op (input kept for the
    residual, the expanded tensor, the depthwise output), which bounds its working memory.
    """
    inp, out = _prod(op.input), _prod(op.output)
    if op.kind == "expanded_conv":
        h, w, cin = op.input
        ho, wo, cout = op.output
        mid, k = op.attr("expand"), op.attr("kernel")
        macs = params = 0
        if mid != cin:
            macs += h * w * cin * mid
            params += cin * mid + 2 * mid
        macs += ho * wo * mid * k * k
        params += mid * k * k + 2 * mid
        if op.attr("se", 0):
            se_mid = make_divisible(mid // 4)
            macs += 2 * mid * se_mid
            params += 2 * mid * se_mid + mid + se_mid
        macs += ho * wo * mid * cout
        params += mid * cout + 2 * cout
        kept = inp if op.attr("idskip", 0) else 0
        peak = max(inp + h * w * mid, h * w * mid + ho * wo * mid, ho * wo * mid + out + kept)
        return macs, params, peak
    if op.kind in ("Conv", "Conv_1", "Conv_2"):
        k = 3 if op.kind == "Conv" else 1
        cin, cout = op.input[-1], op.output[-1]
        bias_or_bn = cout if op.kind == "Conv_2" else 2 * cout
        return (op.output[0] * op.output[1] * cin * cout * k * k,
                cin * cout * k * k + bias_or_bn, inp + out)
    if op.kind == "AvgPool2D":
        return inp, 0, inp + out
    if op.kind == "Logits":
        return op.input[-1] * op.output[0], op.input[-1] * op.output[0] + op.output[0], inp + out
    raise ValueError(f"no cost model for operator kind '{op.kind}'")


def cost_table(op_list: Sequence[OpSpec], cost: Callable[[OpSpec], tuple[int, int, int]] = op_cost
               ) -> dict[str, np.ndarray]:
    """``macs``, ``params`` and ``act`` per op of ``op_list``, plus a trailing 0 (``null_op``)."""
    c = np.array([cost(op) for op in op_list] + [(0, 0, 0)], dtype=np.float64)
    return {"macs": c[:, 0], "params": c[:, 1], "act": c[:, 2]}
