"""An accuracy model fitted on measured top-1, its cross-validation, and how it ranks subnets
far from the measured Pareto front.

The model is a ridge regression (penalty chosen by cross-validated Kendall τ) on the subnet's
choices (one-hot kernel and expand per block slot, one-hot depth per stage) and its size (log
multiply-adds and log parameters, computed in the configuration it scores): measured subnets
that cluster near the front rank mostly by size, and the one-hots rank subnets of one size.

``cross_validate`` fits it on k-1 folds and predicts the k-th (the penalty is chosen inside
each training part), so every measured subnet gets a prediction from a model that never saw it.
``front_analysis`` uses those held-out predictions to say how the model ranks the subnets
furthest below the measured front, and refits on the subnets nearest to the front only to
predict the furthest ones (extrapolating away from the front).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwnas.predict._acc_features import subnet_features
from hwnas.predict.accuracy import AccuracyPredictor, fit_ridge, kendall_tau

__all__ = ["SizeAwareRidge", "fit_measured_model", "CrossValidation", "cross_validate",
           "front_distance", "front_groups", "front_analysis", "spearman"]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(np.asarray(a), np.asarray(b)).statistic)


class SizeAwareRidge(AccuracyPredictor):
    """Ridge on the subnet's encoding, log MACs and log parameters."""

    name = "ridge-size"

    def features(self, genomes: np.ndarray) -> np.ndarray:
        g = np.asarray(genomes)
        params = np.log(self.space.params_genomes(g).astype(np.float32))[:, None]
        return np.concatenate([subnet_features(self.space, g), params], 1)


def fit_measured_model(space, genomes: np.ndarray, top1: np.ndarray,
                       stats: dict | None = None) -> SizeAwareRidge:
    """The model of ``top1`` (a fraction) over genome rows of ``space``."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return fit_ridge(space, np.asarray(genomes), np.asarray(top1, np.float64), stats,
                         cls=SizeAwareRidge)


@dataclass
class CrossValidation:
    """Held-out predictions of every measured subnet, by fold."""

    folds: int
    seed: int
    measured: np.ndarray
    predicted: np.ndarray
    fold: np.ndarray

    @property
    def tau(self) -> float:
        return kendall_tau(self.predicted, self.measured)

    def summary(self) -> dict:
        per_fold = [kendall_tau(self.predicted[self.fold == f], self.measured[self.fold == f])
                    for f in range(self.folds)]
        err = 100 * (self.predicted - self.measured)
        return {"folds": self.folds, "seed": self.seed, "n": int(len(self.measured)),
                "kendall_tau": self.tau, "spearman": spearman(self.predicted, self.measured),
                "kendall_tau_per_fold": per_fold,
                "mae_points": float(np.mean(np.abs(err))),
                "rmse_points": float(np.sqrt(np.mean(err ** 2)))}


def cross_validate(space, genomes: np.ndarray, top1: np.ndarray, folds: int = 5,
                   seed: int = 0) -> CrossValidation:
    """k-fold held-out predictions of ``fit_measured_model`` (seeded random folds)."""
    from threadpoolctl import threadpool_limits

    y = np.asarray(top1, np.float64)
    fold = np.random.default_rng(seed).permutation(len(y)) % folds
    pred = np.zeros_like(y)
    # 250 solves of ~170 unknowns: a BLAS thread pool on busy cores only waits (100x slower)
    with threadpool_limits(1):
        for f in range(folds):
            model = fit_measured_model(space, genomes[fold != f], y[fold != f])
            pred[fold == f] = model.predict_genomes(genomes[fold == f])
    return CrossValidation(folds, seed, y, pred, fold)


def front_distance(macs: np.ndarray, top1: np.ndarray) -> np.ndarray:
    """How far (in top-1 units) each subnet lies below the measured Pareto front of top-1
    over MACs: the best top-1 of any subnet with at most its MACs, minus its own."""
    order = np.argsort(macs, kind="stable")
    best = np.maximum.accumulate(np.asarray(top1)[order])
    front = np.empty_like(best)
    front[order] = best
    return front - np.asarray(top1)


def front_groups(space, genomes: np.ndarray, top1: np.ndarray,
                 far_quantile: float = 0.75) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(distance, near, far)``: each subnet's distance below the front, the subnets nearest
    to it (distance ≤ median) and the furthest (distance ≥ its ``far_quantile``, off it)."""
    dist = front_distance(space.flops_genomes(genomes), top1)
    far = (dist >= np.quantile(dist, far_quantile)) & (dist > 0)
    return dist, dist <= np.median(dist), far


def front_analysis(space, genomes: np.ndarray, cv: CrossValidation,
                   far_quantile: float = 0.75) -> dict:
    """Ranking near and far from the front: the held-out τ within the subnets nearest to the
    front and within the furthest (``front_groups``), and a model refitted on all but the
    furthest that predicts them."""
    y = cv.measured
    dist, near, far = front_groups(space, genomes, y, far_quantile)
    if far.sum() < 3 or (~far).sum() < 8:
        return {"far_quantile": far_quantile, "n_near": int(near.sum()), "n_far": int(far.sum()),
                "note": "too few subnets below the front to tell near from far"}
    refit = fit_measured_model(space, genomes[~far], y[~far])
    out_pred = refit.predict_genomes(genomes[far])
    return {
        "far_quantile": far_quantile,
        "distance_points": {"median": float(100 * np.median(dist)),
                            "far_from": float(100 * np.quantile(dist, far_quantile)),
                            "max": float(100 * dist.max())},
        "n_near": int(near.sum()), "n_far": int(far.sum()),
        "tau_cv_near": kendall_tau(cv.predicted[near], y[near]),
        "tau_cv_far": kendall_tau(cv.predicted[far], y[far]),
        "mae_cv_near_points": float(100 * np.mean(np.abs(cv.predicted[near] - y[near]))),
        "mae_cv_far_points": float(100 * np.mean(np.abs(cv.predicted[far] - y[far]))),
        "tau_fit_near_predict_far": kendall_tau(out_pred, y[far]),
        "bias_fit_near_predict_far_points": float(100 * np.mean(out_pred - y[far])),
    }
