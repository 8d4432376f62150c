"""The search journey: the best predicted architecture under latency (and size) budgets."""
from __future__ import annotations

import os
from typing import Any

from hwnas.api._arguments import _budget_ms, _check_target_name, _claim
from hwnas.api.lookup import load_supernet
from hwnas.errors import BudgetError, HwnasError


def search(target: str | None, latency_ms: float | str | dict[str, float], *,
           space: Any = None, checkpoint: str | os.PathLike | None = None,
           strategy: str = "evolution", objective: str = "auto", predictor: str = "auto",
           margin: float | None = None, quantile: float = 0.9, max_params: float | None = None,
           max_mflops: float | None = None, max_act_kb: float | None = None,
           report_targets=(), seed: int = 0, out: str | os.PathLike | None = None,
           force: bool = False, allow_emulated: bool = False, accuracy: Any = None,
           **options) -> dict:
    """The best predicted architecture under the budgets; returns what ``arch.json`` holds.

    ``predictor`` is the latency predictor kind of every target (``auto``, ``table``,
    ``calibrated`` or ``fewshot``); the result's ``latency_predictor_choice`` says which one
    each target got and why.
    ``latency_ms`` is a number of ms on ``target``, a spec such as ``"x86-host=6,rpi4=40"``,
    or a ``{target: ms}`` dict. ``space`` is a name or a ``SearchSpace`` (None: the default
    space, or the checkpoint's); a ``checkpoint`` selects its space configuration (and its accuracy predictor scores the archs). An
    impossible budget raises ``BudgetError`` at once, naming the fastest reachable latency.
    With ``out`` the arch, Pareto front, plot and history are written there (a new or empty
    folder, or an earlier search output that holds only hwnas's files; with ``force`` any
    folder, whose other files are kept), under a lock that refuses a second run into it.
    Latency tables measured on an emulated device are refused unless ``allow_emulated``.
    ``accuracy`` names the accuracy source (``list_accuracy_sources()``, or an
    ``AccuracySource``); None: the first the space's configuration accepts that has data. The
    result's ``accuracy`` names the source and says whether the figure is measured or
    predicted, and whether it is an extrapolation.
    """
    from hwnas._checks import check_seed
    from hwnas.search import STRATEGIES, Constraints, LatencyBudget, parse_latency_spec
    from hwnas.spaces import resolve_space_name

    STRATEGIES.get(strategy)                     # an unknown name fails before anything loads
    if isinstance(space, str):
        resolve_space_name(space)
    _check_target_name(target, optional=True)
    if isinstance(report_targets, (str, bytes)) or not all(
            isinstance(t, str) for t in report_targets):
        raise BudgetError(f"report_targets is a list of target names, got {report_targets!r}")
    check_seed(seed, BudgetError)
    if isinstance(latency_ms, dict):
        budgets = tuple(LatencyBudget(t, _budget_ms(v, f"latency budget of {t}"))
                        for t, v in latency_ms.items())
    elif isinstance(latency_ms, str):
        budgets = parse_latency_spec(latency_ms, target)
    elif isinstance(latency_ms, (list, tuple, set)):
        raise BudgetError(f"latency_ms is a number of ms, a spec such as 'a=5,b=9' or a "
                          f"{{target: ms}} dict, got the {type(latency_ms).__name__} "
                          f"{latency_ms!r}")
    else:
        if target is None:
            raise BudgetError("a latency budget in ms needs a target")
        budgets = (LatencyBudget(target, _budget_ms(latency_ms)),)
    cons = Constraints(budgets, max_params, max_mflops, max_act_kb, margin, quantile)
    with _claim(out, "search", force):          # held until the result is written
        return _search_under(target, space, cons, checkpoint, strategy, objective, predictor,
                             report_targets, seed, allow_emulated, options, out, force, accuracy)


def _search_under(target, space, cons, checkpoint, strategy, objective, predictor,
                  report_targets, seed, allow_emulated, options, out, force, accuracy) -> dict:
    from hwnas.search import STRATEGIES, build_problem, write_outputs
    from hwnas.search import search as _search
    from hwnas.spaces import DEFAULT_SPACE, space_plugin

    if checkpoint is not None:        # its weights too: a broken file fails now, not at export
        sp = load_supernet(checkpoint).space
        if space is None or isinstance(space, str):
            if space is not None and space_plugin(space) is not space_plugin(sp):
                raise HwnasError(f"checkpoint {checkpoint} is for space '{sp.name}', not "
                                 f"'{space}'")
            space = sp
    elif space is None:
        space = DEFAULT_SPACE
    extra = [t for t in ([target] if target else []) + list(report_targets)]
    problem = build_problem(space, cons, extra, objective, checkpoint, predictor, allow_emulated,
                            accuracy)
    if checkpoint is not None and "checkpoint" in STRATEGIES.get(strategy).Options.__dataclass_fields__:
        options.setdefault("checkpoint", str(checkpoint))   # gradient strategies' supernet too
    result = _search(strategy, problem, seed=seed, **options)
    if out is not None:
        return write_outputs(out, problem, result, {"seed": seed}, force=force)
    best = problem.describe(result.best)
    best.update({"strategy": result.strategy, "evaluations": result.n_evals,
                 "search_wall_s": round(result.wall_s, 3), "seed": seed})
    return best
