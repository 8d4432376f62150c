"""``hwnas deploy``: profile (or reuse) → search → export → compile → measure, until it fits.

First one of the table's own networks is timed again (round 0), so that the predictor starts
from the device's speed today. Each round searches with the target's latency predictor
corrected by that and by every bundle measured so far (``MeasuredCorrection``), exports the chosen subnet with the supernet's weights (BN
recalibrated), compiles it for the target, and measures the compiled library on the device.
A round whose measured median is within budget and within ``slack`` of it ends the loop; an
over-budget one feeds its measurement back and searches again. After ``max_rounds`` the best
bundle within budget is kept, or the run stops with a report of every round.
"""
from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hwnas._io import atomic_write_json, read_json
from hwnas.predict.correction import MeasuredCorrection
from hwnas.deploy.report import plot_predicted_vs_measured, write_report
from hwnas.deploy.run_script import RUN_PY
from hwnas.deploy.table_reuse import ensure_table
from hwnas.errors import BudgetError, DeviceError, SpaceError
from hwnas.search import search
from hwnas.search.constraints import Constraints, LatencyBudget
from hwnas.predict.loading import load_predictor, refuse_emulated
from hwnas.search.objectives import load_objective
from hwnas.search.problem import SearchProblem
from hwnas.search.assemble import write_outputs
from hwnas.spaces import space_from_config

__all__ = ["DeployConfig", "deploy"]

log = logging.getLogger("hwnas.deploy")


@dataclass
class DeployConfig:
    target: object                      # hwnas.targets.Target
    budget_ms: float
    out: Path
    checkpoint: Path | str | None = None  # folder or shipped name (None: ofa-mbv3-fmnist)
    runtime: object = None              # hwnas.runtime.Runtime on the device
    max_rounds: int = 4
    slack: float = 0.10                 # stop once measured ≥ (1 - slack) × budget
    strategy: str = "evolution"
    strategy_options: dict = field(default_factory=dict)
    margin: float | None = None         # None: the predictor's p90 bound
    seed: int = 0
    tuning_dir: str | None = None       # the target's tuning database (None: untuned code)
    tune_trials: int = 0                # > 0: top the database up with each round's subnet
    profile_networks: int = 20          # whole networks measured when a table is profiled
    allow_emulated: bool = False        # accept an emulated device and its tables

    def validate(self) -> None:
        """Every field in range (one-line errors), before anything is compiled or measured."""
        import math

        from hwnas.search import STRATEGIES

        if not (isinstance(self.budget_ms, (int, float)) and math.isfinite(self.budget_ms)
                and self.budget_ms > 0):
            raise BudgetError(f"latency budget must be a positive, finite number of ms, got "
                              f"{self.budget_ms!r}")
        if not (isinstance(self.max_rounds, int) and self.max_rounds >= 1):
            raise BudgetError(f"max_rounds must be an integer of at least 1, got {self.max_rounds!r}")
        if not (isinstance(self.slack, (int, float)) and 0 <= self.slack < 1):
            raise BudgetError(f"slack must be a fraction in [0, 1), got {self.slack!r}")
        if self.margin is not None and not (math.isfinite(self.margin) and 0 <= self.margin < 10):
            raise BudgetError(f"margin must be a fraction in [0, 10), got {self.margin!r}")
        if not (isinstance(self.tune_trials, int) and self.tune_trials >= 0):
            raise BudgetError(f"tuning trials must be an integer ≥ 0, got {self.tune_trials!r}")
        if not (isinstance(self.profile_networks, int) and self.profile_networks >= 0):
            raise BudgetError(f"profiled networks must be an integer ≥ 0, got "
                              f"{self.profile_networks!r}")
        STRATEGIES.get(self.strategy)


def _problem(cfg: DeployConfig, space, corrected: MeasuredCorrection) -> SearchProblem:
    cons = Constraints(latency=(LatencyBudget(cfg.target.name, cfg.budget_ms),), margin=cfg.margin)
    objective = load_objective("accuracy", space, cfg.checkpoint)
    return SearchProblem(space, objective, {cfg.target.name: corrected}, cons)


def _export_round(cfg: DeployConfig, space, arch, loaded, database, out: Path) -> dict:
    from hwnas.compiler.database import describe_database
    from hwnas.export.bundle import BundleRequest, export_bundle
    from hwnas.export.weights import subnet_with_weights

    model, weights = subnet_with_weights(space, arch, loaded)
    weights["source"] = loaded.meta["path"]
    if cfg.tune_trials:
        database = _top_up(cfg, space, arch, model)
    return export_bundle(BundleRequest(space, arch, model, cfg.target, out, weights,
                                       database=database,
                                       database_info=describe_database(cfg.tuning_dir),
                                       runtime=cfg.runtime))


def _top_up(cfg: DeployConfig, space, arch, model):
    """Give this subnet's kernels ``tune_trials`` trials in the target's work folder (those
    tuned before are reused), publish the result to the target's database, and return it."""
    import tempfile

    from hwnas.compiler.database import database_dir, load_database, publish, read_manifest
    from hwnas.compiler.database import work_dir as target_work_dir
    from hwnas.compiler.onnx_export import INPUT_NAME, export_onnx
    from hwnas.compiler.space_tuning import seed_work_dir
    from hwnas.compiler.tune import tune_onnx

    dest = Path(cfg.tuning_dir) if cfg.tuning_dir else database_dir(cfg.target, for_writing=True)
    work = target_work_dir(cfg.target)
    seed_work_dir(work, dest if dest.exists() else None)
    shape = space.input_shape(arch)
    with tempfile.TemporaryDirectory(prefix="hwnas-tune-") as tmp:
        onnx_path = export_onnx(model, shape, Path(tmp) / "model.onnx")
        tune_onnx(onnx_path, {INPUT_NAME: shape}, cfg.target, work, cfg.tune_trials)
    from hwnas.compiler.database import target_identity

    old = read_manifest(dest) if dest.exists() else {}
    publish(work, dest, {**{k: v for k, v in old.items() if k not in ("workloads",
                                                                        "best_seconds")},
                         "target": target_identity(cfg.target), "module_equality": "structural"})
    cfg.tuning_dir = str(dest)
    return load_database(dest, target=cfg.target)


def _time_reference(cfg: DeployConfig, space, table_info: dict,
                    corrected: MeasuredCorrection) -> dict | None:
    """Round 0: time one of the table's own networks now and correct the predictor by it.

    A shared or thermally throttled device runs at another speed than when its table was
    measured (several percent between sessions on a cloud VM); one known network, compiled and
    timed like a bundle, puts the first round's prediction on today's speed.
    """
    from hwnas.profile.holdout import reference_network
    from hwnas.profile.networks import measure_network
    from hwnas.profile.table import LatencyTable

    if cfg.runtime is None:
        return None
    ref = reference_network(LatencyTable.load(table_info["path"]), space)
    if ref is None:
        return None
    arch = space.parse(ref["arch"])       # calibration_networks kept only archs of ``space``
    ms = measure_network(space, arch, cfg.target, cfg.runtime,
                         tuning_dir=cfg.tuning_dir).median_ms
    corrected.add(space.to_genomes([arch])[0], ms)
    log.info("reference %s: %.3f ms now, %.3f ms in the table (×%.3f)", ref["arch"], ms,
             ref["median_ms"], ms / ref["median_ms"])
    return {"arch": ref["arch"], "table_ms": ref["median_ms"], "measured_ms": round(ms, 4),
            "ratio": round(ms / ref["median_ms"], 4)}


def _sample_input(loaded, out: Path, manifest: dict) -> None:
    """A real held-out image for ``run.py`` to classify."""
    from hwnas.export.weights import sample_input

    x, label, classes = sample_input(loaded, manifest["input"]["shape"])
    np.save(out / "sample_input.npy", x)
    manifest["sample"] = {"file": "sample_input.npy", "label": label}
    if classes:
        manifest["classes"] = list(classes)


def deploy(cfg: DeployConfig) -> dict:
    from hwnas.compiler.database import load_database
    from hwnas.train.checkpoint import load_supernet

    t0 = time.perf_counter()
    if cfg.runtime is not None:         # before anything is profiled or compiled for it
        refuse_emulated(cfg.runtime.emulator, f"the device {cfg.runtime.address} of "
                        f"'{cfg.target.name}' is emulated", cfg.allow_emulated, DeviceError)
    loaded = load_supernet(cfg.checkpoint)
    space = space_from_config(loaded[2]["space"])
    database = load_database(cfg.tuning_dir, target=cfg.target) if cfg.tuning_dir else None
    table_info = ensure_table(cfg.target, space, cfg.runtime, cfg.tuning_dir,
                              cfg.profile_networks)
    base = load_predictor(cfg.target.name, space, "auto", cfg.allow_emulated)
    if base.space.config() != space.config():
        space = space_from_config({**space.config(), "resolutions": [
            r for r in space.resolutions if r in base.space.resolutions]})
    if not space.resolutions:
        raise SpaceError("the latency table covers none of the checkpoint's resolutions")
    corrected = MeasuredCorrection(base)
    _problem(cfg, space, corrected).check_feasible()   # an impossible budget: refused at once
    reference = _time_reference(cfg, space, table_info, corrected)
    work = cfg.out.parent / f".{cfg.out.name}.rounds"
    shutil.rmtree(work, ignore_errors=True)
    rounds: list[dict] = []
    try:
        best = _rounds(cfg, space, corrected, loaded, database, work, rounds)
        final = _finish(cfg, best, rounds, {**table_info, "reference": reference}, work,
                        loaded, time.perf_counter() - t0)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final


def _rounds(cfg, space, corrected, loaded, database, work: Path, rounds: list[dict]) -> dict:
    best = None
    for i in range(1, cfg.max_rounds + 1):
        problem = _problem(cfg, space, corrected)
        result = search(cfg.strategy, problem, seed=cfg.seed + i, **cfg.strategy_options)
        rdir = work / f"round{i}"
        desc = write_outputs(rdir / "search", problem, result)
        predicted = desc["predicted_latency_ms"][cfg.target.name]
        manifest = _export_round(cfg, space, result.arch, loaded, database, rdir / "bundle")
        tuning = manifest.get("tuning", {})
        if tuning.get("tuned", 0) < tuning.get("kernels", 0) and not any(
                r.get("untuned_kernels") for r in rounds):
            log.warning("%d of %d kernels of %s have no tuned schedule for %s and run untuned; "
                        "tune the space once with hwnas tune", tuning["kernels"] - tuning["tuned"],
                        tuning["kernels"], result.arch, cfg.target.name)
        lat = manifest["latency"]["measured"]
        rec = {"round": i, "untuned_kernels": tuning.get("kernels", 0) - tuning.get("tuned", 0), "arch": str(result.arch), "predicted_ms": predicted,
               "predictor": corrected.name if corrected.n else corrected.base.name,
               "measured": lat, "accuracy": manifest["weights"]["accuracy"],
               "predicted_accuracy": desc["objective"]["value"], "dir": str(rdir)}
        rounds.append(rec)
        m = lat["median_ms"]
        log.info("round %d: %s predicted %.3f ms, measured %.3f ms (budget %g ms), acc %.4f",
                 i, result.arch, predicted, m, cfg.budget_ms, rec["accuracy"])
        corrected.add(result.best, m)
        if m <= cfg.budget_ms and (best is None or _rank(rec) > _rank(best)):
            best = rec
        if m <= cfg.budget_ms and m >= (1 - cfg.slack) * cfg.budget_ms:
            break
    return best


def _rank(rec: dict) -> tuple[float, float]:
    """Within budget, prefer accuracy, then the latency that uses more of the budget."""
    return rec["accuracy"], rec["measured"]["median_ms"]


def _finish(cfg, best, rounds, table_info, work: Path, loaded, wall_s: float) -> dict:
    if best is None:
        tried = "; ".join(f"round {r['round']}: {r['arch']} measured {r['measured']['median_ms']:.2f} ms"
                          for r in rounds)
        raise BudgetError(f"no bundle met {cfg.budget_ms:g} ms on {cfg.target.name} in "
                          f"{len(rounds)} rounds ({tried})")
    rdir = Path(best["dir"])
    bundle = rdir / "bundle"
    manifest = read_json(bundle / "manifest.json", "bundle manifest")
    for name in ("pareto.png", "pareto.json", "history.json"):
        shutil.copy2(rdir / "search" / name, bundle / name)
    (bundle / "run.py").write_text(RUN_PY)
    _sample_input(loaded, bundle, manifest)
    plot_predicted_vs_measured(rounds, cfg.budget_ms, bundle / "predicted_vs_measured.png")
    manifest["latency"].update({
        "budget_ms": cfg.budget_ms, "predicted_ms": best["predicted_ms"],
        "predictor": best["predictor"], "within_budget": True,
        "slack": (cfg.budget_ms - best["measured"]["median_ms"]) / cfg.budget_ms})
    manifest["deploy"] = {"rounds": len(rounds), "chosen_round": best["round"],
                          "history": [{k: v for k, v in r.items() if k != "dir"} for r in rounds],
                          "table": table_info, "wall_s": round(wall_s, 1),
                          "strategy": cfg.strategy}
    atomic_write_json(bundle / "arch.json", {**read_json(bundle / "arch.json", "arch"),
                                             "predicted_latency_ms": best["predicted_ms"]})
    atomic_write_json(bundle / "manifest.json", manifest)
    write_report(bundle, manifest, rounds, cfg.budget_ms)
    old = cfg.out.parent / f".{cfg.out.name}.old"
    shutil.rmtree(old, ignore_errors=True)
    if cfg.out.exists():
        cfg.out.replace(old)
    bundle.replace(cfg.out)
    shutil.rmtree(old, ignore_errors=True)
    return manifest
