"""A new CPU model in minutes: tune, table and deploy on a CPU with no data of its own.

    python benchmarks/new_cpu.py [--minutes 4] [--measure 10] [--subnets 24] [--holdout 100]
                                 [--keep] [--json out.json]

The CPU is made new by hiding its data: the checkout is copied to a temporary folder without
this CPU model's tuning database (``tuning-<cpu>/``, or ``tuning/`` when that one is this
CPU's) and tables (``cpu-<cpu>/``), and every command runs on that copy, with an empty cache.

The journey (its wall time is ``minutes_total``):

1. ``hwnas tune --target x86-host --minutes M``: the other CPU models' schedules of every
   kernel and the default ones, timed here, the fastest kept; then M minutes of tuning where
   the time is.
2. ``hwnas adapt --target x86-host --measure K``: a few-shot predictor of this CPU from K
   measured networks and the other CPU models' tables.
3. ``hwnas deploy`` at ``--budgets`` (quantiles of the few-shot predictor's latency over
   random subnets of the space: they bind on whatever CPU runs this).

Then, not counted: ``--subnets`` random subnets compiled with the database a new CPU used
before (the one ``tuning/`` holds) and with the new one, timed against onnxruntime (each
runtime in a fresh process by the same Python loop of calls, ``_timing``: TVM through the
bundle's ``runner.Model``, alternated ``--rounds`` times, the median kept); the same with two
busy processes beside them (``LoadGenerator``); and
``--holdout`` other random subnets timed raw (no drift correction) against the few-shot
prediction. ``--keep`` copies the new database and predictor into this checkout's
``latency_tables/``.

``--json`` keys: cpu, minutes_total, minutes_tune, minutes_adapt, minutes_deploy,
tvm_over_ort_median_before/_after, tvm_over_ort_worst_before/_after,
tvm_over_ort_oversubscribed, within10_raw, deploy_within_budget_rate, deploy_median_slack,
deploy_within_budget_rate_independent, deploy_median_slack_independent (the bundles re-timed
by the one method, not by the deploy's own reading),
transfer (what the tuner kept from whom) and the per-subnet rows.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import median, parser, write_json  # noqa: E402
from _timing import bundle_rows, protocol_rows, time_alternating  # noqa: E402
from space_tuning import _compile  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TARGET = "x86-host"
COPIED = ("hwnas", "targets", "latency_tables", "checkpoints", "pyproject.toml")


# ---------------------------------------------------------------------------- the copy
def _hidden_copy(tmp: Path, cpu: str) -> tuple[Path, list[str]]:
    """The checkout in ``tmp/checkout`` without this CPU model's data; what was hidden."""
    dest = tmp / "checkout"
    dest.mkdir()
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, dest / name)
    base = dest / "latency_tables" / TARGET
    hidden = []
    for d in sorted(base.iterdir()) if base.is_dir() else []:
        mine = d.name in (f"tuning-{cpu}", f"cpu-{cpu}")
        if d.name == "tuning" and (d / "tuning.json").is_file():
            mine = json.loads((d / "tuning.json").read_text()).get("target", {}).get("mcpu") == cpu
        if d.is_dir() and mine:
            shutil.rmtree(d)
            hidden.append(d.name)
    for f in base.glob("*.json") if base.is_dir() else []:
        meta = json.loads(f.read_text()).get("meta", {})
        if meta.get("target_config", {}).get("tvm", {}).get("mcpu") == cpu:
            f.unlink()
            hidden.append(f.name)
    return dest, hidden


def _hwnas(copy: Path, env: dict, *args: str) -> tuple[float, str]:
    """Run ``hwnas ARGS`` on the copy; (wall seconds, stdout). Its stderr goes to ours."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "hwnas", *args], cwd=copy, env=env,
                          stdout=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    print(proc.stdout, end="", flush=True)
    if proc.returncode:
        raise SystemExit(f"hwnas {' '.join(args)} failed (exit {proc.returncode})")
    return wall, proc.stdout


# ---------------------------------------------------------------------------- workers
def _compile_all(space, archs, dbs: dict, folder: Path) -> list[dict]:
    from hwnas._cpus import allowed_cpus

    folder.mkdir(parents=True, exist_ok=True)
    jobs = [(allowed_cpus(), space.config(), str(a), str(folder / f"n{i}"), dbs)
            for i, a in enumerate(archs)]
    with multiprocessing.get_context("spawn").Pool(os.cpu_count() or 1,
                                                   maxtasksperchild=8) as pool:
        return pool.map(_compile, jobs)


# ---------------------------------------------------------------------------- the run
def _inner(args) -> dict:
    """Everything, on the hidden copy (this process imports hwnas from it)."""
    from hwnas.compiler.database import database_dir
    from hwnas.predict import load_predictor
    from hwnas.spaces import default_checkpoint
    from hwnas.targets import load_target
    from hwnas.train.checkpoint import load_supernet

    copy, env = Path.cwd(), dict(os.environ)
    target = load_target(TARGET)
    tmp = Path(args.tmp)
    done = tmp / "journey.json"            # a rerun on the same --workdir skips what finished
    walls = json.loads(done.read_text()) if done.exists() else {}
    first = tmp / "before.json"            # the database a compile used before the journey
    if not first.exists():
        first.write_text(json.dumps({"database": str(database_dir(target) or "")}))
    before_db = json.loads(first.read_text())["database"] or None
    out = {"cpu": target.mcpu, "before_database": before_db}
    print(f"CPU model {target.mcpu}; before: {before_db or 'no database'}", flush=True)
    for step, argv in (("tune", ["tune", "--target", TARGET, "--minutes", str(args.minutes)]),
                       ("adapt", ["adapt", "--target", TARGET, "--measure",
                                  str(args.measure)])):
        if step not in walls:
            walls[step], _ = _hwnas(copy, env, *argv)
            done.write_text(json.dumps(walls))
    space = load_supernet(default_checkpoint()).space
    pred = load_predictor(TARGET, space)
    rng = np.random.default_rng(args.seed)
    lat = pred.predict_genomes(space.sample_genomes(rng, 2000))
    budgets = [round(float(np.quantile(lat, q)), 3) for q in args.budgets]
    deploys = []
    for i, b in enumerate(budgets):
        bundle = tmp / f"bundle{i}"
        if f"deploy{i}" not in walls:
            walls[f"deploy{i}"], _ = _hwnas(copy, env, "deploy", "--target", TARGET,
                                            "--latency-ms", str(b), "--out", str(bundle))
            done.write_text(json.dumps(walls))
        wall = walls[f"deploy{i}"]
        m = json.loads((bundle / "manifest.json").read_text())
        ms = m["latency"]["measured"]["median_ms"]
        deploys.append({"budget_ms": b, "measured_ms": ms, "ok": ms <= b,
                        "slack": (b - ms) / b, "arch": m["arch"], "wall_s": round(wall, 1)})
    # the bundles re-timed independently: the one method, fresh processes, not the deploy's
    # own reading that accepted them
    again = time_alternating(bundle_rows([tmp / f"bundle{i}" for i in range(len(budgets))]),
                             ["tvm"], args.rounds)["tvm"]
    for d, ms in zip(deploys, again):
        d.update(independent_ms=round(float(ms), 4), ok_independent=bool(ms <= d["budget_ms"]),
                 slack_independent=(d["budget_ms"] - float(ms)) / d["budget_ms"])
    after_db = database_dir(target)
    man = json.loads((after_db / "tuning.json").read_text())
    out.update({
        "after_database": str(after_db), "transfer": man.get("transfer"),
        "predictor": pred.selection,
        "minutes_tune": walls["tune"] / 60, "minutes_adapt": walls["adapt"] / 60,
        "minutes_deploy": sum(v for k, v in walls.items() if k.startswith("deploy")) / 60,
        "minutes_total": sum(walls.values()) / 60,
        "deploys": deploys,
        "deploy_within_budget_rate": float(np.mean([d["ok"] for d in deploys])),
        "deploy_median_slack": median([d["slack"] for d in deploys]),
        "deploy_within_budget_rate_independent": float(np.mean([d["ok_independent"]
                                                                for d in deploys])),
        "deploy_median_slack_independent": median([d["slack_independent"] for d in deploys])})
    print(f"journey: {out['minutes_total']:.1f} min (tune {out['minutes_tune']:.1f}, adapt "
          f"{out['minutes_adapt']:.1f}, deploy {out['minutes_deploy']:.1f}); predictor "
          f"{pred.selection}", flush=True)
    for d in deploys:
        print(f"deploy {d['budget_ms']:.3f} ms: measured {d['measured_ms']:.3f} ms, slack "
              f"{d['slack']:.1%}; re-timed independently {d['independent_ms']:.3f} ms, slack "
              f"{d['slack_independent']:.1%}", flush=True)

    # validation: TVM before/after against onnxruntime, then the few-shot table's raw error
    per_r = max(1, args.subnets // len(space.resolutions))
    archs = [a for r in space.resolutions
             for a in space.sample_many(rng, per_r, resolution=r)] \
        if _takes_resolution(space) else space.sample_many(rng, args.subnets)
    dbs = {"before": str(before_db), "after": str(after_db)} if before_db else \
        {"after": str(after_db)}
    rows = _compile_all(space, archs, dbs, tmp / "subnets")
    kinds = list(dbs) + ["ort"]
    quiet = time_alternating(rows, kinds, args.rounds)
    for k in dbs:
        ratio = quiet[k] / quiet["ort"]
        out[f"tvm_over_ort_median_{k}"] = float(np.median(ratio))
        out[f"tvm_over_ort_worst_{k}"] = float(np.max(ratio))
    busy = time_alternating(rows, ["after", "ort"], 1, busy=2)
    out["tvm_over_ort_oversubscribed"] = float(np.median(busy["after"] / busy["ort"]))
    out["subnets"] = [{"arch": r["arch"], **{k: round(float(quiet[k][i]), 4) for k in kinds},
                      "busy_after": round(float(busy["after"][i]), 4),
                      "busy_ort": round(float(busy["ort"][i]), 4)}
                     for i, r in enumerate(rows)]
    hold = space.sample_many(np.random.default_rng(args.seed + 1000), args.holdout)
    hrows = _compile_all(space, hold, {"after": str(after_db)}, tmp / "holdout")
    measured = time_alternating(hrows, ["after"], 1, worker=protocol_rows)["after"]
    predicted = pred.predict_genomes(space.to_genomes(hold))
    err = predicted / measured - 1
    out.update({"within10_raw": float(np.mean(np.abs(err) <= 0.10)),
                "holdout_mape_raw": float(np.mean(np.abs(err))),
                "holdout_bias_raw": float(np.median(predicted / measured))})
    for k in dbs:
        print(f"TVM {k}: {out[f'tvm_over_ort_median_{k}']:.2f}x onnxruntime at the median, "
              f"{out[f'tvm_over_ort_worst_{k}']:.2f}x worst ({len(rows)} subnets)", flush=True)
    print(f"oversubscribed (2 busy processes): {out['tvm_over_ort_oversubscribed']:.2f}x",
          flush=True)
    print(f"few-shot table, raw: {out['within10_raw']:.1%} of {len(hold)} held-out networks "
          f"within 10% (MAPE {out['holdout_mape_raw']:.1%})", flush=True)
    if args.keep:
        out["kept"] = _keep(target, after_db, copy)
    return out


def _takes_resolution(space) -> bool:
    import inspect

    return "resolution" in inspect.signature(space.sample_many).parameters


def _keep(target, after_db: Path, copy: Path) -> list[str]:
    """Copy this CPU's new database and few-shot predictor into the real checkout."""
    kept = []
    dest = ROOT / "latency_tables" / TARGET / after_db.name
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(after_db, dest)
    kept.append(str(dest.relative_to(ROOT)))
    for f in (copy / "latency_tables" / TARGET / f"cpu-{target.cpu_slug}").glob("*.fewshot.json"):
        d = ROOT / "latency_tables" / TARGET / f.parent.name / f.name
        d.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, d)
        kept.append(str(d.relative_to(ROOT)))
    return kept


def main() -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=4.0, help="tuning minutes after the transfer")
    p.add_argument("--measure", type=int, default=10, help="networks the few-shot fit measures")
    p.add_argument("--budgets", default="0.25,0.5,0.75",
                   help="deploy budgets: quantiles of the predicted latency")
    p.add_argument("--subnets", type=int, default=24)
    p.add_argument("--holdout", type=int, default=100)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--keep", action="store_true",
                   help="copy the new database and predictor into latency_tables/")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", help="keep the copy and the results here (default: a "
                                      "temporary folder); a rerun skips the finished steps")
    p.add_argument("--inner", help=__import__("argparse").SUPPRESS)
    p.add_argument("--tmp", help=__import__("argparse").SUPPRESS)
    args = p.parse_args()
    args.budgets = [float(q) for q in str(args.budgets).split(",") if q.strip()]
    if args.inner:
        figures = _inner(args)
        Path(args.inner).write_text(json.dumps(figures))
        return 0
    import hwnas.targets

    cpu = hwnas.targets.load_target(TARGET).cpu_slug
    with tempfile.TemporaryDirectory(prefix="hwnas-newcpu-") as tmp:
        tmp = Path(args.workdir or tmp)
        tmp.mkdir(parents=True, exist_ok=True)
        if (tmp / "checkout").is_dir():
            copy, hidden = tmp / "checkout", json.loads((tmp / "hidden.json").read_text())
        else:
            copy, hidden = _hidden_copy(tmp, cpu)
            (tmp / "hidden.json").write_text(json.dumps(hidden))
        print(f"hidden this CPU's data: {', '.join(hidden) or 'none shipped'}", flush=True)
        env = {**os.environ, "PYTHONPATH": str(copy), "HWNAS_CACHE": str(tmp / "cache")}
        for var in ("HWNAS_TABLES", "HWNAS_TARGETS", "HWNAS_CHECKPOINTS", "HWNAS_ACCURACY"):
            env.pop(var, None)
        env["HWNAS_DATA"] = str(copy)        # the copy's data only, and what it writes
        result = tmp / "result.json"
        argv = [a for a in sys.argv[1:]]
        rc = subprocess.run([sys.executable, str(Path(__file__).resolve()), *argv, "--inner",
                             str(result), "--tmp", str(tmp)], cwd=copy, env=env).returncode
        if rc:
            return rc
        figures = json.loads(result.read_text())
    figures["hidden"] = hidden
    write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
