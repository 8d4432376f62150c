"""A Gaussian-process accuracy predictor: one length scale per feature (ARD), fitted by sklearn.

The features are the ridge's (``space.encode_genomes`` plus log-MACs), standardised. sklearn's
``GaussianProcessRegressor`` chooses the kernel's hyperparameters by maximising the marginal
likelihood; what prediction needs (the training features, the dual weights, the length scales
and the target's normalisation) is then stored as JSON, and prediction is plain numpy: one
distance matrix and one matrix-vector product, a few milliseconds for 10,000 genomes.

Why a GP: the subnets of a small-image supernet differ by a few points of top-1, mostly through
the resolution, and the rest is a sum of small, interacting per-block effects. A linear model on
one-hot choices misses the interactions; ARD lets the fit ignore the many choices that do not
matter and share strength between subnets that differ only in them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hwnas._io import atomic_write_json
from hwnas.errors import DataError
from hwnas.predict._acc_features import subnet_features

__all__ = ["GPAccuracyPredictor", "MAX_OPT", "fit_gp", "hyper_of"]


@dataclass
class GPAccuracyPredictor:
    """``predict_genomes(G) -> top-1``: the GP posterior mean."""

    space: object
    mean: np.ndarray            # feature standardisation
    scale: np.ndarray
    train_x: np.ndarray         # standardised training features over the length scales
    dual: np.ndarray            # K⁻¹ y (normalised y)
    amplitude: float            # the constant kernel's value
    noise: float                # the white kernel's level (normalised y units)
    y_mean: float
    y_std: float
    stats: dict = field(default_factory=dict)
    length: np.ndarray = field(default_factory=lambda: np.ones(1))   # ARD length scales
    _cache: tuple | None = field(default=None, init=False, repr=False, compare=False)

    name = "gp"

    def features(self, genomes: np.ndarray) -> np.ndarray:
        return subnet_features(self.space, genomes, np.float64)

    def predict_genomes(self, genomes: np.ndarray) -> np.ndarray:
        """Posterior mean: exp(z·x - |z|²/2 - |x|²/2) built in one (N, n_train) buffer.

        Search calls this on tens of thousands of genomes per run, so it runs in float32 (half
        the time of the product and the exponential) unless the fit is so ill-conditioned, with
        large dual weights of both signs, that float32 rounding could move a prediction by more
        than 1e-4; then in float64.
        """
        if self._cache is None:
            wide = np.abs(self.amplitude * self.dual).sum() * self.y_std
            half_t2 = 0.5 * (self.train_x * self.train_x).sum(1)
            dt = np.float32 if 1.2e-7 * (1 + 2 * half_t2.max()) * wide < 1e-4 else np.float64
            self._cache = (dt, self.train_x.T.astype(dt), half_t2.astype(dt),
                           (self.amplitude * self.dual).astype(dt), self.mean.astype(dt),
                           (1.0 / (self.scale * self.length)).astype(dt))
        dt, txt, half_t2, w, mean, inv = self._cache
        z = subnet_features(self.space, genomes, dt)
        z -= mean
        z *= inv
        e = z @ txt
        e -= half_t2
        e -= 0.5 * (z * z).sum(1, keepdims=True)
        np.minimum(e, 0.0, out=e)
        np.exp(e, out=e)
        return (e @ w).astype(np.float64) * self.y_std + self.y_mean

    def predict(self, archs) -> np.ndarray:
        return self.predict_genomes(self.space.to_genomes(list(archs)))

    def to_json(self) -> dict:
        def r(a) -> list:
            return np.round(np.asarray(a, np.float64), 7).tolist()

        return {"kind": self.name, "space": self.space.config(), "mean": r(self.mean),
                "scale": r(self.scale), "length_scale": r(self.length),
                "train_x": r(self.train_x), "dual": r(self.dual),
                "amplitude": float(self.amplitude), "noise": float(self.noise),
                "y_mean": float(self.y_mean), "y_std": float(self.y_std), "stats": self.stats}

    @classmethod
    def fit(cls, space, genomes: np.ndarray, acc: np.ndarray, stats: dict | None = None,
            hyper: dict | None = None) -> "GPAccuracyPredictor":
        return fit_gp(space, genomes, acc, stats, hyper=hyper)

    def save(self, path: str | Path) -> Path:
        return atomic_write_json(path, self.to_json(), indent=None)

    @classmethod
    def from_json(cls, obj: dict, space, path) -> "GPAccuracyPredictor":
        try:
            arr = {k: np.asarray(obj[k], np.float64)
                   for k in ("mean", "scale", "length_scale", "train_x", "dual")}
            pred = cls(space, arr["mean"], arr["scale"], arr["train_x"], arr["dual"],
                       float(obj["amplitude"]), float(obj["noise"]), float(obj["y_mean"]),
                       float(obj["y_std"]), obj.get("stats", {}), length=arr["length_scale"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"malformed accuracy predictor {path}: {exc}") from None
        d = len(pred.mean)
        if (pred.train_x.ndim != 2 or pred.train_x.shape[1] != d or len(pred.length) != d
                or len(pred.dual) != len(pred.train_x)):
            raise DataError(f"malformed accuracy predictor {path}: inconsistent shapes")
        return pred


#: marginal-likelihood optimisation costs O(n²·d) memory and about O(n²·d) time per step with
#: sklearn's ARD gradient (600 samples: 18 min here); beyond this many samples the kernel's
#: hyperparameters are chosen on the first ``MAX_OPT`` samples and the GP is conditioned on all
MAX_OPT = 600


def _standardise(f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, scale = f.mean(0), f.std(0)
    scale[scale < 1e-8] = 1.0
    return mean, scale


def _optimise(x: np.ndarray, acc: np.ndarray, seed: int):
    """sklearn's marginal-likelihood fit of ConstantKernel × ARD RBF + WhiteKernel."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

    d = x.shape[1]
    kernel = (ConstantKernel(1.0, (1e-3, 1e3)) * RBF(np.full(d, 3.0), (1e-1, 1e4))
              + WhiteKernel(0.1, (1e-5, 1.0)))
    gp = GaussianProcessRegressor(kernel, normalize_y=True, n_restarts_optimizer=1,
                                  random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gp.fit(x, acc)
    return gp


def _raw_hyper(amplitude: float, noise: float, length: np.ndarray, y_std: float,
               scale: np.ndarray, n_opt: int, seed: int) -> dict:
    """A kernel fitted on standardised features and normalised top-1, in raw units."""
    var = float(y_std) ** 2
    return {"n_opt": n_opt, "seed": seed, "amplitude": float(amplitude) * var,
            "noise": float(noise) * var,
            "length": np.round(np.asarray(length) * np.ones(len(scale)) * scale, 9).tolist()}


def _hyper(gp, scale: np.ndarray, n_opt: int, seed: int) -> dict:
    """The kernel sklearn fitted, in the units of the raw features and of top-1."""
    prod, white = gp.kernel_.k1, gp.kernel_.k2
    return _raw_hyper(prod.k1.constant_value, white.noise_level,
                      np.atleast_1d(prod.k2.length_scale), gp._y_train_std, scale, n_opt, seed)


def _condition(x: np.ndarray, acc: np.ndarray, hyper: dict, scale: np.ndarray):
    """The GP with ``hyper`` fixed, conditioned on (x, acc): one Cholesky, no optimisation."""
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

    var = float(np.std(acc)) ** 2 or 1.0
    kernel = (ConstantKernel(hyper["amplitude"] / var, "fixed")
              * RBF(np.asarray(hyper["length"]) / scale, "fixed")
              + WhiteKernel(hyper["noise"] / var, "fixed"))
    return GaussianProcessRegressor(kernel, normalize_y=True, optimizer=None).fit(x, acc)


def fit_gp(space, genomes: np.ndarray, acc: np.ndarray, stats: dict | None = None,
           seed: int = 0, hyper: dict | None = None,
           max_opt: int = MAX_OPT) -> GPAccuracyPredictor:
    """Fit an ARD RBF kernel plus white noise by marginal likelihood (sklearn).

    The hyperparameters are optimised on the first ``min(n, max_opt)`` samples (standardised
    on their own), then the GP is conditioned on all of them. ``hyper`` is a previous fit's
    ``stats["hyper"]``: when it was optimised on that same prefix with the same seed, it is
    reused instead of optimised again, so topping up the samples of a finished checkpoint
    refits in seconds.
    """
    acc = np.asarray(acc, np.float64)
    f = subnet_features(space, genomes, np.float64)
    mean, scale = _standardise(f)
    x = (f - mean) / scale
    d = x.shape[1]
    n_opt = min(len(acc), max_opt)
    if (hyper and hyper.get("n_opt") == n_opt and hyper.get("seed") == seed
            and len(hyper.get("length", ())) == d):
        gp = _condition(x, acc, hyper, scale)
    elif n_opt == len(acc):
        gp = _optimise(x, acc, seed)
        hyper = _hyper(gp, scale, n_opt, seed)
    else:
        sub_mean, sub_scale = _standardise(f[:n_opt])
        hyper = _hyper(_optimise((f[:n_opt] - sub_mean) / sub_scale, acc[:n_opt], seed),
                       sub_scale, n_opt, seed)
        gp = _condition(x, acc, hyper, scale)
    prod, white = gp.kernel_.k1, gp.kernel_.k2
    amplitude, length = float(prod.k1.constant_value), np.atleast_1d(prod.k2.length_scale)
    if length.size == 1:
        length = np.full(d, float(length[0]))
    return GPAccuracyPredictor(space, mean, scale, x / length, np.asarray(gp.alpha_).ravel(),
                               amplitude, float(white.noise_level), float(gp._y_train_mean),
                               float(gp._y_train_std), {**(stats or {}), "hyper": hyper},
                               length=length)


def hyper_of(pred: GPAccuracyPredictor, n_fit: int, seed: int = 0) -> dict:
    """``stats["hyper"]`` for a predictor saved before it was recorded (its own fit)."""
    return _raw_hyper(pred.amplitude, pred.noise, pred.length, pred.y_std, pred.scale,
                      min(n_fit, MAX_OPT), seed)
