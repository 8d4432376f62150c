"""Module builders for single operators (``OpSpec.build``), registered per family/kind."""
from __future__ import annotations

from torch import nn

from hwnas.nn.blocks import ConvBNAct, InvertedResidual
from hwnas.nn.op_builders import OP_BUILDERS

__all__ = ["build_op"]


def build_op(op) -> nn.Module:
    """The module of ``op`` (an ``hwnas.spaces.OpSpec``), from its family's builder."""
    return OP_BUILDERS.get(f"{op.family}/{op.kind}")(op)


@OP_BUILDERS.register("mbv3/Conv")
def _stem(op) -> nn.Module:
    return ConvBNAct(op.input[2], op.output[2], 3, 2, act="hswish")


@OP_BUILDERS.register("mbv3/expanded_conv")
def _mbconv(op) -> nn.Module:
    return InvertedResidual(op.input[2], op.output[2], op.attr("expand"), op.attr("kernel"),
                            op.attr("stride"), "hswish" if op.attr("hs", 0) else "relu",
                            bool(op.attr("se", 0)))


@OP_BUILDERS.register("mbv3/Conv_1")
def _final_expand(op) -> nn.Module:
    return ConvBNAct(op.input[2], op.output[2], 1, act="hswish")


@OP_BUILDERS.register("mbv3/AvgPool2D")
def _pool(op) -> nn.Module:
    return nn.AdaptiveAvgPool2d(1)


@OP_BUILDERS.register("mbv3/Conv_2")
def _feature_mix(op) -> nn.Module:
    return ConvBNAct(op.input[2], op.output[2], 1, act="hswish", bn=False)


@OP_BUILDERS.register("mbv3/Logits")
def _logits(op) -> nn.Module:
    return nn.Sequential(nn.Flatten(1), nn.Linear(op.input[-1], op.output[0]))
