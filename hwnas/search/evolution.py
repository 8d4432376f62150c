"""``evolution``: Once-for-All's evolutionary finder, on genome matrices and with hard constraints.

Each generation keeps the best ``parent_ratio`` of the population as parents and adds
``children`` (0: as many as fill the population again), ``mutation_ratio`` of them by mutation
(each choice resampled with ``mutate_prob``, the resolution with ``resolution_prob``) and the
others by uniform crossover.
A child that misses a constraint is repaired with at most ``repair_tries`` candidates, tried
``repair_variants`` at a time: first by *shrinking* (resampled genes may only move to a
cheaper choice; gene values are ordered from cheap to costly), then by re-mutating a random
parent. A child still infeasible after that is
rejected and its place goes to a copy of a parent, so the loop never spins on an impossible
budget. Every evaluation is one row of one vectorised predictor call.

``evolution-ofa`` is the same search with the settings of Once-for-All's tutorial: population
100, 500 generations, parent ratio 0.25, mutation probability 0.1 (resolution 0.5), mutation
ratio 0.5 and 100 children a generation beside the 25 parents. Where OFA resamples an
infeasible child until one fits, this search repairs it as above.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwnas._log import progress
from hwnas.errors import BudgetError
from hwnas.search._base import STRATEGIES, SearchResult, Strategy
from hwnas.search.pareto import Archive

__all__ = ["Evolution", "OFAEvolution", "shrink_genomes", "initial_population"]


def shrink_genomes(space, rng: np.random.Generator, genomes: np.ndarray, prob: float) -> np.ndarray:
    """Resample genes with ``prob``, keeping the smaller of old and new (never grows a network)."""
    flip = rng.random(genomes.shape) < prob
    fresh = space.sample_genomes(rng, len(genomes))
    return np.where(flip, np.minimum(fresh, genomes), genomes).astype(genomes.dtype)


def initial_population(problem, rng: np.random.Generator, n: int, tries: int, archive=None):
    """``n`` feasible genomes: random samples, shrunk until feasible (bounded), else refused."""
    space = problem.space
    g = space.sample_genomes(rng, n)
    ev = problem.evaluate(g)
    if archive is not None:
        archive.add(g, ev)
    for t in range(tries):
        bad = np.flatnonzero(~ev.feasible)
        if len(bad) == 0:
            break
        g[bad] = shrink_genomes(space, rng, g[bad], 0.15 + 0.5 * t / max(tries, 1))
        sub = problem.evaluate(g[bad])
        if archive is not None:
            archive.add(g[bad], sub)
        for f in ("score", "feasible", "excess"):
            getattr(ev, f)[bad] = getattr(sub, f)
    ok = np.flatnonzero(ev.feasible)
    if len(ok) == 0:
        budgets = ", ".join(str(b) for b in problem.constraints.latency) or "none"
        raise BudgetError(f"no architecture meets every constraint at once (latency ms: {budgets}; "
                          f"params/MFLOPs/act limits as given) after {tries} repair rounds of "
                          f"{n} samples; each constraint alone is reachable, so relax one of them")
    keep = np.resize(ok, n)                                   # pad with repeats when short
    return g[keep], ev.score[keep]


@STRATEGIES.register("evolution")
class Evolution(Strategy):
    name = "evolution"
    small_batches = True

    @dataclass
    class Options:
        population: int = 100
        generations: int = 500
        parent_ratio: float = 0.25
        mutation_ratio: float = 0.5
        mutate_prob: float = 0.1
        resolution_prob: float = 0.5
        children: int = 0
        repair_tries: int = 12
        repair_variants: int = 4
        init_tries: int = 30
        progress: bool = True

    def _children(self, space, rng, parents: np.ndarray, n_mut: int, n_cross: int) -> np.ndarray:
        o = self.options
        mut = space.mutate_genomes(rng, parents[rng.integers(0, len(parents), n_mut)],
                                   o.mutate_prob, o.resolution_prob)
        a = parents[rng.integers(0, len(parents), n_cross)]
        b = parents[rng.integers(0, len(parents), n_cross)]
        return np.concatenate([mut, space.crossover_genomes(rng, a, b)])

    def _repair(self, problem, rng, parents, kids, archive):
        """Evaluate children; shrink or re-mutate the infeasible ones; reject what remains.

        Each round tries ``repair_variants`` candidates per infeasible child in one batched
        call and keeps the best feasible one (else the least infeasible, to shrink further);
        at most ``repair_tries`` candidates per child in all.
        """
        o, space = self.options, problem.space
        ev = problem.evaluate(kids)
        archive.add(kids, ev)
        score, feasible = ev.score.copy(), ev.feasible.copy()
        v = max(1, o.repair_variants)
        rounds = -(-o.repair_tries // v)
        for t in range(rounds):
            bad = np.flatnonzero(~feasible)
            if len(bad) == 0:
                break
            if t < max(1, rounds // 2):
                cand = shrink_genomes(space, rng, np.repeat(kids[bad], v, 0),
                                      max(o.mutate_prob, 0.1) * 2)
            else:
                cand = space.mutate_genomes(rng, parents[rng.integers(0, len(parents), len(bad) * v)],
                                            o.mutate_prob, o.resolution_prob)
            sub = problem.evaluate(cand)
            archive.add(cand, sub)
            ok = sub.feasible.reshape(len(bad), v)
            pick = np.where(ok.any(1), np.where(ok, sub.score.reshape(len(bad), v), -np.inf).argmax(1),
                            sub.excess.reshape(len(bad), v).argmin(1))
            rows = np.arange(len(bad)) * v + pick
            kids[bad], score[bad], feasible[bad] = cand[rows], sub.score[rows], sub.feasible[rows]
        rejected = np.flatnonzero(~feasible)
        if len(rejected):
            pick = rng.integers(0, len(parents), len(rejected))
            kids[rejected] = parents[pick]
            score[rejected] = np.nan                              # filled by the caller
        return kids, score, len(rejected), pick if len(rejected) else None

    def run(self, problem, rng: np.random.Generator) -> SearchResult:
        o, space = self.options, problem.space
        archive = Archive(problem)
        pop, score = initial_population(problem, rng, o.population, o.init_tries, archive)
        n_par = max(1, int(round(o.population * o.parent_ratio)))
        n_kids = o.children or max(1, o.population - n_par)
        n_mut = int(round(n_kids * o.mutation_ratio))
        n_cross = n_kids - n_mut
        history = []
        for gen in progress(range(o.generations), desc="evolution", disable=None if o.progress else True):
            order = np.argsort(-score, kind="stable")[:n_par]
            parents, p_score = pop[order], score[order]
            kids = self._children(space, rng, parents, n_mut, n_cross)
            kids, k_score, n_rej, pick = self._repair(problem, rng, parents, kids, archive)
            if pick is not None:
                k_score[np.isnan(k_score)] = p_score[pick]
            pop, score = np.concatenate([parents, kids]), np.concatenate([p_score, k_score])
            history.append({"generation": gen, "evaluations": problem.n_evals,
                            "best_score": float(score.max()), "mean_score": float(score.mean()),
                            "rejected": n_rej})
        best = pop[int(np.argmax(score))]
        return SearchResult(self.name, best, space.from_genome(best), archive.front(), history,
                            problem.n_evals, 0.0, {"options": vars(o), "archive": archive})


@STRATEGIES.register("evolution-ofa")
class OFAEvolution(Evolution):
    """Once-for-All's tutorial settings (see the module doc)."""

    name = "evolution-ofa"

    @dataclass
    class Options(Evolution.Options):
        children: int = 100
