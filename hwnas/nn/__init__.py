"""Torch building blocks: static blocks and networks (elastic supernet lives here too)."""
from hwnas.nn.blocks import ConvBNAct, InvertedResidual, SqueezeExcite, make_divisible
from hwnas.nn.mobilenetv3 import BlockConfig, MobileNetV3

__all__ = ["ConvBNAct", "InvertedResidual", "SqueezeExcite", "make_divisible", "BlockConfig",
           "MobileNetV3"]
