"""An additive model of the objective over a space's layers, fitted to every evaluation so far.

The objective is modelled as a sum of one term per layer choice (a candidate block or the skip)
plus one per resolution: ridge regression on the one-hot layer choices of every arch evaluated.
For Once-for-All's accuracy predictor (an MLP) such a sum ranks changes far better than
chance while costing no evaluation, so the gain of changing layer ``i`` from its incumbent
``c0`` to ``c`` is estimated as ``w[i][c] - w[i][c0]``, for every layer at once; the knapsack
(``hwnas.search._knapsack``) then combines the changes under the budget, and the candidates it
proposes are evaluated exactly and added to the fit.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["AdditiveModel", "layer_choices"]


@dataclass(frozen=True)
class AdditiveModel:
    """Per-layer choice terms (``weights[i][c]``) and per-resolution terms of a fitted sum."""

    weights: list[np.ndarray]
    resolution: np.ndarray

    @classmethod
    def fit(cls, views: list, sizes: list[int], genomes: np.ndarray, scores: np.ndarray,
            ridge: float = 1.0, choices: np.ndarray | None = None) -> AdditiveModel:
        """Fit to ``scores`` of ``genomes``; ``views[r]`` is the layer view of resolution index
        ``r`` and ``sizes[i]`` the number of choices of layer ``i`` (blocks and skip).
        ``choices``: the genomes' layer choices, when the caller already has them."""
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        n_res = len(views)
        x = np.zeros((len(genomes), offsets[-1] + n_res))
        rows = np.arange(len(genomes))
        res = genomes[:, -1].astype(np.int64)
        if choices is None:
            choices = layer_choices(views, genomes)
        for i in range(len(sizes)):
            x[rows, offsets[i] + choices[:, i]] = 1.0
        x[rows, offsets[-1] + res] = 1.0
        y = scores - scores.mean()
        w = np.linalg.solve(x.T @ x + ridge * np.eye(x.shape[1]), x.T @ y)
        return cls([w[a:b] for a, b in zip(offsets[:-1], offsets[1:])], w[offsets[-1]:])

    def gains(self, choice: list[int]) -> list[np.ndarray]:
        """Each layer's candidates, as estimated changes of the objective from ``choice``."""
        return [w - w[c] for w, c in zip(self.weights, choice)]


def layer_choices(views: list, genomes: np.ndarray) -> np.ndarray:
    """Each genome's choice per layer (rows of ``genomes``; ``views`` as for ``fit``)."""
    res = genomes[:, -1].astype(np.int64)
    return np.array([views[r].choice(g) for g, r in zip(genomes, res)], np.int64).reshape(
        len(genomes), -1)
