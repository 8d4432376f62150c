"""The Once-for-All MobileNetV3 supernet: every arch of that space shares its weights.

Three verbs, as in OFA: ``set_active_subnet(arch)`` picks the subnet that ``forward`` runs,
``sample_active_subnet(rng)`` draws and sets one, and ``get_active_subnet(arch)`` returns the
plain ``MobileNetV3`` that ``space.build(arch)`` makes, with the active weights copied: the
hand-off to export. Depth is "the first d blocks of each stage"; resolution is the size of the
input the caller feeds (``hwnas.train.data.resize``).
"""
from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from hwnas.nn.blocks import ConvBNAct, InvertedResidual
from hwnas.nn.elastic import ElasticInvertedResidual
from hwnas.nn.mobilenetv3 import MobileNetV3

__all__ = ["OFASupernet"]


class OFASupernet(nn.Module):
    """Weight-sharing supernet of an ``OFAMobileNetV3Space`` (module names mirror ``MobileNetV3``)."""

    def __init__(self, space) -> None:
        """``space`` is an ``OFAMobileNetV3Space``: its widths, kernels, expands and per-stage
        ``strides``, ``acts`` and ``use_se`` shape the supernet."""
        super().__init__()
        self.space = space
        self.n_stages, self.max_depth = len(space.widths), max(space.depths)
        c0 = space.stem_chs
        self.stem = ConvBNAct(space.in_chans, c0, 3, 2, act="hswish")
        self.first_block = InvertedResidual(c0, c0, c0, 3, 1, "relu", False)
        blocks = []
        for s in range(self.n_stages):
            for j in range(self.max_depth):
                in_chs = (space.widths[s - 1] if s else c0) if j == 0 else space.widths[s]
                blocks.append(ElasticInvertedResidual(
                    in_chs, space.widths[s], space.kernels, space.expands,
                    space.strides[s] if j == 0 else 1, space.acts[s], space.use_se[s]))
        self.blocks = nn.ModuleList(blocks)
        self.final_expand = ConvBNAct(space.widths[-1], space.final_chs, 1, act="hswish")
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.feature_mix = ConvBNAct(space.final_chs, space.mix_chs, 1, act="hswish", bn=False)
        self.classifier = nn.Linear(space.mix_chs, space.num_classes)
        self.active_depths: tuple[int, ...] = (self.max_depth,) * self.n_stages
        self.active_arch = space.largest()

    # ------------------------------------------------------------------ the three verbs
    def set_active_subnet(self, arch):
        """Make ``forward`` run ``arch`` (validated against the space first)."""
        arch = self.space.make(arch.r, arch.ks, arch.e)
        for s in range(self.n_stages):
            for j, (k, x) in enumerate(zip(arch.ks[s], arch.e[s])):
                self.blocks[s * self.max_depth + j].set_active(k, x)
        self.active_depths = arch.d
        self.active_arch = arch
        return arch

    def sample_active_subnet(self, rng: np.random.Generator):
        return self.set_active_subnet(self.space.sample(rng))

    def get_active_subnet(self, arch=None) -> MobileNetV3:
        """A plain ``space.build(arch)`` network holding the active weights (BN stats as is)."""
        if arch is not None:
            self.set_active_subnet(arch)
        arch = self.active_arch
        net = self.space.build(arch)
        net.stem = copy.deepcopy(self.stem)
        net.first_block = copy.deepcopy(self.first_block)
        net.blocks = nn.ModuleList(self.blocks[i].build_static() for i in self.active_indices())
        net.final_expand = copy.deepcopy(self.final_expand)
        net.feature_mix = copy.deepcopy(self.feature_mix)
        net.classifier = copy.deepcopy(self.classifier)
        for p in net.parameters():
            p.requires_grad_(True)
        return net.train(self.training)

    # ------------------------------------------------------------------ forward
    def active_indices(self) -> list[int]:
        return [s * self.max_depth + j for s in range(self.n_stages)
                for j in range(self.active_depths[s])]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.first_block(self.stem(x))                    # N,C,H/2,W/2
        for i in self.active_indices():
            x = self.blocks[i](x)
        x = self.feature_mix(self.pool(self.final_expand(x)))  # N,mix,1,1
        return self.classifier(torch.flatten(x, 1))

    @torch.no_grad()
    def sort_channels(self, optimizer: torch.optim.Optimizer | None = None) -> None:
        """Reorder every block's hidden channels by importance (see ``ElasticInvertedResidual``)."""
        state = optimizer.state if optimizer is not None else None
        for block in self.blocks:
            block.sort_channels(state)
