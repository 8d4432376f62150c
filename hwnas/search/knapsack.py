"""``knapsack``: a short evolution, model-guided knapsack steps, then exact trust-region steps.

A table-sum latency is exact and additive over a space's layers, so the hard part of a latency
budget is a knapsack. Two kinds of step build on that.

*Model steps* (``model_steps``, after a short evolution of ``seed_generations`` generations of
``population``): an additive model of the objective (``hwnas.search._additive``), fitted to
every arch evaluated so far, prices every single-layer change of each resolution's best
feasible arch at no evaluation; the knapsack combines up to ``model_changes`` of them under the
budget, and the best ``model_candidates`` combinations over all resolutions are evaluated
exactly and added to the fit. They stop after ``model_patience`` steps that find nothing
better. Each costs a handful of evaluations where an exact step costs a couple of hundred.

*Exact steps*, from an incumbent arch:

1. evaluates every single-layer change (each other candidate of each layer; for a skipped layer,
   each block added after the run's earlier layers; for a block, the skip that ends its run
   there): the gain of each change alone, about 180 archs for Once-for-All's space;
2. finds, by dynamic programming over the layers (``_knapsack.best_moves``), the combinations of
   at most ``max_changes`` such changes with the best summed gain whose summed latency change
   fits the budget: one layer may grow while others pay for it;
3. evaluates the best ``candidates`` of them exactly and moves to the best that improves.

A climb stops where no candidate improves. The first starts are the best feasible archs of
``starts`` distinct shapes (resolution and stage depths) found so far; each climb keeps its
start's resolution.
Then ``rounds`` restarts, alternately two of the local optima crossed and the best one kicked
(each gene resampled with probability ``kick``), each shrunk until feasible and climbed: local
optima of a knapsack step differ in many layers at once, which crossover finds.

Other constraints (other targets' budgets, parameters, MACs, memory) are checked exactly on
every candidate. The primary budget target must be priced by a table sum (``--predictor
table``), and the space must have a layer view.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwnas.errors import HwnasError
from hwnas.profile.table import at_resolution
from hwnas.search._additive import AdditiveModel, layer_choices
from hwnas.search._base import STRATEGIES, SearchResult, Strategy
from hwnas.search._knapsack import LayerMoves, best_moves
from hwnas.search.evolution import Evolution, shrink_genomes
from hwnas.search.layers import layer_view

__all__ = ["Knapsack"]


@STRATEGIES.register("knapsack")
class Knapsack(Strategy):
    name = "knapsack"

    @dataclass
    class Options:
        population: int = 50
        seed_generations: int = 2
        model_steps: int = 150
        model_candidates: int = 8
        model_changes: int = 6
        model_ridge: float = 1.0
        model_patience: int = 8
        starts: int = 2
        max_changes: int = 4
        candidates: int = 16
        steps: int = 60
        rounds: int = 10
        kick: float = 0.15
        grid: float = 0.001            # latency grid of the knapsack, a fraction of the budget
        progress: bool = True

    def run(self, problem, rng: np.random.Generator) -> SearchResult:
        o = self.options
        if not problem.constraints.latency or problem._bound_vector(problem.primary) is None:
            name = problem.predictors[problem.primary].name if problem.targets else "none"
            raise HwnasError(f"strategy 'knapsack' needs a latency budget priced by a table sum "
                             f"(the budget target's predictor is '{name}'); use --predictor table "
                             "or the evolution strategy")
        seed = Evolution(population=o.population, generations=o.seed_generations,
                         progress=False).run(problem, rng)
        archive = seed.info["archive"]
        history = list(seed.history)
        if o.model_steps:
            self._model_steps(problem, archive, history)
        optima = [self._climb(problem, archive, g, sc, history)
                   for g, sc in _distinct_best(problem, archive, o.starts)]
        for r in range(o.rounds):
            kid = self._restart(problem, archive, rng, optima, kicked=r % 2 == 1)
            if kid is not None:
                optima.append(self._climb(problem, archive, *kid, history))
        best, _ = max(optima, key=lambda x: x[1], default=(seed.best, 0.0))
        return SearchResult(self.name, best, problem.space.from_genome(best), archive.front(),
                            history, problem.n_evals, 0.0, {"options": vars(o), "archive": archive})

    def _restart(self, problem, archive, rng, optima: list, kicked: bool):
        """A new start: two local optima crossed, or (``kicked``) the best one with each gene
        resampled with probability ``kick``; shrunk until feasible (None if it never is)."""
        space = problem.space
        if kicked:
            best = max(optima, key=lambda x: x[1])[0]
            kid = space.mutate_genomes(rng, best[None], self.options.kick, 0.0)
        else:
            a, b = rng.integers(0, len(optima), 2)
            kid = space.crossover_genomes(rng, optima[a][0][None], optima[b][0][None])
        kids = np.repeat(kid, 8, 0)
        for t in range(4):
            ev = problem.evaluate(kids)
            archive.add(kids, ev)
            if ev.feasible.any():
                j = int(np.argmax(np.where(ev.feasible, ev.score, -np.inf)))
                return kids[j], float(ev.score[j])
            kids = shrink_genomes(space, rng, kids, 0.1 + 0.1 * t)
        return None

    def _model_steps(self, problem, archive, history: list) -> None:
        """Knapsack steps priced by the additive model until ``model_patience`` steps in a row
        find nothing better (see the module doc)."""
        o, t = self.options, problem.primary
        budget = problem.constraints.budget(t)
        views = [layer_view(problem.space, ri) for ri in range(len(problem.space.resolutions))]
        prices: dict[int, tuple[float, list[np.ndarray]]] = {}
        g, s, _, feasible = archive.arrays()
        seen = {row.tobytes() for row in g}
        choices = layer_choices(views, g)         # the archive only grows: extended per step
        best, idle = -np.inf, 0
        for _ in range(o.model_steps):
            sizes = None
            proposals = []
            for ri, view in enumerate(views):
                rows = np.flatnonzero(feasible & (g[:, -1] == ri))
                if not len(rows):
                    continue
                inc = rows[int(np.argmax(s[rows]))]
                if ri not in prices:
                    prices[ri] = _prices(problem, g[inc])
                fixed, per_layer = prices[ri]
                if sizes is None:
                    sizes = [len(ms) for ms in per_layer]
                    model = AdditiveModel.fit(views, sizes, g, s, o.model_ridge, choices)
                choice = view.choice(g[inc])
                bound = fixed + sum(float(ms[c]) for ms, c in zip(per_layer, choice))
                moves = LayerMoves(model.gains(choice), [ms - ms[c] for ms, c in
                                                         zip(per_layer, choice)],
                                   list(choice), [view.skip_index(i) for i in range(len(choice))],
                                   [view.run_of(i) for i in range(len(choice))])
                for gain, c in best_moves(moves, budget - bound, o.model_changes,
                                          o.model_candidates, o.grid * budget):
                    genome = view.genome(c)
                    if genome.tobytes() not in seen:
                        proposals.append((float(s[inc]) + gain, genome))
            if not proposals:
                break
            proposals.sort(key=lambda p: -p[0])
            picked: dict[bytes, np.ndarray] = {}
            for _, genome in proposals:
                picked.setdefault(genome.tobytes(), genome)
                if len(picked) == o.model_candidates:
                    break
            seen.update(picked)
            cand = np.array(list(picked.values()))
            ev = problem.evaluate(cand)
            archive.add(cand, ev)
            g, s, _, feasible = archive.arrays()
            choices = np.concatenate([choices, layer_choices(views, g[len(choices):])])
            top = float(s[feasible].max()) if feasible.any() else -np.inf
            history.append({"step": len(history), "evaluations": problem.n_evals,
                            "best_score": top, "phase": "model", "candidates": len(cand)})
            if top > best + 1e-12:
                best, idle = top, 0
            else:
                idle += 1
                if idle >= o.model_patience:
                    break

    def _climb(self, problem, archive, genome: np.ndarray, score: float, history: list):
        """Trust-region steps from ``genome`` at its resolution until none improves."""
        o, t = self.options, problem.primary
        view = layer_view(problem.space, int(genome[-1]))
        fixed, per_layer = _prices(problem, genome)
        budget = problem.constraints.budget(t)
        ti = problem.targets.index(t)
        choice = view.choice(genome)
        bound = fixed + sum(float(ms[c]) for ms, c in zip(per_layer, choice))
        for _ in range(o.steps):
            moves = _linearise(problem, archive, view, choice, score, per_layer)
            found = best_moves(moves, budget - bound, o.max_changes, o.candidates,
                               o.grid * budget)
            if not found:
                break
            cand = view.genomes(np.array([c for _, c in found]))
            ev = problem.evaluate(cand)
            archive.add(cand, ev)
            ok = np.flatnonzero(ev.feasible & (ev.score > score + 1e-12))
            history.append({"step": len(history), "evaluations": problem.n_evals,
                            "best_score": float(max(score, ev.score[ok].max() if len(ok) else score)),
                            "resolution": view.resolution, "candidates": len(cand)})
            if not len(ok):
                break
            j = ok[int(np.argmax(ev.score[ok]))]
            genome, score, bound = cand[j], float(ev.score[j]), float(ev.bound_ms[ti, j])
            choice = view.choice(genome)
        return genome, score


def _prices(problem, genome: np.ndarray) -> tuple[float, list[np.ndarray]]:
    """The primary target's table at ``genome``'s resolution, per layer of its layer view:
    ``(fixed ms, [ms of each candidate of each layer])``."""
    t = problem.primary
    pri = int(problem.remaps[t](genome[None])[0, -1])
    return layer_view(problem.predictors[t].space, pri).latency_matrix(
        at_resolution(problem._bound_vector(t), pri))


def _distinct_best(problem, archive, n: int) -> list[tuple[np.ndarray, float]]:
    """The ``n`` best feasible archs of ``archive`` of distinct *shapes*: resolution and which
    layers are skipped (for Once-for-All, the stage depths); the best of each shape."""
    g, s, _, feasible = archive.arrays()
    rows = np.flatnonzero(feasible)
    rows = rows[np.argsort(-s[rows], kind="stable")]
    views: dict[int, object] = {}
    out, seen = [], set()
    for i in rows:
        ri = int(g[i, -1])
        view = views.setdefault(ri, layer_view(problem.space, ri))
        choice = view.choice(g[i])
        key = (ri, tuple(c == view.skip_index(j) for j, c in enumerate(choice)))
        if key not in seen:
            seen.add(key)
            out.append((g[i].copy(), float(s[i])))
            if len(out) == n:
                break
    return out


def _linearise(problem, archive, view, choice: list[int], score: float,
               per_layer: list[np.ndarray]) -> LayerMoves:
    """Every single-layer change of ``choice``, evaluated in one batch (see the module doc)."""
    n = len(choice)
    skip = [view.skip_index(i) for i in range(n)]
    rows: list[list[int]] = []
    where: list[tuple[int, int, str]] = []                    # (layer, candidate, kind)
    for i in range(n):
        if choice[i] != skip[i]:
            for c in range(len(per_layer[i])):
                if c != choice[i]:
                    rows.append(_with(choice, i, c))
                    where.append((i, c, "skip" if c == skip[i] else "swap"))
            continue
        base = _filled(view, choice, i, skip)                 # the run's earlier layers present
        if base != choice:
            rows.append(base)
            where.append((i, -1, "base"))
        for c in range(len(per_layer[i])):
            if c != skip[i]:
                rows.append(_with(base, i, c))
                where.append((i, c, "add"))
    genomes = view.genomes(np.array(rows))
    ev = problem.evaluate(genomes)
    archive.add(genomes, ev)
    base_score = {i: float(v) for (i, _, kind), v in zip(where, ev.score) if kind == "base"}
    skipped = {i: float(v) for (i, _, kind), v in zip(where, ev.score) if kind == "skip"}
    gain = [np.zeros(len(ms)) for ms in per_layer]
    for (i, c, kind), v in zip(where, ev.score):
        if kind == "swap":
            gain[i][c] = v - score
        elif kind == "add":
            gain[i][c] = v - base_score.get(i, score)
    for i, v in skipped.items():                              # marginal: this layer's own share
        later = i + 1 < n and view.run_of(i + 1) == view.run_of(i) and i + 1 in skipped
        gain[i][skip[i]] = v - (skipped[i + 1] if later else score)
    delta = [ms - ms[c] for ms, c in zip(per_layer, choice)]
    return LayerMoves(gain, delta, list(choice), skip, [view.run_of(i) for i in range(n)])


def _with(choice: list[int], i: int, c: int) -> list[int]:
    out = list(choice)
    out[i] = c
    return out


def _filled(view, choice: list[int], i: int, skip: list) -> list[int]:
    """``choice`` with the skipped layers before ``i`` in its run given the run's last block (or
    the first candidate), so that a block at ``i`` is not dropped by a skip before it."""
    out = list(choice)
    run = view.run_of(i)
    fill = 0
    for j in range(i):
        if view.run_of(j) != run:
            continue
        if out[j] == skip[j]:
            out[j] = fill
        else:
            fill = out[j]
    return out
