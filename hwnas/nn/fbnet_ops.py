"""FBNet's searchable block and its projection skip, built from one ``OpSpec`` each."""
from __future__ import annotations

import torch
from torch import nn

from hwnas.nn.blocks import ConvBNAct

__all__ = ["ChannelShuffle", "FBNetBlock", "SkipProjection", "build_fbnet_op"]


class ChannelShuffle(nn.Module):
    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape                                  # N,C,H,W
        return x.reshape(n, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class FBNetBlock(nn.Module):
    """1×1 group conv → (shuffle) → k×k depthwise → 1×1 group conv, residual when shapes match."""

    def __init__(self, in_chs: int, out_chs: int, expand: int, kernel: int, stride: int,
                 groups: int = 1) -> None:
        super().__init__()
        mid = in_chs * expand
        self.has_residual = stride == 1 and in_chs == out_chs
        self.pw = ConvBNAct(in_chs, mid, 1, groups=groups, act="relu")
        self.shuffle = ChannelShuffle(groups) if groups > 1 else nn.Identity()
        self.dw = ConvBNAct(mid, mid, kernel, stride, groups=mid, act="relu")
        self.pwl = ConvBNAct(mid, out_chs, 1, groups=groups, act="none")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pwl(self.dw(self.shuffle(self.pw(x))))
        return x + y if self.has_residual else y


class SkipProjection(ConvBNAct):
    """*skip* on a layer that changes shape: a strided 1×1 conv + BN (no activation)."""

    def __init__(self, in_chs: int, out_chs: int, stride: int) -> None:
        super().__init__(in_chs, out_chs, 1, stride, act="none")


def build_fbnet_op(op) -> nn.Module:
    """The module of an FBNet ``OpSpec`` (kinds: Conv, tbs, skip_proj, Conv_1, Logits)."""
    cin, cout = op.input[-1], op.output[-1]
    if op.kind == "Conv":
        return ConvBNAct(cin, cout, 3, op.attr("stride"), act="relu")
    if op.kind == "tbs":
        return FBNetBlock(cin, cout, op.attr("expand"), op.attr("kernel"), op.attr("stride"),
                          op.attr("group"))
    if op.kind == "skip_proj":
        return SkipProjection(cin, cout, op.attr("stride"))
    if op.kind == "Conv_1":
        return ConvBNAct(cin, cout, 1, act="relu")
    if op.kind == "Logits":
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(cin, op.output[0]))
    raise ValueError(f"no FBNet module for operator kind '{op.kind}'")
