"""Whole-space tuning on x86-host: what shipping tuned code buys, measured.

    python benchmarks/space_tuning.py --reuse [--subnets 24] [--budgets ...] [--json out.json]
    python benchmarks/space_tuning.py --minutes 90 [--snapshots 15,30,60,90] [--json out.json]

1. The tuning database: ``--reuse`` takes the committed one (``latency_tables/x86-host/
   tuning/``); otherwise ``hwnas tune`` runs first (resuming from it) for ``--minutes``.
2. ``--subnets`` random subnets of the shipped checkpoint's space, the same number at every
   resolution, compiled untuned and tuned (workers in parallel, nothing timed meanwhile).
3. Untuned TVM, tuned TVM and onnxruntime (2 threads) time every subnet, each runtime in a
   fresh process by the same Python loop of calls (``_timing``: TVM through the bundle's
   ``runner.Model``, onnxruntime through a session, outputs fetched alike); the three
   alternate ``--rounds`` times, so that they see the same drift of a shared machine; the
   median round is kept.
4. The target's latency table (which describes the tuned code) predicts the tuned subnets.
   When the committed table was measured on another CPU model, this CPU's own table is
   profiled first (``--own-networks``) and scored, and deploys use it: a table describes the
   code of the CPU it was measured on. The table predicts the tuned subnets,
   scored against their drift-corrected latency (timed A/B against the table's reference
   network, in the table's units, as the table was measured); against the plain timing too
   (``..._raw``), with how much slower the host ran than when the table was measured.
5. ``hwnas deploy`` (tuned, as shipped) at each of ``--budgets``; and the untuned pipeline (the
   untuned table and untuned code) at ``--compare-budgets``, where the two are compared by
   the test accuracy of what they deploy, and at ``--budgets``, where it may ship nothing.
   Budgets default to quantiles of each pipeline's own predicted latency over random
   subnets, so that they bind on whatever CPU runs the benchmark.
6. ``--snapshot-dir`` (a work folder of ``hwnas tune --snapshots``): the median tuned/ort ratio
   of the first subnets with each snapshot of the database, against the minutes of tuning.

``--json PATH`` writes coverage, tvm_over_ort_median/_worst, tuned_table_within10,
within_budget_rate, median_slack (and their ``_independent`` twins: the bundles re-timed by
the one method), accuracy_gain_at_budget, untuned_bundles_at_tuned_budgets,
tune_wall_s, tune_trials,
achieved_gflops_median and peak_gflops, and the per-subnet and per-budget rows.
"""
from __future__ import annotations

import atexit
import json
import multiprocessing
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import budgets_ms, median, own_table, parser, write_json  # noqa: E402
from _timing import bundle_rows, protocol_rows, time_alternating, time_rows  # noqa: E402

TARGET = "x86-host"


# ---------------------------------------------------------------------------- compile
def _compile(job) -> dict:
    """Worker: ONNX, untuned and tuned libraries of one subnet (seeded weights, as profile).
    The last part of the job is the tuned database's folder, or ``{name: folder or None}``:
    a library per name."""
    from hwnas._cpus import restore

    cpus, space_cfg, arch_text, out, dbs = job
    if not isinstance(dbs, dict):
        dbs = {"untuned": None, "tuned": dbs}
    restore(cpus)
    import torch

    torch.set_num_threads(1)
    from hwnas.compiler import compile_onnx, export_library
    from hwnas.compiler.database import load_database
    from hwnas.compiler.onnx_export import network_to_onnx
    from hwnas.spaces import space_from_config
    from hwnas.targets import load_target

    space = space_from_config(space_cfg)
    arch = space.parse(arch_text)
    target = load_target(TARGET)
    out = Path(out)
    onnx = network_to_onnx(space, arch, out.with_suffix(".onnx"))
    shape = {"input": space.input_shape(arch)}
    row = {"arch": arch_text, "onnx": str(onnx), "shape": list(space.input_shape(arch)),
           "macs": space.flops(arch)}
    for name, db_dir in dbs.items():
        c = compile_onnx(onnx, shape, target, load_database(db_dir, target=target))
        row[name] = str(export_library(c.executable, out.with_name(f"{out.name}.{name}.so"),
                                       target))
        row[f"{name}_kernels"] = [c.tuned, c.kernels]
    return row


# ---------------------------------------------------------------------------- timing
def _time_all(job) -> list[float]:
    """Worker: median ms of every subnet on one runtime (``_timing``: the same Python loop
    for TVM and onnxruntime); ``tuned_ab``: drift-corrected, against the table's reference."""
    from hwnas._cpus import restore

    cpus, kind, rows = job
    if kind == "tuned_protocol":        # hwnas's protocol, the units of tables and deploys
        return protocol_rows((cpus, "tuned", rows))
    if kind != "tuned_ab":
        return time_rows(job)
    restore(cpus)
    from hwnas.runtime import connect
    from hwnas.targets import load_target

    target = load_target(TARGET)
    return _time_ab(target, connect(target), rows)


def _time_ab(target, runtime, rows: list[dict]) -> list[float]:
    """Drift-corrected ms of the tuned libraries: timed interleaved with the table's reference
    network (A/B), ratio x the reference's quiet time in the table, as the table's own
    entries and networks are; so the table's prediction is scored in the table's units,
    whatever the host's speed since (it moves by 10-25% within an hour here)."""
    from hwnas.compiler.database import database_dir
    from hwnas.profile.deploy_timing import BUSY_WAIT_S
    from hwnas.profile.networks import random_input
    from hwnas.profile.pool import BuildPool
    from hwnas.profile.reference_network import open_reference
    from hwnas.profile.table import LatencyTable, table_path
    from hwnas.runtime.contention import BUSY_CORES
    from hwnas.runtime.reference import measure_batch
    from hwnas.spaces import space_from_config

    space = space_from_config(rows[0]["space"])
    table = LatencyTable.load(rows[0].get("table") or table_path(TARGET, space))
    db = database_dir(target)
    with tempfile.TemporaryDirectory(prefix="hwnas-bench-ref-") as tmp, BuildPool(0) as pool, \
            open_reference(pool, runtime, target, space, tmp, None if db is None else str(db),
                           table.meta) as reference:
        if reference is None:
            raise RuntimeError("the table's reference network did not build or run")
        timers = [runtime.timer(r["tuned"], {"input": random_input(tuple(r["shape"]))})
                  for r in rows]
        got = measure_batch(timers, reference, rounds=30, contention=runtime.contention(),
                            busy_limit=BUSY_CORES, busy_wait_s=BUSY_WAIT_S)
    return [m.latency.median_ms for m in got]


def _interleaved(rows: list[dict], rounds: int,
                 kinds=("untuned", "tuned", "ort", "tuned_ab", "tuned_protocol")) -> dict:
    from hwnas._cpus import allowed_cpus

    got = {k: [] for k in kinds}
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1, maxtasksperchild=1) as pool:
        for r in range(rounds):
            for k in kinds:
                t0 = time.perf_counter()
                got[k].append(pool.apply(_time_all, ((allowed_cpus(), k, rows),)))
                print(f"  round {r + 1}/{rounds} {k:8s} {time.perf_counter() - t0:5.1f} s",
                      flush=True)
    return {k: np.median(np.asarray(v), axis=0) for k, v in got.items()}


# ---------------------------------------------------------------------------- the CPU's peak
def peak_gflops() -> tuple[float, str]:
    """fp32 peak = FMA lanes × 2 (multiply + add) × FMA units × cores × clock, as derived from
    /proc/cpuinfo (lanes from the ISA flags; 2 FMA units per core, as on server parts with
    AVX-512 or AVX2; the base clock from the model name, else the current MHz)."""
    text = Path("/proc/cpuinfo").read_text()
    flags = set(re.search(r"^flags\s*:\s*(.*)$", text, re.M).group(1).split())
    lanes = 16 if "avx512f" in flags else 8 if "avx2" in flags else 4
    cores = len(os.sched_getaffinity(0))
    model = re.search(r"^model name\s*:\s*(.*)$", text, re.M).group(1)
    ghz_m = re.search(r"@\s*([\d.]+)\s*GHz", model)
    if ghz_m:
        ghz, src = float(ghz_m.group(1)), "model name"
    else:
        ghz, src = float(re.search(r"^cpu MHz\s*:\s*([\d.]+)", text, re.M).group(1)) / 1e3, \
            "cpu MHz"
    units = 2
    peak = lanes * 2 * units * cores * ghz
    how = (f"{lanes} fp32 lanes ({'AVX-512' if lanes == 16 else 'AVX2' if lanes == 8 else 'SSE'})"
           f" x 2 (FMA) x {units} FMA units x {cores} cores x {ghz:.2f} GHz ({src}; {model})")
    return peak, how


def achieved_gflops(rows: list[dict], ms: np.ndarray) -> np.ndarray:
    """GFLOP/s each subnet ran at: 2 x its MACs (one multiply and one add each) over its time."""
    return np.array([2 * r["macs"] for r in rows]) / (np.asarray(ms) * 1e6)


# ---------------------------------------------------------------------------- deploys
def _deploys(budgets, cfg, label) -> list[dict]:
    from hwnas.deploy.loop import deploy
    from hwnas.errors import HwnasError

    rows = []
    for b in budgets:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            try:
                m = deploy(replace(cfg, budget_ms=b, out=Path(tmp) / "bundle"))
            except HwnasError as exc:
                print(f"{label:8s} {b:6.2f}  no bundle: {exc}", flush=True)
                rows.append({"budget": b, "ok": False, "error": str(exc)})
                continue
            lat = m["latency"]["measured"]["median_ms"]
            # re-timed independently (the one method, fresh processes), not by the reading
            # that accepted the bundle
            again = float(time_alternating(bundle_rows([Path(tmp) / "bundle"]), ["tvm"],
                                           3)["tvm"][0])
            r = {"budget": b, "ok": lat <= b, "measured": lat, "slack": (b - lat) / b,
                 "independent_ms": again, "ok_independent": again <= b,
                 "slack_independent": (b - again) / b,
                 "rounds": m["deploy"]["rounds"], "arch": m["arch"],
                 "accuracy": m["weights"]["accuracy"], "tuning": m.get("tuning", {}),
                 "wall_s": round(time.perf_counter() - t0, 1)}
            rows.append(r)
            print(f"{label:8s} {b:6.2f} {lat:8.3f} {r['slack']:6.1%} {r['rounds']:3d} "
                  f"{r['tuning'].get('tuned', 0)}/{r['tuning'].get('kernels', 0):<3} "
                  f"acc {r['accuracy']:.4f}  {r['arch']}", flush=True)
    return rows


def _minutes(p: Path) -> float | None:
    try:
        return float(p.name)
    except ValueError:
        return None


def _curve(snap_dir: Path, rows: list[dict], ort_ms: np.ndarray, n: int,
           final: tuple[np.ndarray, dict]) -> list[dict]:
    """Median tuned/ort ratio of the first ``n`` subnets with each database snapshot
    (``snap_dir``: a ``hwnas tune`` work folder or its ``snapshots/``), then with the
    published database (``final``: those subnets' tuned times, and its manifest)."""
    from hwnas._cpus import allowed_cpus

    out = []
    if (snap_dir / "snapshots").is_dir():
        snap_dir = snap_dir / "snapshots"
    snaps = sorted((p for p in snap_dir.iterdir() if p.is_dir() and _minutes(p) is not None),
                   key=_minutes)
    if not snaps:
        print(f"  no database snapshots in {snap_dir}")
    man = json.loads((snap_dir.parent / "tuning.json").read_text()) \
        if (snap_dir.parent / "tuning.json").exists() else {}
    ctx = multiprocessing.get_context("spawn")
    for snap in snaps:
        with tempfile.TemporaryDirectory() as tmp, ctx.Pool(2, maxtasksperchild=1) as pool:
            sub = [dict(r) for r in rows[:n]]
            built = pool.map(_compile, [(allowed_cpus(), r["space"], r["arch"],
                                         str(Path(tmp) / f"s{i}"), str(snap))
                                        for i, r in enumerate(sub)])
            tuned = np.median([pool.apply(_time_all, ((allowed_cpus(), "tuned", built),))
                               for _ in range(2)], axis=0)
        ratio = median(tuned / ort_ms[:n])
        info = man.get("snapshots", {}).get(snap.name, {})
        out.append({"minutes": float(snap.name), "trials": info.get("trials"),
                    "tvm_over_ort_median": ratio})
        print(f"  snapshot {snap.name:>5} min: tuned/ort median {ratio:.3f} "
              f"({info.get('trials')} trials)", flush=True)
    tuned, done = final
    if done.get("wall_s"):
        ratio = median(tuned[:n] / ort_ms[:n])
        out.append({"minutes": round(done["wall_s"] / 60, 1), "trials": done.get("trials_total"),
                    "tvm_over_ort_median": ratio, "published": True})
        print(f"  published {done['wall_s'] / 60:5.1f} min: tuned/ort median {ratio:.3f} "
              f"({done.get('trials_total')} trials)", flush=True)
    return out


def main() -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--reuse", action="store_true", help="use the committed tuning database")
    p.add_argument("--minutes", type=float, default=90.0, help="tuning time without --reuse")
    p.add_argument("--snapshots", default="15,30,60,90", help="with tuning: snapshot minutes")
    p.add_argument("--snapshot-dir", help="measure the ratio with each snapshot found here")
    p.add_argument("--subnets", type=int, default=24)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--budgets", default="q:0.15,0.35,0.55,0.75,0.9",
                   help="ms (0.4,0.6), or q: quantiles of the target's predicted latency over "
                        "random subnets, so that they bind on whatever CPU this is "
                        "(default %(default)s)")
    p.add_argument("--compare-budgets", default="q:0.15,0.5,0.85",
                   help="budgets where both pipelines deploy, compared by accuracy: ms, or q: "
                        "quantiles of the untuned table's prediction, where untuned code can "
                        "deploy at all (default %(default)s)")
    p.add_argument("--untuned-table", default=None,
                   help="the untuned table (default latency_tables/x86-host/ofa-mbv3.untuned.json)")
    p.add_argument("--max-rounds", type=int, default=3)
    p.add_argument("--own-networks", type=int, default=40,
                   help="networks of this CPU's own table, profiled when the committed one "
                        "was measured on another CPU (default %(default)s)")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()

    from hwnas._cpus import allowed_cpus
    from hwnas._log import setup_logging
    from hwnas.compiler.database import database_dir, read_manifest, work_dir
    from hwnas.deploy.loop import DeployConfig
    from hwnas.predict import load_predictor
    from hwnas.profile.table import LatencyTable, table_path
    from hwnas.runtime import connect
    from hwnas.targets import load_target
    from hwnas.train.checkpoint import load_supernet

    setup_logging()
    target = load_target(TARGET)
    space = load_supernet().space
    t_start = time.perf_counter()
    if not args.reuse:
        from hwnas.compiler.space_tuning import tune_space

        rep = tune_space(space, target, work_dir(target), database_dir(target, True),
                         minutes=args.minutes, resume=True,
                         snapshot_minutes=[float(v) for v in args.snapshots.split(",") if v])
        print(f"tuned {rep.covered}/{rep.kernels} kernels, {rep.trials_total} trials, "
              f"{rep.wall_total_s / 60:.1f} min", flush=True)
    db_dir = database_dir(target)
    if db_dir is None:
        print("no tuning database for x86-host: run without --reuse, or hwnas tune")
        return 1
    man = read_manifest(db_dir)
    print(f"database {db_dir}: {man.get('workloads')} kernels, {man.get('trials_total')} trials, "
          f"{(man.get('wall_s') or 0) / 60:.1f} min of tuning on "
          f"{man.get('target', {}).get('mcpu')}; this CPU: {target.mcpu}")

    # ---- subnets, compiled
    rng = np.random.default_rng(args.seed)
    per = -(-args.subnets // len(space.resolutions))
    archs = []
    for ri, r in enumerate(space.resolutions):
        g = space.sample_genomes(rng, per)
        g[:, -1] = ri
        archs += [str(space.from_genome(x)) for x in g]
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hwnas-bench-") as tmp:
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(2, maxtasksperchild=4) as pool:
            rows = pool.map(_compile, [(allowed_cpus(), space.config(), a,
                                        str(Path(tmp) / f"net{i}"), str(db_dir))
                                       for i, a in enumerate(archs)])
        for r in rows:
            r["space"] = space.config()
        print(f"compiled {len(rows)} subnets untuned and tuned in "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
        # the table describes the tuned code of the CPU it was measured on: on another CPU
        # model, this CPU's own is profiled first (as its user would), and scored instead
        other_cpu = LatencyTable.load(table_path(TARGET, space)).other_cpu(target)
        own = None
        if other_cpu:
            own_dir = tempfile.mkdtemp(prefix="hwnas-bench-tables-")
            atexit.register(shutil.rmtree, own_dir, ignore_errors=True)
            own = own_table(space, target, connect(target), str(db_dir), Path(own_dir),
                            args.own_networks)
            print(f"the committed table was measured on {other_cpu}, "
                  f"this is {target.mcpu}: profiled this CPU's own ({own['ops']} operators, "
                  f"{own['networks']} networks) in {own['wall_s']:.0f} s", flush=True)
            for r in rows:
                r["table"] = str(own["path"])
        kernels = sum(r["tuned_kernels"][1] for r in rows)
        tuned_k = sum(r["tuned_kernels"][0] for r in rows)
        t0 = time.perf_counter()
        ms = _interleaved(rows, args.rounds)
        print(f"timed in {time.perf_counter() - t0:.0f} s", flush=True)
        curve = _curve(Path(args.snapshot_dir), rows, ms["ort"], min(8, len(rows)),
                       (ms["tuned"], man)) \
            if args.snapshot_dir else []

    # ---- table prediction of the tuned code
    table_file = own["path"] if own else None
    pred_t = load_predictor(TARGET, space, "table", path=table_file)
    pred_c = load_predictor(TARGET, space, "auto", path=table_file)
    genomes = space.to_genomes([space.parse(a) for a in archs])
    p_table, p_cal = pred_t.predict_genomes(genomes), pred_c.predict_genomes(genomes)
    peak, how = peak_gflops()
    ratio = ms["tuned"] / ms["ort"]
    gflops = achieved_gflops(rows, ms["tuned"])
    print(f"\n{'arch':48s} {'untuned':>8} {'tuned':>7} {'ort':>7} {'tvm/ort':>7} "
          f"{'A/B':>7} {'table':>7} {'calib':>7} {'kernels':>8} {'GFLOP/s':>8}")
    for i, r in enumerate(rows):
        print(f"{r['arch']:48s} {ms['untuned'][i]:8.3f} {ms['tuned'][i]:7.3f} {ms['ort'][i]:7.3f} "
              f"{ratio[i]:7.3f} {ms['tuned_ab'][i]:7.3f} {p_table[i]:7.3f} {p_cal[i]:7.3f} "
              f"{r['tuned_kernels'][0]:>3}/{r['tuned_kernels'][1]:<3} {gflops[i]:8.1f}")

    # ---- deploys
    runtime = connect(target)
    tuned_cfg = DeployConfig(target=target, budget_ms=1.0, out=Path(), runtime=runtime,
                             max_rounds=args.max_rounds, tuning_dir=str(db_dir),
                             table=table_file)
    # budgets bind on this CPU, whichever it is: the calibrated prediction (in the table's
    # units) times how fast this CPU ran the measured subnets against it (x0.23 on a znver5
    # host for a table taken on rocketlake, whose quantiles all lay above the largest subnet)
    here = median(ms["tuned_protocol"] / p_cal)
    budgets, chosen = budgets_ms(args.budgets, TARGET, space, scale=round(here, 4),
                                 table=table_file)
    print(f"\nbudgets {budgets} ms: {chosen} (this CPU ran the subnets x{here:.3f} their "
          f"calibrated prediction)")
    untuned_table = Path(args.untuned_table) if args.untuned_table else \
        db_dir.parent / f"{space.name}.untuned.json"
    compare = budgets
    if args.compare_budgets and untuned_table.exists():
        p_untuned = load_predictor(TARGET, space, "auto", path=untuned_table)
        here_u = median(ms["untuned"] / p_untuned.predict_genomes(genomes))
        compare, chosen = budgets_ms(args.compare_budgets, TARGET, space, table=untuned_table,
                                     scale=round(here_u, 4))
        print(f"untuned pipeline's budgets {compare} ms: {chosen}")
    print(f"\n{'pipeline':8s} {'budget':>6} {'measured':>8} {'slack':>6} {'rnd':>3} "
          f"kernels  accuracy  arch")
    tuned_rows = _deploys(budgets, tuned_cfg, "tuned")
    extra = [b for b in compare if b not in budgets]
    tuned_rows += _deploys(extra, tuned_cfg, "tuned")
    untuned_rows = []
    if untuned_table.exists():
        # also at the tuned budgets: what the untuned pipeline can ship there at all
        untuned_rows = _deploys(compare + [b for b in budgets if b not in compare],
                                replace(tuned_cfg, tuning_dir=None, table=untuned_table),
                                "untuned")
    else:
        print(f"no untuned table at {untuned_table}: accuracy gain not measured")
    by_budget = {r["budget"]: r for r in tuned_rows}
    gains = [by_budget[u["budget"]]["accuracy"] - u["accuracy"] for u in untuned_rows
             if u.get("ok") and by_budget.get(u["budget"], {}).get("ok")]
    untuned_there = [u for u in untuned_rows if u["budget"] in budgets]
    goal = [r for r in tuned_rows if r["budget"] in budgets]
    done = [r for r in goal if "measured" in r]
    err_t = np.abs(p_table - ms["tuned_ab"]) / ms["tuned_ab"]     # in the table's units
    err_c = np.abs(p_cal - ms["tuned_ab"]) / ms["tuned_ab"]
    raw = ms["tuned_protocol"]          # the plain timing, by the protocol the table used
    err_t_raw = np.abs(p_table - raw) / raw
    err_c_raw = np.abs(p_cal - raw) / raw
    figures = {
        "coverage": tuned_k / kernels if kernels else None,
        "tvm_over_ort_median": median(ratio), "tvm_over_ort_worst": float(ratio.max()),
        "untuned_over_ort_median": median(ms["untuned"] / ms["ort"]),
        "tuned_table_within10": float(np.mean(err_t <= 0.10)),
        "tuned_calibrated_within10": float(np.mean(err_c <= 0.10)),
        "tuned_table_within10_raw": float(np.mean(err_t_raw <= 0.10)),
        "tuned_calibrated_within10_raw": float(np.mean(err_c_raw <= 0.10)),
        "device_over_table_median": median(ms["tuned_protocol"] / ms["tuned_ab"]),
        "table_measured_here": own is None,
        "own_table": {k: v for k, v in own.items() if k not in ("path", "table")}
        if own else None,
        "budget_scale": round(here, 4),
        "within_budget_rate": sum(r.get("ok", False) for r in goal) / len(goal) if goal else None,
        "median_slack": median([r["slack"] for r in done]) if done else None,
        "within_budget_rate_independent": (sum(r.get("ok_independent", False) for r in goal)
                                           / len(goal)) if goal else None,
        "median_slack_independent": median([r["slack_independent"] for r in done])
        if done else None,
        "accuracy_gain_at_budget": median(gains) if gains else None,
        "accuracy_gain_budgets": len(gains),
        "untuned_bundles_at_tuned_budgets": sum(bool(u.get("ok")) for u in untuned_there)
        if untuned_there else None,
        "tune_wall_s": man.get("wall_s"), "tune_trials": man.get("trials_total"),
        "tuned_on": man.get("target", {}).get("mcpu"), "this_cpu": target.mcpu,
        "achieved_gflops_median": median(gflops), "peak_gflops": peak, "peak_derivation": how,
        "benchmark_wall_s": round(time.perf_counter() - t_start, 1),
        "load_avg_1m_at_end": os.getloadavg()[0],
    }
    print(f"\npeak fp32: {peak:.0f} GFLOP/s = {how}")
    print("  ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in figures.items() if k != "peak_derivation"))
    figures.update(subnets=[{**{k: r[k] for k in ("arch", "macs", "tuned_kernels")},
                             "untuned_ms": float(ms["untuned"][i]), "tuned_ms": float(ms["tuned"][i]),
                             "ort_ms": float(ms["ort"][i]),
                             "tuned_corrected_ms": float(ms["tuned_ab"][i]),
                             "table_ms": float(p_table[i]),
                             "calibrated_ms": float(p_cal[i])} for i, r in enumerate(rows)],
                   deploys={"tuned": tuned_rows, "untuned": untuned_rows}, tuning_curve=curve)
    write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
