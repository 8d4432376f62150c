"""The end of a deploy: the best bundle within budget, completed and moved into place."""
from __future__ import annotations

import shutil

import numpy as np

from hwnas._io import atomic_write_json, read_json
from hwnas._outputs import replace_dir
from hwnas.deploy.deployment import Deployment
from hwnas.deploy.records import DeployManifest, Round
from hwnas.deploy.report import plot_predicted_vs_measured, write_report
from hwnas.deploy.run_script import write_run_scripts
from hwnas.errors import BudgetError

__all__ = ["finish", "no_bundle_error"]


def no_bundle_error(budget_ms: float, target: str, rounds: list[Round]) -> BudgetError:
    """The error of a deploy none of whose rounds was judged within budget: each round."""
    def said(r: Round) -> str:
        judged = (f", judged {r.judged_ms:.2f} ms"
                  if r.judged_ms != round(r.measured_ms, 5) else "")
        return f"round {r.round}: {r.arch} measured {r.measured_ms:.2f} ms{judged}"

    tried = "; ".join(said(r) for r in rounds)
    return BudgetError(f"no bundle met {budget_ms:g} ms on {target} in {len(rounds)} rounds "
                       f"({tried})")


def finish(dep: Deployment, best: Round | None, rounds: list[Round], wall_s: float) -> dict:
    """Add to ``best``'s bundle its search's Pareto front, ``run.py``, a sample input, the
    manifest and ``report.md``, move it to the output folder, and return its manifest."""
    from hwnas.export.weights import sample_input

    cfg = dep.cfg
    if best is None:
        raise no_bundle_error(cfg.budget_ms, cfg.target.name, rounds)
    bundle = best.dir / "bundle"
    exported = read_json(bundle / "manifest.json", "bundle manifest")
    for name in ("pareto.png", "pareto.json", "history.json"):
        shutil.copy2(best.dir / "search" / name, bundle / name)
    write_run_scripts(bundle)
    label = classes = None
    if dep.supernet is not None and dep.supernet.meta.get("dataset") is not None:
        # else run.py takes the user's input
        x, label, classes = sample_input(dep.supernet, exported["input"]["shape"])
        np.save(bundle / "sample_input.npy", x)
    history = [r.to_json() for r in rounds]
    plot_predicted_vs_measured(history, cfg.budget_ms, bundle / "predicted_vs_measured.png")
    manifest = DeployManifest(
        exported, best, tuple(rounds), cfg.budget_ms, cfg.contended_margin, dep.table,
        dep.reading, dep.predictor_record(), cfg.strategy, wall_s, label,
        tuple(classes) if classes else None).to_json()
    atomic_write_json(bundle / "arch.json", {**read_json(bundle / "arch.json", "arch"),
                                             "predicted_latency_ms": best.predicted_ms})
    atomic_write_json(bundle / "manifest.json", manifest)
    write_report(bundle, manifest, history, cfg.budget_ms)
    replace_dir(bundle, cfg.out, "bundle", cfg.force)
    return manifest
