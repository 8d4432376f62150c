"""BatchNorm recalibration: a subnet's BN statistics, re-estimated on a few training batches.

Supernet BN running statistics mix every subnet that was trained, so they fit none of them.
After a subnet is extracted its statistics are reset and averaged (not exponentially) over
``n_batches`` batches of training images at the subnet's resolution.
"""
from __future__ import annotations

import torch
from torch import nn

from hwnas.train.data import resize

__all__ = ["recalibrate_bn"]


@torch.no_grad()
def recalibrate_bn(model: nn.Module, images: torch.Tensor, resolution: int,
                   batch_size: int = 256, n_batches: int = 4, seed: int = 0) -> nn.Module:
    """Reset and re-estimate every BN layer's statistics; returns ``model`` in eval mode."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return model.eval()
    saved = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None                                   # cumulative moving average
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(images), generator=g)[:batch_size * n_batches]
    model.train()
    try:
        for i in range(0, len(order), batch_size):
            x = resize(images[order[i:i + batch_size]], resolution)
            model(x.contiguous(memory_format=torch.channels_last))
    finally:
        for bn, m in zip(bns, saved):
            bn.momentum = m
    return model.eval()
