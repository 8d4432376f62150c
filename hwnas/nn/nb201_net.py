"""NAS-Bench-201 CIFAR network: stem, three stages of cells joined by residual reductions, head.

Each cell is a DAG on 4 nodes; edge ``i → j`` (i < j) applies one of five operations and node
``j`` sums its incoming edges. Operations follow the benchmark: ``nor_conv_*`` is
ReLU → conv → BN, ``avg_pool_3x3`` has stride 1, ``none`` outputs zeros.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

__all__ = ["EDGES", "ReLUConvBN", "Zero", "ResidualReduction", "NB201Cell", "NB201Net",
           "edge_op"]

#: (to_node, from_node) of the six edges, in arch-string order.
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))


class ReLUConvBN(nn.Sequential):
    def __init__(self, in_chs: int, out_chs: int, kernel_size: int, stride: int = 1) -> None:
        super().__init__(nn.ReLU(inplace=False),
                         nn.Conv2d(in_chs, out_chs, kernel_size, stride, kernel_size // 2,
                                   bias=False),
                         nn.BatchNorm2d(out_chs))


class Zero(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


class ResidualReduction(nn.Module):
    """The benchmark's ResNet basic block between stages (stride 2, channels doubled)."""

    def __init__(self, in_chs: int, out_chs: int) -> None:
        super().__init__()
        self.a = ReLUConvBN(in_chs, out_chs, 3, 2)
        self.b = ReLUConvBN(out_chs, out_chs, 3, 1)
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(in_chs, out_chs, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x)) + self.shortcut(x)


def edge_op(name: str, chs: int) -> nn.Module:
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(chs, chs, 1)
    if name == "nor_conv_3x3":
        return ReLUConvBN(chs, chs, 3)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, 1, 1, count_include_pad=False)
    raise ValueError(f"unknown NAS-Bench-201 operation '{name}'")


class NB201Cell(nn.Module):
    def __init__(self, ops: Sequence[str], chs: int) -> None:
        super().__init__()
        self.edges = nn.ModuleList(edge_op(o, chs) for o in ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for j in range(1, 4):
            nodes.append(sum(self.edges[e](nodes[i]) for e, (to, i) in enumerate(EDGES) if to == j))
        return nodes[3]


class NB201Net(nn.Module):
    """``cells`` copies of the cell per stage at widths C, 2C, 4C (the benchmark: C=16, N=5)."""

    def __init__(self, ops: Sequence[str], channels: int = 16, cells: int = 5,
                 num_classes: int = 10, in_chans: int = 3) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_chans, channels, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(channels))
        layers: list[nn.Module] = []
        chs = channels
        for stage in range(3):
            if stage:
                layers.append(ResidualReduction(chs, chs * 2))
                chs *= 2
            layers.extend(NB201Cell(ops, chs) for _ in range(cells))
        self.cells = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.BatchNorm2d(chs), nn.ReLU(inplace=False),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
        self.classifier = nn.Linear(chs, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.head(self.cells(self.stem(x))))
