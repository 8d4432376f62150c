"""``"<family>/<kind>" → fn(op) -> torch.nn.Module``: the tiny module that computes one operator.

The registry itself imports no torch, so that search spaces can register their builders when
they are imported; each builder imports torch when it is called. ``op`` is an
``hwnas.spaces.OpSpec`` (read through its ``input``, ``output`` and ``attr``).
"""
from __future__ import annotations

from hwnas._registry import Registry

__all__ = ["OP_BUILDERS"]

OP_BUILDERS: Registry = Registry("operator builder")
