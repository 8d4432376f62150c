"""A space seen as a chain of layers, each a choice among candidate operators.

This is the view the gradient strategies (a mixed op per layer) and the exact latency lower
bound need. ``layer_view(space, r_index)`` gives operator ids into ``space.op_list`` for one
resolution: fixed ``prefix`` ops, one candidate list per searchable layer (``space.null_op``
stands for *skip*: no op, no latency), fixed ``suffix`` ops; and ``genome(choice)`` turns one
candidate index per layer back into a genome row.

``ofa-mbv3``: 20 block slots × the 9 (kernel, expand) pairs; slots past the minimum depth add
a *skip* candidate. A stage's depth is the minimum depth plus its leading run of non-skipped
slots, so a skip followed by a block drops that block (the only choice the view cannot express
exactly; it never lowers latency, so the lower bound stays exact).

Spaces that know their own layers (``proxyless``, ``fbnet``) provide ``layer_candidates(r_index)``
returning ``(prefix, candidates, suffix, labels)`` and ``genome_from_choices(choice, r_index)``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from hwnas._registry import Registry
from hwnas.errors import SpaceError

__all__ = ["LayerView", "layer_view", "LAYER_VIEWS", "min_over_view"]

LAYER_VIEWS: Registry = Registry("layer view")


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


def layer_view(space, r_index: int) -> LayerView:
    if not 0 <= r_index < len(space.resolutions):
        raise SpaceError(f"resolution index {r_index} outside {list(space.resolutions)}")
    if hasattr(space, "layer_candidates"):
        prefix, cands, suffix, labels = space.layer_candidates(r_index)
        return LayerView(space, r_index, list(prefix), [list(c) for c in cands], list(suffix),
                         labels, lambda ch: space.genome_from_choices(ch, r_index))
    return LAYER_VIEWS.get(space.name)(space, r_index)


def min_over_view(view: LayerView, op_vec: np.ndarray) -> tuple[float, list[int]]:
    """The smallest additive cost over the view (exact for sums of non-negative op costs)."""
    fixed, per_layer = view.latency_matrix(op_vec)
    choice = [int(np.argmin(c)) for c in per_layer]
    return fixed + float(sum(c[i] for c, i in zip(per_layer, choice))), choice


@LAYER_VIEWS.register("ofa-mbv3")
def _ofa_view(space, r_index: int) -> LayerView:
    from hwnas.spaces.ofa_mbv3 import MAX_DEPTH, N_SLOTS, N_STAGES

    nk, ne = len(space.kernels), len(space.expands)
    g = np.zeros((nk * ne, space.genome_len), np.int16)
    for c in range(nk * ne):
        g[c, :N_SLOTS], g[c, N_SLOTS:2 * N_SLOTS] = c // ne, c % ne
    g[:, 2 * N_SLOTS:2 * N_SLOTS + N_STAGES] = len(space.depths) - 1
    g[:, -1] = r_index
    ids = space.op_indices(g)                                 # (9, 6 fixed + 20 slots)
    min_d = min(space.depths)
    cands, labels = [], []
    pairs = [f"k{k}e{e}" for k in space.kernels for e in space.expands]
    for slot in range(N_SLOTS):
        skippable = slot % MAX_DEPTH >= min_d
        cands.append(list(ids[:, 6 + slot]) + ([space.null_op] if skippable else []))
        labels.append(pairs + (["skip"] if skippable else []))

    def to_genome(choice: list[int]) -> np.ndarray:
        out = np.zeros(space.genome_len, np.int16)
        for s in range(N_STAGES):
            d = min_d
            for j in range(MAX_DEPTH):
                c = choice[s * MAX_DEPTH + j]
                if c >= nk * ne:                              # skip: the stage ends here
                    break
                out[s * MAX_DEPTH + j], out[N_SLOTS + s * MAX_DEPTH + j] = c // ne, c % ne
                d = max(d, j + 1)
            out[2 * N_SLOTS + s] = space.depths.index(d)
        out[-1] = r_index
        return out

    return LayerView(space, r_index, list(ids[0, :2]), cands, list(ids[0, 2:6]), labels, to_genome)
