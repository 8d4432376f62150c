"""Bayesian linear regression, many models at once, for model averaging over a few samples.

Every model is y = X·w + ε with a Gaussian prior on w and Gaussian noise of known (per-sample)
variance, so its posterior and its marginal likelihood are closed-form; a batch of models that
share X is solved with one stacked Cholesky factorisation.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ModelGroup", "posterior_batch", "normalise"]


def posterior_batch(x: np.ndarray, y: np.ndarray, means: np.ndarray, covs: np.ndarray,
                    noise: np.ndarray):
    """Posterior means (M, d), covariances (M, d, d) and log marginal likelihoods (M,) of
    y = x·w + ε for M priors N(means[m], covs[m]) and noise variances ``noise`` (M, k)."""
    k = len(y)
    gain = covs @ x.T                                            # (M, d, k)
    kmat = x @ gain + noise[:, :, None] * np.eye(k)              # (M, k, k)
    resid = y[None, :] - means @ x.T                             # (M, k)
    chol = np.linalg.cholesky(kmat)
    alpha = np.linalg.solve(kmat, resid[:, :, None])[:, :, 0]    # (M, k)
    logdet = 2 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(1)
    lml = -0.5 * (resid * alpha).sum(1) - 0.5 * logdet - 0.5 * k * np.log(2 * np.pi)
    w = means + (gain @ alpha[:, :, None])[:, :, 0]
    post = covs - gain @ np.linalg.solve(kmat, np.swapaxes(gain, 1, 2))
    return w, post, lml


@dataclass
class ModelGroup:
    """Models that share a design: a family's feature set (``cols`` of the full design) on
    log-latency (``log``) or on latency, fitted under several priors and noise levels."""

    family: str
    log: bool
    cols: list[int]
    rank: int
    w: np.ndarray              # (M, d) posterior means
    post: np.ndarray           # (M, d, d) posterior covariances
    s2: np.ndarray             # (M,) relative (log) noise variance
    floor: np.ndarray          # (M,) absolute noise floor, ms
    scale: float               # latency lines: ms per unit of their coefficients
    score: np.ndarray          # (M,) log marginal likelihood + log prior
    weight: np.ndarray | None = None

    def keep(self, threshold: float) -> "ModelGroup | None":
        sel = self.weight >= threshold
        if not sel.any():
            return None
        return ModelGroup(self.family, self.log, self.cols, self.rank, self.w[sel],
                          self.post[sel], self.s2[sel], self.floor[sel], self.scale,
                          self.score[sel], self.weight[sel])


def normalise(groups: list[ModelGroup]) -> None:
    """Posterior model weights: each group's share of exp(score), summing to 1 over all."""
    top = max(float(g.score.max()) for g in groups)
    total = sum(float(np.exp(g.score - top).sum()) for g in groups)
    for g in groups:
        g.weight = np.exp(g.score - top) / total
