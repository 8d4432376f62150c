"""``fewshot``: latency on a new device from k measured networks and what other devices show.

The source devices' log-latencies form an (arch × device) matrix. Its principal directions are
a few *latency factors* (how much an arch leans on convolutions, on memory traffic, on depth...),
and every source device is a weighted sum of them. A ridge model maps an arch's encoding to its
source log-latencies, hence to its factors, for any arch of the space. A new device is one more
weighted sum: its weights get a prior built from the source devices' weights (a Gaussian fitted
to all of them, mixed with one narrower Gaussian around each of them) and are updated by the k
samples (Bayesian linear regression). The number of factors and the noise
level are not fixed either: every (rank, prior component, noise) triple is weighted by its
marginal likelihood on the k samples (Bayesian model averaging), so 10 samples pick a simple
model and 50 a richer one.

The target device enters only through ``TargetSamples``; a ``SourceMatrix`` that names it is
refused, so none of its other values can leak in.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from hwnas.errors import HwnasError
from hwnas.predict._base import PREDICTORS, LogNormalPredictor
from hwnas.predict._genetables import gene_tables

__all__ = ["SourceMatrix", "TargetSamples", "SourceFactors", "FewShotPredictor", "split_target"]

log = logging.getLogger("hwnas.predict")

RANKS = (1, 2, 3, 5, 8, 12, 20)
NOISE_SCALES = (1.0, 3.0, 10.0, 30.0)
NEIGHBOUR_SCALE = 0.5     # covariance of "like source device c" relative to the population's


@dataclass(frozen=True)
class SourceMatrix:
    """Latencies (ms) of the same archs (genome rows) on several source devices (columns)."""

    genomes: np.ndarray
    devices: tuple[str, ...]
    latency_ms: np.ndarray

    def __post_init__(self) -> None:
        if self.latency_ms.shape != (len(self.genomes), len(self.devices)):
            raise HwnasError(f"source matrix is {self.latency_ms.shape}, expected "
                             f"({len(self.genomes)}, {len(self.devices)})")
        if not np.all(np.isfinite(self.latency_ms)) or np.any(self.latency_ms <= 0):
            raise HwnasError("source latencies must be finite and positive")

    def column(self, device: str) -> np.ndarray:
        if device not in self.devices:
            raise HwnasError(f"device '{device}' not in the source matrix; "
                             f"have: {', '.join(self.devices)}")
        return self.latency_ms[:, self.devices.index(device)]

    def without(self, devices: Sequence[str]) -> "SourceMatrix":
        keep = [i for i, d in enumerate(self.devices) if d not in set(devices)]
        return SourceMatrix(self.genomes, tuple(self.devices[i] for i in keep),
                            self.latency_ms[:, keep].copy())


@dataclass(frozen=True)
class TargetSamples:
    """The only values of the new device the predictor may see."""

    device: str
    genomes: np.ndarray
    latency_ms: np.ndarray

    def __post_init__(self) -> None:
        if len(self.genomes) != len(self.latency_ms) or len(self.genomes) < 2:
            raise HwnasError(f"need at least 2 target samples with one latency each, got "
                             f"{len(self.genomes)} archs and {len(self.latency_ms)} latencies")
        if np.any(~np.isfinite(self.latency_ms)) or np.any(self.latency_ms <= 0):
            raise HwnasError(f"target samples of '{self.device}' must be finite and positive")


def split_target(matrix: SourceMatrix, device: str, k: int, seed: int,
                 exclude: Sequence[str] = ()) -> tuple[SourceMatrix, TargetSamples, np.ndarray]:
    """Hold ``device`` out: k seeded random archs as samples, the rest (indices) for testing.

    ``exclude`` drops more columns from the sources (e.g. the same device at other batch sizes).
    """
    y = matrix.column(device)
    rng = np.random.default_rng(seed)
    train = rng.choice(len(y), size=k, replace=False)
    test = np.setdiff1d(np.arange(len(y)), train)
    samples = TargetSamples(device, matrix.genomes[train].copy(), y[train].copy())
    return matrix.without([device, *exclude]), samples, test


def _design(space, genomes: np.ndarray, interactions: bool) -> np.ndarray:
    x = space.encode_genomes(genomes).astype(np.float64)
    if not interactions:
        return x
    i, j = np.triu_indices(x.shape[1], 1)
    return np.concatenate([x, x[:, i] * x[:, j]], 1)       # pairwise op co-occurrence


def _posterior(fa: np.ndarray, y: np.ndarray, mean: np.ndarray, cov: np.ndarray, s2: float):
    """Posterior mean and covariance of w in y = fa·w + ε, and the log marginal likelihood."""
    k = fa @ cov @ fa.T + s2 * np.eye(len(y))
    d = y - fa @ mean
    chol = np.linalg.cholesky(k)
    alpha = np.linalg.solve(chol.T, np.linalg.solve(chol, d))
    lml = -0.5 * d @ alpha - np.log(np.diag(chol)).sum()
    gain = cov @ fa.T
    w = mean + gain @ alpha
    post = cov - gain @ np.linalg.solve(k, gain.T)
    return w, post, float(lml)


class SourceFactors:
    """Latency factors learnt from source devices: arch encoding → factor scores, and each
    source device's loadings on them. Fit once per source set; adapt to many targets."""

    def __init__(self, space, source: SourceMatrix, interactions: bool | None = None,
                 ridge_alpha: float = 1.0) -> None:
        from sklearn.linear_model import Ridge

        if len(source.devices) < 2:
            raise HwnasError("few-shot adaptation needs at least 2 source devices")
        self.space, self.devices = space, source.devices
        dim = space.encode_genomes(source.genomes[:1]).shape[1]
        self.interactions = dim <= 64 if interactions is None else bool(interactions)
        logs = np.log(source.latency_ms)
        centred = logs - logs.mean(0)
        n = len(centred)
        _, sing, vt = np.linalg.svd(centred, full_matrices=False)
        self.rank_max = int(min(max(RANKS), len(sing), np.sum(sing > 1e-9 * sing[0])))
        proj = vt[:self.rank_max].T / np.sqrt(n)              # log-latency → factor scores
        self.loadings = vt[:self.rank_max] * np.sqrt(n)       # (R, D): factors → devices
        x = _design(space, source.genomes, self.interactions)
        ridge = Ridge(alpha=ridge_alpha).fit(x, centred)
        # arch → factors is linear: keep one matrix so that prediction is a single product
        self._coef = ridge.coef_.T @ proj                      # (F, R)
        self._bias = ridge.intercept_ @ proj                   # (R,)
        scores = centred @ proj
        self.residual_var = [max(float((centred - scores[:, :r] @ self.loadings[:r]).var(0).mean()),
                                 1e-6) for r in range(1, self.rank_max + 1)]

        self.tables = gene_tables(self._factors_direct, space.choice_sizes(), self.interactions,
                                  np.random.default_rng(0))

    def _factors_direct(self, genomes: np.ndarray) -> np.ndarray:
        return _design(self.space, genomes, self.interactions) @ self._coef + self._bias

    def factors(self, genomes: np.ndarray) -> np.ndarray:
        """(N, R) latency factors of archs, from their encoding alone."""
        return self.tables(genomes) if self.tables is not None else self._factors_direct(genomes)


@PREDICTORS.register("fewshot")
class FewShotPredictor(LogNormalPredictor):
    """Adapts to ``target_samples.device`` from source devices (a ``SourceMatrix``, or the
    ``SourceFactors`` already fitted to one)."""

    name = "fewshot"

    def __init__(self, space, source: SourceMatrix | SourceFactors, target_samples: TargetSamples,
                 ranks: Sequence[int] = RANKS, noise_scales: Sequence[float] = NOISE_SCALES) -> None:
        super().__init__(space)
        if target_samples.device in source.devices:
            raise HwnasError(f"the source devices include the target "
                             f"'{target_samples.device}': drop it with .without()")
        self.device = target_samples.device
        self.source = source if isinstance(source, SourceFactors) else SourceFactors(space, source)
        self._fit_target(target_samples, ranks, noise_scales)

    # ------------------------------------------------------------------ target side
    def _priors(self, r: int) -> list[tuple[np.ndarray, np.ndarray, float]]:
        """(mean, covariance, log prior weight) of the target's loadings on ``r`` factors.

        Half the prior mass says "a device like the sources on average" (their mean and
        covariance); the other half is shared by one component per source device, "a device
        like that one" (its loadings, a narrower covariance).
        """
        w_src = self.source.loadings[:r]
        cov = np.atleast_2d(np.cov(w_src)) + 1e-6 * np.eye(r)
        n_dev = w_src.shape[1]
        return [(w_src.mean(1), cov, np.log(0.5))] + [
            (w_src[:, c], NEIGHBOUR_SCALE * cov, np.log(0.5 / n_dev)) for c in range(n_dev)]

    def _fit_target(self, samples: TargetSamples, ranks, noise_scales) -> None:
        y = np.log(samples.latency_ms)
        src = self.source
        f = src.factors(samples.genomes)
        models, lmls = [], []
        for r in sorted({min(int(r), src.rank_max) for r in ranks}):
            fa = np.c_[np.ones(len(y)), f[:, :r]]
            for m, c, log_prior in self._priors(r):
                cov = np.zeros((r + 1, r + 1))
                cov[0, 0] = 1.0                                # intercept: log-ms scale of the device
                cov[1:, 1:] = c
                mean = np.r_[y.mean() - f[:, :r].mean(0) @ m, m]
                for ns in noise_scales:
                    s2 = src.residual_var[r - 1] * ns
                    w, post, lml = _posterior(fa, y, mean, cov, s2)
                    models.append((r, w, post, s2))
                    lmls.append(lml + log_prior)
        lmls = np.asarray(lmls)
        weights = np.exp(lmls - lmls.max())
        self._models = models
        self._weights = weights / weights.sum()
        self._collapse()

    def _collapse(self) -> None:
        """Fold the model average into one mean vector and one second-moment matrix.

        Each model's mean is linear and its variance quadratic in [1, factors], so the mixture's
        first two moments are too: prediction is then two products whatever the model count.
        """
        size = 1 + self.source.rank_max
        w_bar, q, s2_bar = np.zeros(size), np.zeros((size, size)), 0.0
        for (r, w, post, s2), p in zip(self._models, self._weights):
            wp = np.zeros(size)
            wp[:r + 1] = w
            pp = np.zeros((size, size))
            pp[:r + 1, :r + 1] = post
            w_bar += p * wp
            q += p * (pp + np.outer(wp, wp))
            s2_bar += p * s2
        self._w_bar, self._q, self._s2_bar = w_bar, q, s2_bar
        tabs = self.source.tables
        self._mean_tables = None if tabs is None else tabs.project(w_bar[1:], w_bar[0])

    def _log_moments(self, genomes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        f = self.source.factors(genomes)
        fa = np.c_[np.ones(len(f)), f]
        mean = fa @ self._w_bar
        second = ((fa @ self._q) * fa).sum(1) + self._s2_bar
        return mean, np.sqrt(np.maximum(second - mean ** 2, 1e-12))

    def predict_genomes(self, genomes: np.ndarray) -> np.ndarray:
        if self._mean_tables is None:
            return super().predict_genomes(genomes)
        return np.exp(self._mean_tables(genomes)[:, 0])    # the mean alone: scalar gathers

    def summary(self) -> dict:
        ranks = {}
        for (r, *_), p in zip(self._models, self._weights):
            ranks[r] = ranks.get(r, 0.0) + float(p)
        return {"device": self.device, "sources": list(self.source.devices),
                "rank_weights": {str(k): round(v, 4) for k, v in ranks.items()}}
