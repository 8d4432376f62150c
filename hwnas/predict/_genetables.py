"""Exact lookup tables for functions of a genome that are sums of per-gene and gene-pair terms.

A linear model on one-hot gene encodings (with or without pairwise products) is such a sum. As
tables, predicting 10,000 archs is a few gathers instead of building and multiplying a wide
design matrix. The tables are checked against the function on random genomes before use.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ["GeneTables", "gene_tables"]


@dataclass(frozen=True)
class GeneTables:
    base: np.ndarray                                   # (R,)
    single: tuple[np.ndarray, ...]                     # per gene: (choices, R)
    pairs: tuple[tuple[int, int, np.ndarray], ...]     # (i, j, (choices_i, choices_j, R))

    def __call__(self, genomes: np.ndarray) -> np.ndarray:
        g = genomes.astype(np.intp)
        out = np.broadcast_to(self.base, (len(g), len(self.base))).copy()
        for i, tab in enumerate(self.single):
            out += tab[g[:, i]]
        for i, j, tab in self.pairs:
            out += tab[g[:, i], g[:, j]]
        return out

    def project(self, w: np.ndarray, bias: float = 0.0) -> "GeneTables":
        """The tables of ``f(g) @ w + bias`` (one output)."""
        return GeneTables(np.atleast_1d(self.base @ w + bias), tuple((t @ w)[:, None] for t in self.single),
                          tuple((i, j, (t @ w)[..., None]) for i, j, t in self.pairs))


def gene_tables(fn: Callable[[np.ndarray], np.ndarray], sizes: np.ndarray, pairwise: bool,
                rng: np.random.Generator, check: int = 256) -> GeneTables | None:
    """Tables equal to ``fn`` (genomes → (N, R)), or None when ``fn`` is not such a sum."""
    sizes = [int(s) for s in sizes]
    n = len(sizes)
    g0 = np.zeros((1, n), np.int16)
    f0 = fn(g0)[0]
    singles = []
    for i, s in enumerate(sizes):
        g = np.repeat(g0, s, 0)
        g[:, i] = np.arange(s)
        singles.append(fn(g) - f0)
    pairs = []
    if pairwise:
        for i in range(n):
            for j in range(i + 1, n):
                a, b = np.meshgrid(np.arange(sizes[i]), np.arange(sizes[j]), indexing="ij")
                g = np.repeat(g0, a.size, 0)
                g[:, i], g[:, j] = a.ravel(), b.ravel()
                both = fn(g).reshape(sizes[i], sizes[j], -1)
                pairs.append((i, j, both - singles[i][:, None] - singles[j][None, :] - f0))
    tables = GeneTables(f0, tuple(singles), tuple(pairs))
    probe = (rng.random((check, n)) * np.asarray(sizes)).astype(np.int16)
    return tables if np.allclose(tables(probe), fn(probe), rtol=1e-6, atol=1e-8) else None
