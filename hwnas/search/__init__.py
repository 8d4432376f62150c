"""Search under hard constraints: ``search(strategy, problem)`` over the registered strategies.

``build_problem`` assembles a ``SearchProblem`` from names (space, targets with budgets,
objective); ``write_outputs`` writes ``arch.json``, ``pareto.json``, ``pareto.png`` and
``history.json``.
"""
from hwnas.search._base import STRATEGIES, SearchResult, Strategy, search, strategy_options
from hwnas.search.constraints import Constraints, LatencyBudget, parse_latency_spec
from hwnas.search.objectives import load_objective
from hwnas.search.problem import Evaluation, SearchProblem
from hwnas.search.assemble import build_problem, write_outputs
from hwnas.search import evolution, gumbel, knapsack, proxyless, random_search  # noqa: F401  (register)

__all__ = ["STRATEGIES", "SearchResult", "Strategy", "search", "strategy_options", "Constraints",
           "LatencyBudget", "parse_latency_spec", "load_objective",
           "Evaluation", "SearchProblem", "build_problem", "write_outputs"]
