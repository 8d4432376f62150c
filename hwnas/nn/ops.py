"""Module builders for single operators (``OpSpec.build``), registered per family/kind."""
from __future__ import annotations

from torch import nn

from hwnas.nn.blocks import ConvBNAct, InvertedResidual
from hwnas.spaces._base import OP_BUILDERS, OpSpec

__all__: list[str] = []


@OP_BUILDERS.register("mbv3/Conv")
def _stem(op: OpSpec) -> nn.Module:
    return ConvBNAct(op.input[2], op.output[2], 3, 2, act="hswish")


@OP_BUILDERS.register("mbv3/expanded_conv")
def _mbconv(op: OpSpec) -> nn.Module:
    return InvertedResidual(op.input[2], op.output[2], op.attr("expand"), op.attr("kernel"),
                            op.attr("stride"), "hswish" if op.attr("hs", 0) else "relu",
                            bool(op.attr("se", 0)))


@OP_BUILDERS.register("mbv3/Conv_1")
def _final_expand(op: OpSpec) -> nn.Module:
    return ConvBNAct(op.input[2], op.output[2], 1, act="hswish")


@OP_BUILDERS.register("mbv3/AvgPool2D")
def _pool(op: OpSpec) -> nn.Module:
    return nn.AdaptiveAvgPool2d(1)


@OP_BUILDERS.register("mbv3/Conv_2")
def _feature_mix(op: OpSpec) -> nn.Module:
    return ConvBNAct(op.input[2], op.output[2], 1, act="hswish", bn=False)


@OP_BUILDERS.register("mbv3/Logits")
def _logits(op: OpSpec) -> nn.Module:
    return nn.Sequential(nn.Flatten(1), nn.Linear(op.input[-1], op.output[0]))
