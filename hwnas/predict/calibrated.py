"""``calibrated``: the table sum, corrected by what whole networks measured on the device show.

A table sum misses what the compiler does across operators (fusion, layout changes, one
allocation plan, fewer launches) and the device's fixed per-network costs. This predictor learns
that gap, ``log(measured / table sum)``, from the whole networks ``hwnas profile`` measures
(``table.meta["networks"]``), with features of where the table time goes, the arch encoding,
MACs, parameters, activations and operator count. The model is scikit-learn's
``BayesianRidge`` (evidence-tuned regularisation suits the few dozen networks a profile
measures) on one of four nested feature sets (the table sum alone; plus costs; plus a
resolution one-hot; everything),
whichever predicts left-out networks best; its predictive variance gives the upper quantile
that search uses as a safety margin. It is stored as JSON beside the table (``<space>.calibrated.json``).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np

from hwnas.errors import TableError
from hwnas.predict._base import PREDICTORS, LogNormalPredictor
from hwnas.predict._features import feature_sets, network_features
from hwnas.predict._store import array, load_predictor_json, save_predictor
from hwnas.profile.networks import calibration_networks
from hwnas.profile.table import LatencyTable

__all__ = ["CalibratedPredictor", "calibrate_table"]

log = logging.getLogger("hwnas.predict")

MIN_NETWORKS = 5


@PREDICTORS.register("calibrated")
class CalibratedPredictor(LogNormalPredictor):
    name = "calibrated"

    def __init__(self, space, table: LatencyTable, model: dict, provenance: dict | None = None) -> None:
        super().__init__(space)
        self.table = table
        self._ms = table.space_values(space)                 # raises naming a missing operator
        self.model = model
        self.provenance = dict(provenance or {})
        self._mean = array(model, "feature_mean")
        self._scale = array(model, "feature_scale")
        self._coef = array(model, "coef")
        self._sigma = array(model, "sigma")
        self._intercept = float(model["intercept"])
        self._noise_var = 1.0 / float(model["alpha"])
        if not (len(self._mean) == len(self._scale) == len(self._coef) == len(self._sigma)):
            raise TableError("corrupt calibrated predictor: feature sizes disagree")

    # ------------------------------------------------------------------ fitting
    @classmethod
    def fit(cls, space, table: LatencyTable, archs: Sequence[str] | None = None,
            measured_ms: Sequence[float] | None = None) -> "CalibratedPredictor":
        """Fit on ``archs``/``measured_ms``, by default the table's own measured networks."""
        if archs is None:
            archs, measured_ms = calibration_networks(space, table)
        measured = np.asarray(measured_ms, dtype=np.float64)
        if len(archs) < MIN_NETWORKS:
            raise TableError(f"latency table for '{table.target}' holds {len(archs)} measured "
                             f"networks of this space; the calibrated predictor needs at least "
                             f"{MIN_NETWORKS} (profile more whole networks into the table)")
        genomes = space.to_genomes([space.parse(a) for a in archs])
        feats, total = network_features(space, genomes, table.space_values(space))
        gap = np.log(measured) - np.log(total)
        sets = feature_sets(space)
        cv = {name: _cv_error(feats[:, :n], gap) for name, n in sets.items()}
        chosen = min(cv, key=cv.get)
        n_cols = sets[chosen] or feats.shape[1]
        model = {**_bayesian_ridge(feats[:, :n_cols], gap), "feature_set": chosen,
                 "target": "log(measured_ms / table_sum_ms)"}
        prov = {"table_target": table.target, "table_updated": table.meta.get("updated"),
                "n_networks": len(archs), "networks": list(archs),
                "gap_median": float(np.exp(np.median(gap))),
                "cv_mean_abs_log_error": {k: round(v, 5) for k, v in cv.items()},
                "library": "scikit-learn BayesianRidge"}
        return cls(space, table, model, prov)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        return save_predictor(path, self.name, self.space.config(), self.model, self.provenance)

    @classmethod
    def load(cls, path: str | Path, space, table: LatencyTable) -> "CalibratedPredictor":
        data = load_predictor_json(path, cls.name, space.config())
        prov = data.get("provenance") or {}
        if not isinstance(prov, dict):
            raise TableError(f"corrupt latency predictor {path}: 'provenance' must be an object")
        if prov.get("table_target", table.target) != table.target:
            raise TableError(f"{path} was fitted on the table of target "
                             f"'{prov['table_target']}', not '{table.target}'; a predictor "
                             "only describes its own device")
        try:
            return cls(space, table, data["model"], prov)
        except (KeyError, TypeError, ValueError):
            raise TableError(f"corrupt latency predictor {path}: its model lacks a field or "
                             "holds one of the wrong kind") from None

    # ------------------------------------------------------------------ prediction
    def _log_moments(self, genomes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        feats, total = network_features(self.space, genomes, self._ms, len(self._mean))
        x = (feats - self._mean) / self._scale
        mean = np.log(total) + x @ self._coef + self._intercept
        var = self._noise_var + np.einsum("ij,jk,ik->i", x, self._sigma, x)
        return mean, np.sqrt(var)


def _bayesian_ridge(x: np.ndarray, y: np.ndarray) -> dict:
    """scikit-learn's BayesianRidge on standardised ``x``, as plain arrays."""
    from sklearn.linear_model import BayesianRidge

    mean, scale = x.mean(0), x.std(0)
    scale[scale < 1e-12] = 1.0
    reg = BayesianRidge(max_iter=1000).fit((x - mean) / scale, y)
    return {"feature_mean": mean, "feature_scale": scale, "coef": reg.coef_,
            "intercept": float(reg.intercept_), "alpha": float(reg.alpha_),
            "lambda": float(reg.lambda_), "sigma": reg.sigma_}


def _cv_error(x: np.ndarray, y: np.ndarray, folds: int = 10) -> float:
    """Mean absolute held-out error (log units) of a BayesianRidge on ``x``; leave-one-out
    up to ``folds`` networks, then ``folds``-fold (interleaved, so deterministic)."""
    errs = []
    for f in range(min(folds, len(y))):
        test = np.arange(len(y)) % min(folds, len(y)) == f
        m = _bayesian_ridge(x[~test], y[~test])
        pred = ((x[test] - m["feature_mean"]) / m["feature_scale"]) @ m["coef"] + m["intercept"]
        errs.extend(np.abs(pred - y[test]))
    return float(np.mean(errs))


def calibrate_table(table_file: str | Path, space=None) -> Path:
    """Fit the calibrated predictor from a table's networks of ``space`` (a ``SearchSpace`` or
    None: the table's first configuration) and save it beside the table."""
    from hwnas.predict.loading import calibrated_file, table_space

    table = LatencyTable.load(table_file)
    index, space = table_space(table, space)
    pred = CalibratedPredictor.fit(space, table)
    out = pred.save(calibrated_file(table_file, index))
    log.info("calibrated predictor from %d networks → %s", pred.provenance["n_networks"], out)
    return out
