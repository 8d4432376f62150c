"""From names to a ``SearchProblem``, and from a ``SearchResult`` to files."""
from __future__ import annotations

from pathlib import Path

from hwnas._io import atomic_write_json
from hwnas._outputs import check_output_dir, claim_output, replace_dir, stage_dir
from hwnas.errors import BudgetError, SpaceError
from hwnas.search._base import SearchResult
from hwnas.search.constraints import Constraints
from hwnas.predict.loading import load_predictor
from hwnas.search.objectives import load_objective
from hwnas.search.pareto import Archive, plot_front
from hwnas.search.problem import SearchProblem
from hwnas.spaces import get_space, resolve_space_name, space_from_config

__all__ = ["build_problem", "write_outputs"]


def build_problem(space, constraints: Constraints, report_targets=(),
                  objective: str = "accuracy", checkpoint=None,
                  predictor: str = "auto", allow_emulated: bool = False,
                  accuracy=None) -> SearchProblem:
    """Predictors for every budget target (and ``report_targets``), one shared search space.

    ``space`` is a space name (each table's default configuration of it), a configuration
    name such as ``ofa-mbv3-imagenet`` or a ``SearchSpace`` (the configuration each table
    records for it, e.g. a checkpoint's space). The search space is the first target's table
    space restricted to the resolutions every table covers (and, for a configuration or a
    ``SearchSpace``, to its own); the arch string is width-free, so each target predicts the
    same (kernel, expand, depth, resolution) choice in its own table's configuration. Tables
    measured on an emulated device are refused unless ``allow_emulated``. ``accuracy`` names
    the accuracy source (``load_objective``).
    """
    if isinstance(space, str) and resolve_space_name(space)[1] is not None:
        space = get_space(space)
    targets = list(constraints.targets) + [t for t in report_targets if t not in constraints.targets]
    if not targets:
        raise BudgetError("no target: give a target, or a budget such as x86-host=25")
    preds = {t: load_predictor(t, space, predictor, allow_emulated=allow_emulated)
             for t in targets}
    first = preds[targets[0]].space
    covered = [set(p.space.resolutions) for p in preds.values()]
    if not isinstance(space, str):
        covered.append(set(space.resolutions))
    common = sorted(set.intersection(*covered))
    if not common:
        raise SpaceError("the latency tables share no input resolution: " + "; ".join(
            f"{t}: {list(p.space.resolutions)}" for t, p in preds.items()))
    space = space_from_config({**first.config(), "resolutions": common})
    return SearchProblem(space, load_objective(objective, space, checkpoint, accuracy), preds,
                         constraints)


def write_outputs(out: str | Path, problem: SearchProblem, result: SearchResult,
                  extra: dict | None = None, force: bool = False) -> dict:
    """``arch.json``, ``pareto.json``, ``pareto.png`` and ``history.json`` in ``out`` (new,
    empty or an earlier search output, see ``hwnas._outputs``), replaced as a whole."""
    import shutil

    final = check_output_dir(out, "search", force)
    with claim_output(final):
        stage = stage_dir(final)
        try:
            best = _write(stage, problem, result, extra)
            replace_dir(stage, final, "search", force)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
    return best


def _source_of(objective) -> dict | None:
    """The accuracy source that scored the front (None: the objective is no accuracy)."""
    source = getattr(objective, "source", None)
    return source.describe() if source is not None else None


def _write(out: Path, problem: SearchProblem, result: SearchResult, extra: dict | None) -> dict:
    best = problem.describe(result.best)
    best.update({"strategy": result.strategy, "evaluations": result.n_evals,
                 "search_wall_s": round(result.wall_s, 3), **(extra or {})})
    info = {k: v for k, v in result.info.items() if k != "archive"}
    if info:
        best["search_info"] = info
    archive = result.info.get("archive") or Archive(problem)
    atomic_write_json(out / "arch.json", best)
    atomic_write_json(out / "pareto.json", {
        "primary_target": problem.primary, "objective": problem.objective.name,
        "objective_note": problem.objective.note,
        "accuracy_source": _source_of(problem.objective),
        "constraints": problem.constraints.to_json(),
        "front": result.front})
    atomic_write_json(out / "history.json", {"strategy": result.strategy, "steps": result.history})
    title = (f"{result.strategy} on {problem.space.name}: "
             + ", ".join(f"{b.target} ≤ {b.budget_ms:.4g} ms" for b in problem.constraints.latency))
    plot_front(out / "pareto.png", archive, best, title)
    return best
