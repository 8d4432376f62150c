"""Top-1 accuracy of a network (or the supernet's active subnet) on in-memory tensors."""
from __future__ import annotations

import torch
from torch import nn

from hwnas.train.data import resize

__all__ = ["accuracy", "median_arch"]


@torch.no_grad()
def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, resolution: int,
             batch_size: int = 500) -> float:
    """Fraction of ``images`` whose arg-max logit is the label (``model`` is put in eval mode)."""
    model.eval()
    correct = 0
    for i in range(0, len(labels), batch_size):
        x = resize(images[i:i + batch_size], resolution).contiguous(
            memory_format=torch.channels_last)
        correct += int((model(x).argmax(1) == labels[i:i + batch_size]).sum())
    return correct / max(1, len(labels))


def median_arch(space):
    """The middle choice of every dimension: middle kernel, expand, depth and resolution."""
    mid = lambda seq: seq[len(seq) // 2]  # noqa: E731
    d = mid(space.depths)
    return space.make(mid(space.resolutions), [(mid(space.kernels),) * d] * 5,
                      [(mid(space.expands),) * d] * 5)
