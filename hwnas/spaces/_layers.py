"""A space seen as a chain of layers, each a choice among candidate operators.

This is the view the gradient strategies (a mixed op per layer) and the exact latency lower
bound need. A plugin's ``layer_view(space, r_index)`` gives operator ids into ``space.op_list``
for one resolution: fixed ``prefix`` ops, one candidate list per searchable layer
(``space.null_op`` stands for *skip*: no op, no latency), fixed ``suffix`` ops; and
``genome(choice)`` turns one candidate index per layer back into a genome row.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from hwnas.errors import SpaceError

__all__ = ["LayerView", "gene_per_layer_view"]


@dataclass
class LayerView:
    space: object
    r_index: int
    prefix: list[int]
    candidates: list[list[int]]
    suffix: list[int]
    labels: list[list[str]]
    to_genome: Callable[[Sequence[int]], np.ndarray] = field(repr=False, default=None)

    @property
    def resolution(self) -> int:
        return self.space.resolutions[self.r_index]

    def genome(self, choice: Sequence[int]) -> np.ndarray:
        if len(choice) != len(self.candidates):
            raise SpaceError(f"{len(choice)} choices for {len(self.candidates)} layers")
        return self.to_genome(list(choice))

    def latency_matrix(self, op_ms: np.ndarray) -> tuple[float, list[np.ndarray]]:
        """(fixed ms, per-layer candidate ms) from a vector aligned with ``op_list`` + null."""
        fixed = float(op_ms[self.prefix].sum() + op_ms[self.suffix].sum())
        return fixed, [op_ms[np.asarray(c)] for c in self.candidates]


def gene_per_layer_view(space, r_index: int, n_prefix: int, candidates: Sequence[Sequence[int]],
                        labels: Sequence[Sequence[str]]) -> LayerView:
    """The view of a space whose genome is one candidate index per layer, then the resolution
    index: the first ``n_prefix`` of its fixed operators come before the layers, the rest after."""
    fixed = [int(v) for v in space._fixed_idx[r_index]]

    def to_genome(choice: Sequence[int]) -> np.ndarray:
        return np.array(list(choice) + [r_index], np.int16)

    return LayerView(space, r_index, fixed[:n_prefix], [[int(v) for v in c] for c in candidates],
                     fixed[n_prefix:], [list(lab) for lab in labels], to_genome)
