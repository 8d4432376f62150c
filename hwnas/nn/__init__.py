"""Torch building blocks: static blocks and networks, the elastic supernet, mixed operators.

Importing this package loads no torch; each name below loads its module on first use.
"""
from hwnas.nn.widths import make_divisible

__all__ = ["ConvBNAct", "InvertedResidual", "SqueezeExcite", "make_divisible", "BlockConfig",
           "MobileNetV3", "OFASupernet"]

_LAZY = {"ConvBNAct": "blocks", "InvertedResidual": "blocks", "SqueezeExcite": "blocks",
         "BlockConfig": "mobilenetv3", "MobileNetV3": "mobilenetv3", "OFASupernet": "supernet"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"hwnas.nn.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'hwnas.nn' has no attribute '{name}'")
