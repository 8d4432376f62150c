"""Static MobileNetV3 building blocks with flat, typed keyword arguments.

These are the plain modules that export, ONNX and TVM see. The elastic supernet in
``hwnas.nn.elastic`` produces exactly these modules from ``get_active_subnet``.
"""
from __future__ import annotations

import torch
from torch import nn

from hwnas.nn.widths import make_divisible

__all__ = ["make_divisible", "make_act", "ConvBNAct", "SqueezeExcite", "InvertedResidual"]


def make_act(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "hswish":
        return nn.Hardswish(inplace=True)
    if name == "none":
        return nn.Identity()
    raise ValueError(f"unknown activation '{name}'")


class ConvBNAct(nn.Sequential):
    """conv → (BN) → activation; ``bn=False`` gives a biased conv, as in the feature mix."""

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int = 1, stride: int = 1,
                 groups: int = 1, act: str = "relu", bn: bool = True) -> None:
        layers: list[nn.Module] = [nn.Conv2d(in_chs, out_chs, kernel_size, stride,
                                             kernel_size // 2, groups=groups, bias=not bn)]
        if bn:
            layers.append(nn.BatchNorm2d(out_chs))
        layers.append(make_act(act))
        super().__init__(*layers)


class SqueezeExcite(nn.Module):
    """Squeeze-and-excite with a hard sigmoid gate (MobileNetV3)."""

    def __init__(self, chs: int, reduction: int = 4) -> None:
        super().__init__()
        mid = make_divisible(chs // reduction)
        self.reduce = nn.Conv2d(chs, mid, 1, bias=True)
        self.act = nn.ReLU(inplace=True)
        self.expand = nn.Conv2d(mid, chs, 1, bias=True)
        self.gate = nn.Hardsigmoid(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)                      # N,C,1,1
        return x * self.gate(self.expand(self.act(self.reduce(s))))


class InvertedResidual(nn.Module):
    """MBConv: 1×1 expand → k×k depthwise → (SE) → 1×1 project, residual when shapes match."""

    def __init__(self, in_chs: int, out_chs: int, mid_chs: int, dw_kernel_size: int = 3,
                 stride: int = 1, act: str = "relu", use_se: bool = False) -> None:
        super().__init__()
        self.has_residual = stride == 1 and in_chs == out_chs
        self.expand = (ConvBNAct(in_chs, mid_chs, 1, act=act) if mid_chs != in_chs
                       else nn.Identity())
        self.dw = ConvBNAct(mid_chs, mid_chs, dw_kernel_size, stride, groups=mid_chs, act=act)
        self.se = SqueezeExcite(mid_chs) if use_se else nn.Identity()
        self.project = ConvBNAct(mid_chs, out_chs, 1, act="none")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.se(self.dw(self.expand(x))))
        return x + y if self.has_residual else y
