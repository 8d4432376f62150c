"""``random``: the baseline. Uniform samples, as many evaluations as evolution's default."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwnas._log import progress
from hwnas.errors import BudgetError
from hwnas.search._base import STRATEGIES, SearchResult, Strategy
from hwnas.search.pareto import Archive

__all__ = ["RandomSearch"]


@STRATEGIES.register("random")
class RandomSearch(Strategy):
    name = "random"
    small_batches = True

    @dataclass
    class Options:
        evaluations: int = 50_000
        batch: int = 1000
        progress: bool = True

    def run(self, problem, rng: np.random.Generator) -> SearchResult:
        o, space = self.options, problem.space
        archive, history = Archive(problem), []
        best, best_score = None, -np.inf
        done = 0
        steps = range(0, o.evaluations, o.batch)
        for _ in progress(steps, desc="random", disable=None if o.progress else True):
            g = space.sample_genomes(rng, min(o.batch, o.evaluations - done))
            ev = problem.evaluate(g)
            archive.add(g, ev)
            done += len(g)
            ok = np.flatnonzero(ev.feasible)
            if len(ok) and ev.score[ok].max() > best_score:
                i = ok[int(np.argmax(ev.score[ok]))]
                best, best_score = g[i].copy(), float(ev.score[i])
            history.append({"evaluations": done, "feasible": int(len(ok)),
                            "best_score": best_score if best is not None else None})
        if best is None:
            raise BudgetError(f"random search found no architecture meeting every constraint in "
                              f"{done} samples; try the evolution strategy, which repairs")
        return SearchResult(self.name, best, space.from_genome(best), archive.front(), history,
                            done, 0.0, {"options": vars(o), "archive": archive})
