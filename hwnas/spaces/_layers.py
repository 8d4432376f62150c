"""A space seen as a chain of layers, each a choice among candidate operators.

This is the view the gradient strategies (a mixed op per layer) and the exact latency lower
bound need. A plugin's ``layer_view(space, r_index)`` gives operator ids into ``space.op_list``
for one resolution: fixed ``prefix`` ops, one candidate list per searchable layer
(``space.null_op`` stands for *skip*: no op, no latency), fixed ``suffix`` ops; and
``genome(choice)`` turns one candidate index per layer back into a genome row, ``choice(genome)``
a genome row of that resolution into candidate indices.

``runs`` (optional) numbers the run each layer belongs to, such as the blocks of one stage: a
skip ends its run, so the later layers of the run are skipped too (a stage's depth). Without
``runs`` every layer is skipped on its own.
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
    from_genome: Callable[[np.ndarray], list[int]] | None = field(repr=False, default=None)
    runs: list[int] | None = None
    to_genomes: Callable[[np.ndarray], np.ndarray] | None = field(repr=False, default=None)

    @property
    def resolution(self) -> int:
        return self.space.resolutions[self.r_index]

    def genome(self, choice: Sequence[int]) -> np.ndarray:
        if len(choice) != len(self.candidates):
            raise SpaceError(f"{len(choice)} choices for {len(self.candidates)} layers")
        return self.to_genome(list(choice))

    def genomes(self, choices: np.ndarray) -> np.ndarray:
        """``genome`` of each row of an (N, layers) matrix of choices, as one (N, genes) matrix."""
        choices = np.asarray(choices)
        if choices.ndim != 2 or choices.shape[1] != len(self.candidates):
            raise SpaceError(f"choices of shape {choices.shape} for {len(self.candidates)} layers")
        if self.to_genomes is not None:
            return self.to_genomes(choices)
        return np.stack([self.to_genome([int(v) for v in row]) for row in choices])

    def choice(self, genome: np.ndarray) -> list[int]:
        """Candidate index per layer of a genome row at this view's resolution."""
        if self.from_genome is None:
            raise SpaceError(f"the layer view of '{self.space.name}' cannot read genomes back")
        return self.from_genome(np.asarray(genome))

    def skip_index(self, layer: int) -> int | None:
        """Where *skip* is among the layer's candidates, or None when it cannot be skipped."""
        null = self.space.null_op
        return next((i for i, c in enumerate(self.candidates[layer]) if c == null), None)

    def run_of(self, layer: int) -> int:
        return layer if self.runs is None else self.runs[layer]

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

    def to_genomes(choices: np.ndarray) -> np.ndarray:
        return np.concatenate([choices, np.full((len(choices), 1), r_index)], 1).astype(np.int16)

    def from_genome(genome: np.ndarray) -> list[int]:
        return [int(v) for v in genome[:-1]]

    return LayerView(space, r_index, fixed[:n_prefix], [[int(v) for v in c] for c in candidates],
                     fixed[n_prefix:], [list(lab) for lab in labels], to_genome, from_genome,
                     None, to_genomes)
