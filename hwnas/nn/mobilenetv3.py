"""A plain MobileNetV3-style network assembled from a list of block configurations."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from hwnas.nn.blocks import ConvBNAct, InvertedResidual

__all__ = ["BlockConfig", "MobileNetV3"]


@dataclass(frozen=True)
class BlockConfig:
    in_chs: int
    out_chs: int
    mid_chs: int
    kernel: int
    stride: int
    act: str
    use_se: bool

    def build(self) -> InvertedResidual:
        return InvertedResidual(self.in_chs, self.out_chs, self.mid_chs, self.kernel,
                                self.stride, self.act, self.use_se)


class MobileNetV3(nn.Module):
    """stem → first block → searchable blocks → final expand → pool → feature mix → logits."""

    def __init__(self, in_chans: int, stem_chs: int, first: BlockConfig,
                 blocks: list[BlockConfig], final_chs: int, mix_chs: int,
                 num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.stem = ConvBNAct(in_chans, stem_chs, 3, 2, act="hswish")
        self.first_block = first.build()
        self.blocks = nn.ModuleList(b.build() for b in blocks)
        last = blocks[-1].out_chs if blocks else first.out_chs
        self.final_expand = ConvBNAct(last, final_chs, 1, act="hswish")
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.feature_mix = ConvBNAct(final_chs, mix_chs, 1, act="hswish", bn=False)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(mix_chs, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.first_block(self.stem(x))                    # N,C,H/2,W/2
        for block in self.blocks:
            x = block(x)
        return self.feature_mix(self.pool(self.final_expand(x)))  # N,mix,1,1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(torch.flatten(self.forward_features(x), 1)))
