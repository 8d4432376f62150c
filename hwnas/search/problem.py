"""A search problem: one space, one objective, latency predictors per target, hard constraints.

Everything here is vectorised over genome rows: ``evaluate(G)`` scores a whole population with
a few array operations, so 50,000 evaluations take about a second.

Feasibility check (``check_feasible``, run before any search): for each constraint, the
smallest value the space can reach. For table-sum latency predictors and for params/MACs this
is exact (the per-layer minimum over ``layer_view``, minimised over resolutions, with the same
safety margin the constraint uses). For other latency predictors it is an estimate: the
minimum of the predictor over the table-optimal arch of each resolution, the smallest arch and
a short latency-minimising evolution (documented as such in the refusal message).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from hwnas.errors import BudgetError
from hwnas.predict import LatencyPredictor, TablePredictor
from hwnas.profile.table import at_resolution
from hwnas.search.constraints import Constraints
from hwnas.search.layers import layer_view, min_over_view
from hwnas.spaces._remap import GenomeRemap

__all__ = ["Evaluation", "SearchProblem", "LowerBound"]

log = logging.getLogger("hwnas.search")


@dataclass
class Evaluation:
    """Scores of N genomes; ``latency_ms`` and ``bound_ms`` are (targets, N)."""

    score: np.ndarray
    latency_ms: np.ndarray
    bound_ms: np.ndarray
    feasible: np.ndarray
    excess: np.ndarray                       # worst relative overshoot, 0 when feasible
    costs: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class LowerBound:
    what: str
    value: float
    arch: str
    exact: bool


class SearchProblem:
    """``space`` is the search space; each predictor keeps its own (table) space configuration."""

    def __init__(self, space, objective, predictors: dict[str, LatencyPredictor],
                 constraints: Constraints) -> None:
        missing = [t for t in constraints.targets if t not in predictors]
        if missing:
            raise BudgetError(f"no latency predictor loaded for budget target '{missing[0]}'")
        self.space, self.objective, self.constraints = space, objective, constraints
        self.predictors = dict(predictors)
        self.targets = list(predictors)
        self.remaps = {t: GenomeRemap(space, p.space, "value") for t, p in predictors.items()}
        self._vectors = {t: self._table_vectors(p) for t, p in predictors.items()}
        self._budget = np.array([constraints.budget(t) if t in constraints.targets else np.inf
                                 for t in self.targets])[:, None]
        self.n_evals = 0

    @property
    def primary(self) -> str:
        return self.constraints.targets[0] if self.constraints.latency else self.targets[0]

    # ------------------------------------------------------------------ vectorised evaluation
    def _table_vectors(self, p: LatencyPredictor):
        """A table predictor's (median, bound) op vectors: one op lookup serves both sums."""
        if not isinstance(p, TablePredictor):
            return None
        ms = p.table.space_values(p.space)                   # 1-D, or 2-D per resolution
        if self.constraints.margin is not None:
            return ms, ms * (1.0 + self.constraints.margin)
        return ms, p.table.space_values(p.space, "p90_ms")

    def latency(self, genomes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mean ms, the bound checked against the budget), each (targets, N)."""
        c = self.constraints
        mean, bound = [], []
        for t in self.targets:
            g, p = self.remaps[t](genomes), self.predictors[t]
            if self._vectors[t] is not None:
                ids = p.space.op_indices(g)
                mean.append(p.space.op_values(g, self._vectors[t][0], ids).sum(1))
                bound.append(p.space.op_values(g, self._vectors[t][1], ids).sum(1))
                continue
            m = p.predict_genomes(g)
            mean.append(m)
            if c.margin is not None:
                bound.append(m * (1.0 + c.margin))
            else:
                bound.append(p.predict_upper_genomes(g, c.quantile))
        return np.asarray(mean, float), np.asarray(bound, float)

    def costs(self, genomes: np.ndarray, only_constrained: bool = True) -> dict[str, np.ndarray]:
        c, s, out = self.constraints, self.space, {}
        if c.max_params is not None or not only_constrained:
            out["params"] = s.params_genomes(genomes)
        if c.max_mflops is not None or not only_constrained:
            out["mflops"] = s.flops_genomes(genomes) / 1e6
        if c.max_act_kb is not None or not only_constrained:
            out["act_kb"] = s.peak_act_genomes(genomes) * 4 / 1024
        return out

    def evaluate(self, genomes: np.ndarray, score: bool = True) -> Evaluation:
        self.n_evals += len(genomes)
        mean, bound = self.latency(genomes)
        ratios = [bound / self._budget] if len(self.targets) else []
        costs = self.costs(genomes)
        limits = {"params": self.constraints.max_params, "mflops": self.constraints.max_mflops,
                  "act_kb": self.constraints.max_act_kb}
        for k, v in costs.items():
            ratios.append(v[None, :] / limits[k])
        worst = np.concatenate(ratios, 0).max(0) if ratios else np.zeros(len(genomes))
        sc = self.objective.predict_genomes(genomes) if score else np.zeros(len(genomes))
        return Evaluation(np.asarray(sc, float), mean, bound, worst <= 1.0,
                          np.maximum(worst - 1.0, 0.0), costs)

    # ------------------------------------------------------------------ feasibility
    def _bound_vector(self, t: str) -> np.ndarray | None:
        """Per-op values whose sum is the constraint's latency bound (table predictors only)."""
        v = self._vectors[t]
        return None if v is None else v[1]

    def _min_additive(self, space, vec: np.ndarray, r_indices) -> tuple[float, np.ndarray]:
        best, best_g = np.inf, None
        for ri in r_indices:
            view = layer_view(space, int(ri))
            v, choice = min_over_view(view, at_resolution(vec, int(ri)))
            if v < best:
                best, best_g = v, view.genome(choice)
        return best, best_g

    def latency_lower_bound(self, t: str) -> LowerBound:
        p = self.predictors[t]
        r_map = self.remaps[t](np.zeros((len(self.space.resolutions), len(self.space.choice_sizes())),
                                        np.int16) + np.arange(len(self.space.resolutions),
                                                              dtype=np.int16)[:, None])[:, -1]
        vec = self._bound_vector(t)
        if vec is not None:
            v, g = self._min_additive(p.space, vec, r_map)
            return LowerBound(f"latency on {t}", v, str(p.space.from_genome(g)), True)
        return self._estimate_min_latency(t, r_map)

    def _estimate_min_latency(self, t: str, r_map: np.ndarray) -> LowerBound:
        p, rng = self.predictors[t], np.random.default_rng(0)
        cands = [self.remaps[t](self.space.to_genomes([self.space.smallest()]))]
        table = getattr(p, "table", None)
        if table is not None:
            vec = table.space_values(p.space)
            cands += [self._min_additive(p.space, vec, [ri])[1][None] for ri in r_map]
        pop = np.concatenate(cands + [self.remaps[t](self.space.sample_genomes(rng, 200))])
        for _ in range(10):                   # short latency-minimising evolution
            _, b = self.latency_for(t, pop)
            elite = pop[np.argsort(b)[:20]]
            kids = self.space.mutate_genomes(rng, elite[rng.integers(0, 20, 180)], 0.2, 0.5)
            pop = np.concatenate([elite, kids])
        _, b = self.latency_for(t, pop)
        i = int(np.argmin(b))
        return LowerBound(f"latency on {t}", float(b[i]), str(p.space.from_genome(pop[i])), False)

    def latency_for(self, t: str, genomes_in_pred_space: np.ndarray):
        p, c = self.predictors[t], self.constraints
        m = p.predict_genomes(genomes_in_pred_space)
        b = m * (1 + c.margin) if c.margin is not None else p.predict_upper_genomes(
            genomes_in_pred_space, c.quantile)
        return m, b

    def cost_lower_bounds(self) -> list[tuple[str, float, LowerBound]]:
        c, s, out = self.constraints, self.space, []
        r_all = range(len(s.resolutions))
        vecs = s.cost_vectors()
        if c.max_params is not None:
            v, g = self._min_additive(s, vecs["params"], r_all)
            out.append(("max-params", c.max_params, LowerBound("params", v, str(s.from_genome(g)), True)))
        if c.max_mflops is not None:
            v, g = self._min_additive(s, vecs["macs"] / 1e6, r_all)
            out.append(("max-mflops", c.max_mflops, LowerBound("MFLOPs", v, str(s.from_genome(g)), True)))
        if c.max_act_kb is not None:
            out.append(("max-act-kb", c.max_act_kb, self._act_lower_bound()))
        return out

    def _act_lower_bound(self) -> LowerBound:
        s, best = self.space, (np.inf, None)
        act = s.cost_vectors()["act"] * 4 / 1024
        for ri in range(len(s.resolutions)):
            view = layer_view(s, ri)
            fixed = max(act[view.prefix].max(), act[view.suffix].max())
            choice = [int(np.argmin(act[np.asarray(cands)])) for cands in view.candidates]
            v = max([fixed] + [act[c[i]] for c, i in zip(view.candidates, choice)])
            if v < best[0]:
                best = (v, view.genome(choice))
        return LowerBound("peak activation KiB", float(best[0]), str(s.from_genome(best[1])), True)

    def check_feasible(self) -> dict[str, LowerBound]:
        """Refuse at once (``BudgetError``) any constraint below the smallest reachable value."""
        bounds = {}
        for b in self.constraints.latency:
            lb = self.latency_lower_bound(b.target)
            bounds[b.target] = lb
            if b.budget_ms < lb.value:
                how = "" if lb.exact else " (estimated by search; predictor is not a table sum)"
                raise BudgetError(f"latency budget {b.budget_ms:g} ms on {b.target} is below the "
                                  f"fastest this space reaches: {lb.value:.2f} ms ({lb.arch}, "
                                  f"{self.constraints.margin_text()}){how}")
        for flag, limit, lb in self.cost_lower_bounds():
            bounds[flag] = lb
            if limit < lb.value:
                raise BudgetError(f"--{flag} {limit:g} is below the smallest this space reaches: "
                                  f"{lb.value:.4g} {lb.what} ({lb.arch})")
        return bounds

    # ------------------------------------------------------------------ reporting
    def describe(self, genome: np.ndarray) -> dict:
        """Everything ``arch.json`` says about one genome."""
        g = genome[None, :]
        ev = self.evaluate(g)
        costs = self.costs(g, only_constrained=False)
        arch = self.space.from_genome(genome)
        return {"arch": str(arch), **{k: v for k, v in arch.to_json().items() if k != "arch"},
                "space_config": self.space.config(),
                "objective": {"name": self.objective.name, "value": float(ev.score[0]),
                              "note": self.objective.note},
                "accuracy": self.objective.label(genome),
                "predicted_latency_ms": {t: float(ev.latency_ms[i, 0])
                                         for i, t in enumerate(self.targets)},
                "latency_bound_ms": {t: float(ev.bound_ms[i, 0]) for i, t in enumerate(self.targets)},
                "latency_predictors": {t: p.name for t, p in self.predictors.items()},
                "latency_predictor_choice": {t: getattr(p, "selection", p.name)
                                             for t, p in self.predictors.items()},
                "target_space_configs": {t: p.space.config() for t, p in self.predictors.items()},
                "params": float(costs["params"][0]), "mflops": float(costs["mflops"][0]),
                "peak_act_kb": float(costs["act_kb"][0]),
                "constraints": self.constraints.to_json(), "feasible": bool(ev.feasible[0])}
