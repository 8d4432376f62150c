"""The layer view of a space (its plugin's), and the exact lower bound over it.

``layer_view(space, r_index)`` is ``space_plugin(space).view(space, r_index)``; see
``hwnas.spaces._layers`` for what a view holds.
"""
from __future__ import annotations

import numpy as np

from hwnas.spaces import LayerView, space_plugin

__all__ = ["LayerView", "layer_view", "min_over_view"]


def layer_view(space, r_index: int) -> LayerView:
    return space_plugin(space).view(space, r_index)


def min_over_view(view: LayerView, op_vec: np.ndarray) -> tuple[float, list[int]]:
    """The smallest additive cost over the view (exact for sums of non-negative op costs)."""
    fixed, per_layer = view.latency_matrix(op_vec)
    choice = [int(np.argmin(c)) for c in per_layer]
    return fixed + float(sum(c[i] for c, i in zip(per_layer, choice))), choice
