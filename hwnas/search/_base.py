"""The strategy interface, its registry and the result record every strategy returns."""
from __future__ import annotations

import abc
import contextlib
import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hwnas._registry import Registry
from hwnas.errors import BudgetError, HwnasError

__all__ = ["Strategy", "SearchResult", "STRATEGIES", "search", "strategy_options"]

log = logging.getLogger("hwnas.search")

STRATEGIES: Registry = Registry("search strategy")


@dataclass
class SearchResult:
    """The best feasible genome, the Pareto front (list of dicts) and the per-step history."""

    strategy: str
    best: np.ndarray
    arch: Any
    front: list[dict]
    history: list[dict]
    n_evals: int
    wall_s: float
    info: dict = field(default_factory=dict)


class Strategy(abc.ABC):
    """``run(problem, rng)`` searches; options are dataclass fields of a nested ``Options``."""

    name: str = ""
    #: scores many small batches of genomes with numpy: BLAS runs single-threaded meanwhile
    #: (a (48 x 137) @ (137 x 900) product gains nothing from threads, and OpenBLAS's
    #: threads wait by yielding: evolution's 49k evaluations took 8.3 s with 2 BLAS threads
    #: beside one busy process, 1.9 s with one)
    small_batches: bool = False

    @dataclass
    class Options:
        pass

    #: integer options that may be 0 (0 means "choose"), fractions in [0, 1], floats ≥ 0
    ZERO_OK = frozenset({"train_resolution", "resolution", "samples", "children", "rounds"})
    FRACTIONS = frozenset({"parent_ratio", "mutation_ratio", "mutate_prob", "resolution_prob",
                           "kick", "warmup"})
    NON_NEGATIVE = frozenset({"latency_lambda"})

    def __init__(self, **options) -> None:
        fields = {f.name for f in dataclasses.fields(self.Options)}
        bad = sorted(set(options) - fields)
        if bad:
            raise HwnasError(f"strategy '{self.name}' has no option '{bad[0]}'; "
                             f"options: {', '.join(sorted(fields))}")
        self.options = self.Options(**options)
        for f in dataclasses.fields(self.Options):
            self._check(f.name, getattr(self.options, f.name), f.default)

    def _check(self, name: str, value, default) -> None:
        """Every option in range, named in the error (one line)."""
        import math

        def bad(want: str):
            return HwnasError(f"strategy '{self.name}' option {name} must be {want}, "
                              f"got {value!r}")

        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise bad("true or false")
        elif isinstance(default, int):
            if not isinstance(value, int) or isinstance(value, bool):
                raise bad("an integer")
            if value < (0 if name in self.ZERO_OK else 1):
                raise bad("≥ 0" if name in self.ZERO_OK else "≥ 1")
        elif isinstance(default, float):
            if not isinstance(value, (int, float)) or isinstance(value, bool) \
                    or not math.isfinite(value):
                raise bad("a finite number")
            if name in self.FRACTIONS and not 0 <= value <= 1:
                raise bad("a fraction in [0, 1]")
            if name in self.NON_NEGATIVE and value < 0:
                raise bad("≥ 0")
            if name not in self.FRACTIONS | self.NON_NEGATIVE and value <= 0:
                raise bad("positive")

    @abc.abstractmethod
    def run(self, problem, rng: np.random.Generator) -> SearchResult: ...


def strategy_options(name: str) -> dict[str, Any]:
    """Default options of a registered strategy (for ``--help`` and reports)."""
    return dataclasses.asdict(STRATEGIES.get(name).Options())


@contextlib.contextmanager
def _blas_threads(n: int | None):
    """BLAS libraries limited to ``n`` threads inside the block (None: as they are)."""
    if n is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=n, user_api="blas"):
        yield


def search(name: str, problem, seed: int = 0, check: bool = True, **options) -> SearchResult:
    """One way in: feasibility check first, then the named strategy; the result is feasible."""
    from hwnas._checks import check_seed

    check_seed(seed, BudgetError)
    strategy = STRATEGIES.get(name)(**options)
    if check:
        for lb in problem.check_feasible().values():
            log.info("smallest reachable %s: %.4g (%s)", lb.what, lb.value, lb.arch)
    t0, n0 = time.perf_counter(), problem.n_evals
    with _blas_threads(1 if strategy.small_batches else None):
        result = strategy.run(problem, np.random.default_rng(seed))
    result.wall_s = time.perf_counter() - t0
    result.n_evals = problem.n_evals - n0
    ev = problem.evaluate(result.best[None, :])
    if not ev.feasible[0]:
        raise BudgetError(f"strategy '{name}' ended on {result.arch}, which misses a constraint "
                          f"by {ev.excess[0]:.1%}; no feasible architecture was found")
    return result
