"""Accuracy predictors on ``space.encode_genomes`` plus log-MACs: ridge here, GP beside it.

Both are fitted on subnets whose accuracy was measured with inherited weights (BN
recalibrated) on the validation split, and both predict a population of 10,000 genomes in
milliseconds. They are stored as JSON, with a ``kind`` that ``ACC_MODELS`` maps back to the
class: the space config, the feature scaling, the fitted parameters and the fit's held-out
statistics.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from hwnas._io import atomic_write_json, read_json
from hwnas._registry import Registry
from hwnas.errors import DataError
from hwnas.predict._acc_features import subnet_features
from hwnas.predict.accuracy_gp import GPAccuracyPredictor, _standardise

__all__ = ["AccuracyPredictor", "ACC_MODELS", "fit_accuracy_predictor", "fit_ridge",
           "load_accuracy_predictor", "kendall_tau", "PREDICTOR_FILE"]

PREDICTOR_FILE = "accuracy_predictor.json"
_ALPHAS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)


def kendall_tau(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import kendalltau

    return float(kendalltau(np.asarray(a), np.asarray(b)).statistic)


@dataclass
class AccuracyPredictor:
    """``predict_genomes(G) -> top-1`` (fraction), vectorised; ``predict(archs)`` for edges."""

    space: object
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float
    alpha: float
    stats: dict = field(default_factory=dict)

    name = "ridge"

    def features(self, genomes: np.ndarray) -> np.ndarray:
        return subnet_features(self.space, genomes)

    def predict_genomes(self, genomes: np.ndarray) -> np.ndarray:
        x = (self.features(genomes) - self.mean) / self.scale
        return x @ self.weights + self.bias

    def predict(self, archs: Sequence) -> np.ndarray:
        return self.predict_genomes(self.space.to_genomes(list(archs)))

    def to_json(self) -> dict:
        return {"kind": self.name, "space": self.space.config(), "alpha": self.alpha,
                "bias": float(self.bias), "mean": self.mean.tolist(),
                "scale": self.scale.tolist(), "weights": self.weights.tolist(),
                "stats": self.stats}

    def save(self, path: str | Path) -> Path:
        return atomic_write_json(path, self.to_json(), indent=None)

    @classmethod
    def load(cls, path: str | Path, space=None):
        """The predictor stored at ``path``, of whichever kind it was fitted as."""
        from hwnas.spaces import space_from_config

        obj = read_json(path, "accuracy predictor", DataError)
        if not isinstance(obj, dict):
            raise DataError(f"malformed accuracy predictor {path}: not a JSON object")
        kind = obj.get("kind", cls.name)
        try:
            space = space or space_from_config(obj["space"])
        except KeyError:
            raise DataError(f"malformed accuracy predictor {path}: no space") from None
        pred = ACC_MODELS.get(kind).from_json(obj, space, path)
        if len(pred.mean) != pred.features(space.sample_genomes(
                np.random.default_rng(0), 1)).shape[1]:
            raise DataError(f"accuracy predictor {path} does not match its space")
        return pred

    @classmethod
    def fit(cls, space, genomes: np.ndarray, acc: np.ndarray, stats: dict | None = None,
            hyper: dict | None = None) -> "AccuracyPredictor":
        """``hyper`` is for the GP's kernel; the ridge chooses its penalty by CV each time."""
        return fit_ridge(space, genomes, acc, stats, cls=cls)

    @classmethod
    def from_json(cls, obj: dict, space, path) -> "AccuracyPredictor":
        try:
            return cls(space, np.asarray(obj["mean"], np.float32),
                       np.asarray(obj["scale"], np.float32),
                       np.asarray(obj["weights"], np.float32), float(obj["bias"]),
                       float(obj["alpha"]), obj.get("stats", {}))
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"malformed accuracy predictor {path}: {exc}") from None


def _ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    ym = y.mean()
    w = np.linalg.solve(x.T @ x + alpha * np.eye(x.shape[1]), x.T @ (y - ym))
    return w, float(ym)


def _cv_alpha(x: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0) -> float:
    """The ridge penalty with the best k-fold Kendall τ (ranking is what search needs)."""
    part = np.random.default_rng(seed).permutation(len(y)) % folds
    best, best_tau = _ALPHAS[0], -2.0
    for alpha in _ALPHAS:
        pred = np.zeros_like(y)
        for f in range(folds):
            w, b = _ridge(x[part != f], y[part != f], alpha)
            pred[part == f] = x[part == f] @ w + b
        tau = kendall_tau(pred, y)
        if tau > best_tau:
            best, best_tau = alpha, tau
    return best


def fit_ridge(space, genomes: np.ndarray, acc: np.ndarray,
              stats: dict | None = None, cls: type | None = None) -> AccuracyPredictor:
    """Ridge on the standardised features; the penalty is chosen by cross-validation.
    ``cls``: an ``AccuracyPredictor`` subclass with features of its own."""
    cls = cls or AccuracyPredictor
    blank = cls(space, np.zeros(1), np.ones(1), np.zeros(1), 0.0, 0.0)
    f = blank.features(genomes).astype(np.float64)
    mean, scale = _standardise(f)
    x = (f - mean) / scale
    alpha = _cv_alpha(x, acc)
    w, b = _ridge(x, acc, alpha)
    return cls(space, mean.astype(np.float32), scale.astype(np.float32),
               w.astype(np.float32), b, alpha, dict(stats or {}))


def fit_accuracy_predictor(space, genomes: np.ndarray, acc: np.ndarray,
                           stats: dict | None = None, kind: str = "gp",
                           hyper: dict | None = None):
    """Fit the ``kind`` of ``ACC_MODELS`` on measured subnets (``gp`` or ``ridge``).

    ``hyper``: a previous GP fit's kernel hyperparameters, reused when still valid
    (``accuracy_gp.fit_gp``)."""
    genomes, acc = np.asarray(genomes), np.asarray(acc, np.float64)
    if len(acc) < 8:
        raise DataError(f"need at least 8 measured subnets to fit a predictor, got {len(acc)}")
    return ACC_MODELS.get(kind).fit(space, genomes, acc, stats, hyper=hyper)


ACC_MODELS: Registry = Registry("accuracy predictor kind")
ACC_MODELS.register("ridge")(AccuracyPredictor)
ACC_MODELS.register("gp")(GPAccuracyPredictor)


def load_accuracy_predictor(ckpt_dir: str | Path):
    """The predictor shipped in a supernet checkpoint folder."""
    return AccuracyPredictor.load(Path(ckpt_dir) / PREDICTOR_FILE)
