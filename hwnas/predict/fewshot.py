"""``fewshot``: latency on a new device from k measured networks, the arch's costs and what
other devices show.

Three families of models compete for the k samples:

- ``costs``: latency is a line (or plane) in cost features of the arch: MACs, parameters,
  depth (kernels launched), activation traffic; where a source device has a latency table for
  the space, its table-sum prediction; where source devices measured networks of the space,
  their latency as an operator table learnt from those networks. Each own cost alone, in
  pairs and all at once, and each source latency alone or with one own cost, is a candidate
  line; a launch-bound device gets its depth line and a compute-bound one its MACs line.
- ``factors``: log-latency is a weighted sum of the *latency factors* that source devices show
  (``SourceFactors``); the weights get a prior built from the source devices' own weights (a
  Gaussian fitted to all of them, mixed with one narrower Gaussian around each of them).
- ``both``: the factors plus the logarithms of the space's own costs.

Every model (family, feature set or rank, prior component, noise level and noise floor) is a
Bayesian linear regression, weighted by its marginal likelihood on the k samples times an equal
prior share of each family (Bayesian model averaging): the samples themselves say whether a
cost line, the source devices or both explain them, and 10 samples pick simpler models than
50. Models of log-latency and of latency are scored on the same data (both likelihoods carry
the same 1/latency Jacobian), and the prediction is their weighted mean log-latency.

The target device enters only through ``TargetSamples``; sources that name it are refused, so
none of its other values can leak in.
"""
from __future__ import annotations

import itertools
import logging
from pathlib import Path
from typing import Sequence

import numpy as np

from hwnas.errors import HwnasError, TableError
from hwnas.predict._base import PREDICTORS, LogNormalPredictor
from hwnas.predict._bma import ModelGroup, normalise, posterior_batch
from hwnas.predict._costs import CostFeatures
from hwnas.predict._store import load_predictor_json, same_configuration, save_predictor
from hwnas.predict._sources import (MIN_SAMPLES, RANKS, SourceFactors, SourceMatrix,
                                    TargetSamples, split_target)

__all__ = ["SourceMatrix", "TargetSamples", "SourceFactors", "FewShotPredictor", "split_target",
           "FAMILIES", "MIN_SAMPLES"]

log = logging.getLogger("hwnas.predict")

FAMILIES = ("costs", "factors", "both")
# Prior mass of each family: a cost line is what anyone can fit in a spreadsheet, and the
# predictor must never lose to one, so lines take 3/5 of it and the models that lean on source
# devices must earn their weight from the samples.
FAMILY_PRIOR = {"costs": 3.0, "factors": 1.0, "both": 1.0}
SOURCE_LINE_SHARE = 0.25        # of the lines' mass: lines in a source device's latency
NOISE_SCALES = (1.0, 3.0, 10.0, 30.0)     # × the sources' residual variance (log models)
NEIGHBOUR_SCALE = 0.5     # covariance of "like source device c" relative to the population's
REL_NOISE = (0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32)   # latency-line noise, relative
# an absolute noise floor (timer resolution, whole-ms readings, a degenerate network), as a
# fraction of the samples' typical latency: a 0.01 ms outlier must not steer a 25 ms fit
FLOORS = (0.0, 0.05, 0.2)
COST_TAUS = (0.1, 0.3, 1.0)     # prior sd of a standardised cost's slope, relative to latency
LOG_COST_TAUS = (0.05, 0.2)     # prior sd of a standardised log cost's weight (log models)
INTERCEPT_SD = 0.5              # prior sd of a line's level, relative to the samples' scale
PRUNE = 1e-9                    # models below this posterior weight are dropped


def _source_extra(source: SourceFactors | None):
    """Source devices' learnt latencies as extra cost features (none without sources)."""
    if source is None:
        return None, ()
    return source.latency_ms, tuple(f"source:{d}" for d in source.devices)


def _from_source(name: str) -> bool:
    """Whether a cost feature is a source device's latency (learnt or a table sum)."""
    return name.startswith(("source:", "table:"))


def _cost_subsets(names: Sequence[str], varying: Sequence[int]) -> list[tuple[list, float]]:
    """(feature set, log prior share) of each latency line: the space's own costs alone, in
    pairs and all at once; a source device's latency alone or with one own cost.

    Lines in source devices' latencies share ``SOURCE_LINE_SHARE`` of the prior mass, the
    space's own cost lines the rest: with many source devices, one of them fits k samples by
    chance, and must not crowd out the few cost lines."""
    v = [int(i) for i in varying]
    own = [i for i in v if not _from_source(names[i])]
    src = [i for i in v if _from_source(names[i])]
    if not own:
        return [([j], -np.log(len(src))) for j in src]
    mine = [(i,) for i in own] + list(itertools.combinations(own, 2))
    if len(own) > 2:
        mine.append(tuple(own))
    theirs = [(j,) for j in src] + [(i, j) for j in src for i in own]
    if not theirs:
        return [(list(cols), -np.log(len(mine))) for cols in mine]
    shares = ((mine, 1.0 - SOURCE_LINE_SHARE), (theirs, SOURCE_LINE_SHARE))
    return [(list(cols), np.log(share / len(grp))) for grp, share in shares for cols in grp]


def _fold_line(grp: ModelGroup) -> dict:
    """One feature set's latency lines as one: their weighted mean coefficients and second
    moment (each line's mean latency is linear in its coefficients, so this is their mixture's
    exact mean and variance), the mean noise terms and the set's total weight."""
    p = grp.weight / grp.weight.sum()
    return {"cols": list(grp.cols), "w": p @ grp.w,
            "q": np.einsum("m,mij->ij", p, grp.post) + np.einsum("m,mi,mj->ij", p, grp.w, grp.w),
            "s2": float(p @ grp.s2), "floor2": float(p @ grp.floor ** 2),
            "scale": float(grp.scale), "weight": float(grp.weight.sum())}


@PREDICTORS.register("fewshot")
class FewShotPredictor(LogNormalPredictor):
    """Adapts to ``target_samples.device`` from its cost features (``costs``, or built from
    ``tables``: source name → per-operator latency of the space) and, when given, source
    devices (a ``SourceMatrix``, or the ``SourceFactors`` already fitted to one)."""

    name = "fewshot"
    provenance: dict = {}

    def __init__(self, space, source: SourceMatrix | SourceFactors | None,
                 target_samples: TargetSamples, costs: CostFeatures | None = None,
                 tables: dict[str, np.ndarray] | None = None, ranks: Sequence[int] = RANKS,
                 noise_scales: Sequence[float] = NOISE_SCALES,
                 families: Sequence[str] = FAMILIES) -> None:
        super().__init__(space)
        self.device = target_samples.device
        names = set(source.devices if source is not None else ()) | set(tables or ())
        if costs is not None:
            names |= {n.partition(":")[2] for n in costs.names if ":" in n}
        if self.device in names:
            raise HwnasError(f"the source devices include the target '{self.device}': its own "
                             "measurements would leak into its predictor")
        bad = [f for f in families if f not in FAMILIES]
        if bad or not families:
            raise HwnasError(f"unknown few-shot model family '{bad[0] if bad else ''}'; "
                             f"choose from: {', '.join(FAMILIES)}")
        if isinstance(source, SourceMatrix):
            source = SourceFactors(space, source)
        self.source = source
        if costs is None:
            costs = CostFeatures.build(space, tables, *_source_extra(source))
        self.costs = costs
        self.samples = target_samples
        self.families = tuple(families)
        self._ranks, self._noise_scales = tuple(ranks), tuple(noise_scales)
        self._fit()

    # ------------------------------------------------------------------ features
    @property
    def _rank_max(self) -> int:
        return 0 if self.source is None else self.source.rank_max

    def _features(self, genomes: np.ndarray, factors: bool = True):
        """(factor scores (N, R), standardised costs (N, C), standardised log costs (N, C))."""
        raw = self.costs.raw(self.space, genomes)
        f = (self.source.factors(genomes) if self.source is not None and factors
             else np.zeros((len(genomes), 0)))
        return f, self.costs.standard(raw), self.costs.log_standard(raw)

    # ------------------------------------------------------------------ fitting
    def _priors(self, r: int) -> list[tuple[np.ndarray, np.ndarray, float]]:
        """(mean, covariance, log prior share) of the target's loadings on ``r`` factors.

        Half the prior mass says "a device like the sources on average" (their mean and
        covariance); the other half is shared by one component per source device, "a device
        like that one" (its loadings, a narrower covariance).
        """
        if r == 0:
            return [(np.zeros(0), np.zeros((0, 0)), 0.0)]
        w_src = self.source.loadings[:r]
        cov = np.atleast_2d(np.cov(w_src)) + 1e-6 * np.eye(r)
        n_dev = w_src.shape[1]
        return [(w_src.mean(1), cov, np.log(0.5))] + [
            (w_src[:, c], NEIGHBOUR_SCALE * cov, np.log(0.5 / n_dev)) for c in range(n_dev)]

    def _active_families(self) -> list[str]:
        fams = [f for f in self.families if f != "factors" or self.source is not None]
        if not len(self.costs.varying):
            fams = [f for f in fams if f == "factors"]
        if not fams:
            raise HwnasError("few-shot adaptation needs source devices or cost features that "
                             "vary over the space")
        return fams

    def _fit(self) -> None:
        g, y = self.samples.genomes, self.samples.latency_ms
        f, z, zeta = self._features(g)
        fams = self._active_families()
        total = sum(FAMILY_PRIOR[f] for f in fams)
        groups: list[ModelGroup] = []
        if "costs" in fams:
            groups += self._fit_lines(z, y, np.log(FAMILY_PRIOR["costs"] / total))
        for fam in ("factors", "both"):
            if fam in fams:
                groups += self._fit_log(fam, f, zeta, y, np.log(FAMILY_PRIOR[fam] / total))
        normalise(groups)
        self._family_weights = {fam: 0.0 for fam in fams}
        self._rank_weights: dict[int, float] = {}
        for grp in groups:
            self._family_weights[grp.family] += float(grp.weight.sum())
            if grp.log:
                self._rank_weights[grp.rank] = (self._rank_weights.get(grp.rank, 0.0)
                                                + float(grp.weight.sum()))
        kept = [k for k in (grp.keep(PRUNE) for grp in groups) if k is not None]
        self._lines = [_fold_line(grp) for grp in kept if not grp.log]
        self._collapse_log([grp for grp in kept if grp.log])

    def _fit_lines(self, z: np.ndarray, y: np.ndarray, log_family: float) -> list[ModelGroup]:
        """Latency = scale × (b + Σ a_j z_j), noise relative to the latency above a floor:
        rows are divided by the measured latency, so the fit weighs relative errors."""
        scale = float(np.exp(np.log(y).mean()))
        grid = list(itertools.product(COST_TAUS, REL_NOISE, FLOORS))
        log_prior = log_family - np.log(len(grid))
        taus = np.array([t for t, _, _ in grid])
        s2 = np.array([s * s for _, s, _ in grid])
        floor = np.array([c * scale for _, _, c in grid])
        noise = s2[:, None] + (floor[:, None] / y[None, :]) ** 2
        out = []
        for cols, share in _cost_subsets(self.costs.names, self.costs.varying):
            x = scale * np.c_[np.ones(len(y)), z[:, cols]] / y[:, None]
            d = len(cols) + 1
            means = np.zeros((len(grid), d))
            means[:, 0] = 1.0
            covs = np.zeros((len(grid), d, d))
            covs[:, 0, 0] = INTERCEPT_SD ** 2
            covs[:, np.arange(1, d), np.arange(1, d)] = (taus ** 2)[:, None]
            w, post, lml = posterior_batch(x, np.ones(len(y)), means, covs, noise)
            out.append(ModelGroup("costs", False, cols, 0, w, post, s2, floor, scale,
                                  lml + log_prior + share))
        return out

    def _fit_log(self, fam: str, f: np.ndarray, zeta: np.ndarray, y: np.ndarray,
                 log_family: float) -> list[ModelGroup]:
        """Log-latency = b + factors·w (+ log costs·v for ``both``), embedded in the full
        design [1, factors (R), log costs (C)]."""
        ly = np.log(y)
        rmax = self._rank_max
        own = [int(i) for i in self.costs.varying
               if not _from_source(self.costs.names[i])] if fam == "both" else []
        ranks = sorted({min(int(r), rmax) for r in self._ranks}) if rmax else [0]
        taus = LOG_COST_TAUS if own else (0.0,)
        noise_grid = list(itertools.product(self._noise_scales, FLOORS))
        scale = float(np.exp(ly.mean()))
        per_rank = log_family - np.log(len(ranks) * len(taus) * len(noise_grid))
        out = []
        for r in ranks:
            cols = [0] + list(range(1, r + 1)) + [1 + rmax + c for c in own]
            x = np.c_[np.ones(len(ly)), f[:, :r], zeta[:, own]]
            base_var = self.source.residual_var[r - 1] if r else float(np.var(ly)) / 10 + 1e-6
            means, covs, shares, s2, floor = [], [], [], [], []
            for (m, c, share), tau, (ns, fl) in itertools.product(self._priors(r), taus,
                                                                    noise_grid):
                cov = np.zeros((len(cols), len(cols)))
                cov[0, 0] = 1.0                            # intercept: log-ms scale of the device
                cov[1:r + 1, 1:r + 1] = c
                cov[r + 1:, r + 1:] = tau ** 2 * np.eye(len(own))
                mu = np.zeros(len(cols))
                mu[1:r + 1] = m
                mu[0] = ly.mean() - f[:, :r].mean(0) @ m
                means.append(mu)
                covs.append(cov)
                shares.append(share)
                s2.append(base_var * ns)
                floor.append(fl * scale)
            s2, floor = np.array(s2), np.array(floor)
            noise = s2[:, None] + (floor[:, None] / y[None, :]) ** 2
            w, post, lml = posterior_batch(x, ly, np.array(means), np.array(covs), noise)
            out.append(ModelGroup(fam, True, cols, r, w, post, s2, floor, scale,
                                  lml + per_rank + np.array(shares)))
        return out

    def _collapse_log(self, groups: list[ModelGroup]) -> None:
        """Fold the log-latency models into one mean vector and one second-moment matrix over
        [1, factors, log costs] (each model's mean is linear and its variance quadratic in
        them, so the mixture's first two moments are too)."""
        size = 1 + self._rank_max + len(self.costs.names)
        w_bar, q, s2_bar, f2_bar = np.zeros(size), np.zeros((size, size)), 0.0, 0.0
        total = sum(float(grp.weight.sum()) for grp in groups)
        for grp in groups:
            p = grp.weight
            ix = np.ix_(grp.cols, grp.cols)
            w_bar[grp.cols] += p @ grp.w
            q[ix] += np.einsum("m,mij->ij", p, grp.post) + np.einsum("m,mi,mj->ij", p, grp.w, grp.w)
            s2_bar += float(p @ grp.s2)
            f2_bar += float(p @ grp.floor ** 2)
        self._log_part = total
        norm = total if total > 0 else 1.0
        self._w_bar, self._q = w_bar / norm, q / norm
        self._s2_bar, self._floor2_bar = s2_bar / norm, f2_bar / norm
        self._prepare()

    def _prepare(self) -> None:
        tabs = self.source.tables if self.source is not None else None
        r = self._rank_max
        self._mean_tables = (None if tabs is None or self._log_part <= 0
                             else tabs.project(self._w_bar[1:r + 1], self._w_bar[0]))
        # every line's mean in one product: its weights embedded in [1, all costs], in ms
        self._line_w = np.zeros((1 + len(self.costs.names), len(self._lines)))
        for j, line in enumerate(self._lines):
            self._line_w[[0] + [1 + c for c in line["cols"]], j] = line["w"] * line["scale"]
        self._line_p = np.array([line["weight"] for line in self._lines])
        self._line_floor_ms = np.array([1e-3 * line["scale"] for line in self._lines])

    # ------------------------------------------------------------------ prediction
    def _line_moments(self, z: np.ndarray, with_var: bool):
        """Per latency line (feature set): log predicted latency (N, L), its variance, and the
        lines' weights (L,)."""
        ms = np.maximum(np.c_[np.ones(len(z)), z] @ self._line_w, self._line_floor_ms)
        if not with_var:
            return np.log(ms), None, self._line_p
        var = np.empty_like(ms)
        for j, line in enumerate(self._lines):
            x = np.c_[np.ones(len(z)), z[:, line["cols"]]]
            mean = x @ line["w"]
            spread = (((x @ line["q"]) * x).sum(1) - mean ** 2) * line["scale"] ** 2
            var[:, j] = (np.maximum(spread, 0) + line["floor2"]) / ms[:, j] ** 2 + line["s2"]
        return np.log(ms), var, self._line_p

    def _moments(self, genomes: np.ndarray, with_var: bool):
        need_f = with_var or self._mean_tables is None
        f, z, zeta = self._features(genomes, factors=need_f)
        r = self._rank_max
        mean = np.zeros(len(genomes))
        second = np.zeros(len(genomes))
        if self._log_part > 0:
            if self._mean_tables is not None:
                m = self._mean_tables(genomes)[:, 0]
            else:
                m = self._w_bar[0] + f @ self._w_bar[1:r + 1]
            m = m + zeta @ self._w_bar[1 + r:]
            mean += self._log_part * m
            if with_var:
                fa = np.c_[np.ones(len(genomes)), f, zeta]
                second += self._log_part * (((fa @ self._q) * fa).sum(1) + self._s2_bar
                                            + self._floor2_bar * np.exp(-2 * m))
        logs, var, w = self._line_moments(z, with_var)
        if len(w):
            mean += logs @ w
            if with_var:
                second += (var + logs ** 2) @ w
        return mean, second

    def _log_moments(self, genomes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean, second = self._moments(genomes, True)
        return mean, np.sqrt(np.maximum(second - mean ** 2, 1e-12))

    def predict_genomes(self, genomes: np.ndarray) -> np.ndarray:
        return np.exp(self._moments(genomes, False)[0])

    # ------------------------------------------------------------------ more samples
    def with_samples(self, genomes: np.ndarray, latency_ms: np.ndarray) -> "FewShotPredictor":
        """The same sources and costs, refitted with more measured networks of the device."""
        return FewShotPredictor(self.space, self.source, self.samples.plus(
            np.asarray(genomes), np.asarray(latency_ms, dtype=np.float64)), costs=self.costs,
            ranks=self._ranks, noise_scales=self._noise_scales, families=self.families)

    def summary(self) -> dict:
        return {"device": self.device, "k": len(self.samples.genomes),
                "sources": list(self.source.devices) if self.source is not None else [],
                "cost_features": list(self.costs.names),
                "family_weights": {k: round(v, 4) for k, v in self._family_weights.items()},
                "rank_weights": {str(k): round(v, 4) for k, v in self._rank_weights.items()}}

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path, provenance: dict | None = None) -> Path:
        """Write the predictor as JSON (atomically); ``provenance`` says where it came from."""
        if provenance is not None:
            self.provenance = dict(provenance)
        return save_predictor(path, self.name, self.space.config(), self.to_json(),
                              self.provenance)

    @classmethod
    def load(cls, path: str | Path, space=None, table=None) -> "FewShotPredictor":
        """The saved predictor; ``space`` (a name or ``SearchSpace``) must be the one it was
        fitted for. Its ``.space`` is the configuration it was fitted in."""
        from hwnas.spaces import SearchSpace, space_from_config

        data = load_predictor_json(path, cls.name)
        stored = data.get("space")
        if not isinstance(stored, dict) or "name" not in stored:
            raise TableError(f"corrupt few-shot predictor {path}: no space configuration")
        name = space.name if isinstance(space, SearchSpace) else space
        if name is not None and stored["name"] != name:
            raise TableError(f"{path} was fitted for space '{stored['name']}', not '{name}'")
        if isinstance(space, SearchSpace):
            if not same_configuration(stored, space.config()):
                raise TableError(f"{path} was fitted for space {stored}, not {space.config()}")
        pred = cls.from_json(data["model"], space_from_config(stored))
        pred.provenance = dict(data.get("provenance") or {})
        return pred

    def to_json(self) -> dict:
        """Everything prediction needs, as plain arrays (``_store.save_predictor`` writes it)."""
        return {"device": self.device, "families": list(self.families),
                "ranks": list(self._ranks), "noise_scales": list(self._noise_scales),
                "factors": None if self.source is None else self.source.to_json(),
                "costs": self.costs.to_json(),
                "samples": {"genomes": self.samples.genomes.astype(int),
                            "latency_ms": self.samples.latency_ms},
                "fit": {"log_part": self._log_part, "w_bar": self._w_bar, "q": self._q,
                        "s2_bar": self._s2_bar, "floor2_bar": self._floor2_bar,
                        "lines": self._lines,
                        "family_weights": self._family_weights,
                        "rank_weights": {str(k): v for k, v in self._rank_weights.items()}}}

    @classmethod
    def from_json(cls, obj: dict, space) -> "FewShotPredictor":
        """The predictor ``to_json`` stored, with its fitted weights (nothing is refitted)."""
        from hwnas.predict._store import array

        self = cls.__new__(cls)
        LogNormalPredictor.__init__(self, space)
        try:
            self.device = str(obj["device"])
            self.families = tuple(obj["families"])
            self._ranks = tuple(int(r) for r in obj["ranks"])
            self._noise_scales = tuple(float(v) for v in obj["noise_scales"])
            self.source = (None if obj.get("factors") is None
                           else SourceFactors.from_json(obj["factors"], space))
            extra = _source_extra(self.source)[0] if obj["costs"].get("extra") else None
            self.costs = CostFeatures.from_json(obj["costs"], space, extra)
            s = obj["samples"]
            self.samples = TargetSamples(self.device, array(s, "genomes").astype(np.int16),
                                         array(s, "latency_ms"))
            fit = obj["fit"]
            size = 1 + self._rank_max + len(self.costs.names)
            self._log_part = float(fit["log_part"])
            self._w_bar = array(fit, "w_bar").reshape(size)
            self._q = array(fit, "q").reshape(size, size)
            self._s2_bar, self._floor2_bar = float(fit["s2_bar"]), float(fit["floor2_bar"])
            self._lines = []
            for g in fit["lines"]:
                cols = [int(c) for c in g["cols"]]
                d = len(cols) + 1
                self._lines.append({"cols": cols, "w": array(g, "w").reshape(d),
                                    "q": array(g, "q").reshape(d, d),
                                    **{k: float(g[k]) for k in ("s2", "floor2", "scale",
                                                                "weight")}})
            self._family_weights = {str(k): float(v) for k, v in fit["family_weights"].items()}
            self._rank_weights = {int(k): float(v) for k, v in fit["rank_weights"].items()}
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise TableError(f"corrupt few-shot predictor: {type(exc).__name__} {exc}") from None
        self._prepare()
        return self
