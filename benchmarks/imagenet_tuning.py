"""Tuned x86 code at ImageNet scale (ofa-mbv3-imagenet, 160-224 px): TVM against onnxruntime
and torch eager, the roofline, the table's error and deploys that bind, on this CPU.

    python benchmarks/imagenet_tuning.py --reuse [--subnets 24] [--json out.json]
    python benchmarks/imagenet_tuning.py --minutes 120 [--json out.json]

1. The database: ``--reuse`` takes the committed one (the configuration's folder inside
   ``latency_tables/x86-host/tuning-<cpu>/``); otherwise ``hwnas tune --space
   ofa-mbv3-imagenet`` runs first for ``--minutes`` (resuming from it).
2. ``--subnets`` random subnets of the configuration, spread evenly over its five
   resolutions, compiled with it (two workers; nothing is timed meanwhile).
3. TVM, onnxruntime and torch eager time every subnet by one method (``_timing``: the same
   Python loop of calls, each runtime in a fresh process, the three alternated ``--rounds``
   times, the median round kept). Achieved GFLOP/s (2 x MACs / time) beside the CPU's fp32
   peak, derived from ``/proc/cpuinfo`` (``space_tuning.peak_gflops``).
4. When this CPU has a latency table of the configuration (``hwnas profile --space
   ofa-mbv3-imagenet``), its calibrated predictor is scored against the subnets' plain
   timings by hwnas's protocol (``within10_raw``). Without one, that key is null and the
   output says why. The deploy keys (``within_budget_rate``, ``median_slack`` and their
   ``_independent`` twins) stay null until deploys at this scale are benchmarked here.

``--json PATH`` writes coverage, tvm_over_ort_median/_worst, torch_over_ort_median,
achieved_gflops_median, peak_gflops, tune_wall_s, tune_trials, tune_finished,
within10_raw, within_budget_rate(_independent), median_slack(_independent), the CPU model,
the load, and the per-subnet rows.
"""
from __future__ import annotations

import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import median, parser, write_json  # noqa: E402
from _timing import protocol_rows, time_alternating  # noqa: E402
from space_tuning import _compile, achieved_gflops, peak_gflops  # noqa: E402

TARGET = "x86-host"
SPACE = "ofa-mbv3-imagenet"


def _archs(space, n: int, seed: int) -> list[str]:
    """``n`` random subnets, the resolutions taken in turn."""
    rng = np.random.default_rng(seed)
    g = space.sample_genomes(rng, n)
    g[:, -1] = np.arange(n) % len(space.resolutions)
    return [str(space.from_genome(x)) for x in g]


def _database(target, space, args) -> tuple[Path | None, dict]:
    """The configuration's published database (tuned first without ``--reuse``) and its
    manifest."""
    from hwnas.compiler.database import database_dir, read_manifest

    if not args.reuse:
        from hwnas.api import tune

        rep = tune(TARGET, space=space, minutes=args.minutes)
        print(f"tuned {rep.covered}/{rep.kernels} kernels, {rep.trials_total} trials, "
              f"{rep.wall_total_s / 60:.1f} min in all", flush=True)
    folder = database_dir(target, for_writing=True, space=space)
    if not (folder / "tuning.json").is_file():
        return None, {}
    return database_dir(target), read_manifest(folder)


def _table_score(space, rows) -> dict:
    """The configuration's table on this CPU, scored against plain protocol timings."""
    from hwnas.errors import HwnasError
    from hwnas.predict import load_predictor

    try:
        pred = load_predictor(TARGET, space, "auto")
    except HwnasError as exc:
        return {"why": f"no latency table of {SPACE} for this CPU ({exc})"}
    genomes = space.to_genomes([space.parse(r["arch"]) for r in rows])
    predicted = pred.predict_genomes(genomes)
    raw = np.asarray(time_alternating(rows, ["tvm"], 3, worker=protocol_rows)["tvm"])
    err = np.abs(predicted - raw) / raw
    return {"within10_raw": float(np.mean(err <= 0.10)),
            "predicted_ms": predicted.tolist(), "protocol_ms": raw.tolist()}


def main() -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--reuse", action="store_true", help="use the committed tuning database")
    p.add_argument("--minutes", type=float, default=120.0, help="tuning time without --reuse")
    p.add_argument("--subnets", type=int, default=24)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()

    from hwnas._cpus import allowed_cpus
    from hwnas._log import setup_logging
    from hwnas.spaces import get_space
    from hwnas.targets import load_target

    setup_logging()
    target = load_target(TARGET)
    space = get_space(SPACE)
    t_start = time.perf_counter()
    load_before = os.getloadavg()[0]
    db_dir, man = _database(target, space, args)
    if db_dir is None:
        print(f"no tuning database of {SPACE} for x86-host on {target.mcpu}: run without "
              "--reuse, or hwnas tune --space ofa-mbv3-imagenet")
        return 1
    print(f"database {db_dir}: {SPACE} {man.get('workloads')} kernels, "
          f"{man.get('trials_total')} trials, {(man.get('wall_s') or 0) / 60:.1f} min of tuning "
          f"on {man.get('target', {}).get('mcpu')} (finished: {man.get('finished')}); "
          f"this CPU: {target.mcpu}", flush=True)

    archs = _archs(space, args.subnets, args.seed)
    with tempfile.TemporaryDirectory(prefix="hwnas-bench-imagenet-") as tmp:
        t0 = time.perf_counter()
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(2, maxtasksperchild=4) as pool:
            rows = pool.map(_compile, [(allowed_cpus(), space.config(), a,
                                        str(Path(tmp) / f"net{i}"), {"tvm": str(db_dir)})
                                       for i, a in enumerate(archs)])
        for r in rows:
            r["space"] = space.config()
        compile_s = time.perf_counter() - t0
        print(f"compiled {len(rows)} subnets in {compile_s:.0f} s", flush=True)
        t0 = time.perf_counter()
        ms = time_alternating(rows, ["tvm", "ort", "torch"], args.rounds,
                              on_round=lambda r, k: print(f"  round {r + 1}/{args.rounds} {k}",
                                                          flush=True))
        print(f"timed in {time.perf_counter() - t0:.0f} s", flush=True)
        scored = _table_score(space, rows)

    peak, how = peak_gflops()
    ratio = ms["tvm"] / ms["ort"]
    gflops = achieved_gflops(rows, ms["tvm"])
    print(f"\n{'arch':58s} {'MMACs':>6} {'tvm':>7} {'ort':>7} {'torch':>7} {'tvm/ort':>7} "
          f"{'kernels':>8} {'GFLOP/s':>8}")
    for i, r in enumerate(rows):
        print(f"{r['arch']:58s} {r['macs'] / 1e6:6.0f} {ms['tvm'][i]:7.2f} {ms['ort'][i]:7.2f} "
              f"{ms['torch'][i]:7.2f} {ratio[i]:7.3f} "
              f"{r['tvm_kernels'][0]:>3}/{r['tvm_kernels'][1]:<4} {gflops[i]:8.1f}")
    kernels = sum(r["tvm_kernels"][1] for r in rows)
    tuned = sum(r["tvm_kernels"][0] for r in rows)
    figures = {
        "cpu": target.mcpu, "tuned_on": man.get("target", {}).get("mcpu"),
        "coverage": tuned / kernels if kernels else None,
        "tvm_over_ort_median": median(ratio), "tvm_over_ort_worst": float(ratio.max()),
        "torch_over_ort_median": median(ms["torch"] / ms["ort"]),
        "tvm_ms_median": median(ms["tvm"]), "ort_ms_median": median(ms["ort"]),
        "torch_ms_median": median(ms["torch"]),
        "achieved_gflops_median": median(gflops), "peak_gflops": peak,
        "peak_fraction_median": median(gflops) / peak, "peak_derivation": how,
        "tune_wall_s": man.get("wall_s"), "tune_trials": man.get("trials_total"),
        "tune_finished": man.get("finished"),
        "within10_raw": scored.get("within10_raw"),
        "within_budget_rate": scored.get("within_budget_rate"),
        "median_slack": scored.get("median_slack"),
        "within_budget_rate_independent": scored.get("within_budget_rate_independent"),
        "median_slack_independent": scored.get("median_slack_independent"),
        "not_measured": scored.get("why"),
        "compile_s": round(compile_s, 1),
        "benchmark_wall_s": round(time.perf_counter() - t_start, 1),
        "load_avg_1m_before": load_before, "load_avg_1m_at_end": os.getloadavg()[0],
    }
    print(f"\npeak fp32: {peak:.0f} GFLOP/s = {how}")
    if scored.get("why"):
        print(f"table, predictor and deploys not measured: {scored['why']}")
    print("  ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in figures.items() if k not in ("peak_derivation", "not_measured")))
    figures["subnets"] = [{"arch": r["arch"], "macs": r["macs"], "kernels": r["tvm_kernels"],
                           "tvm_ms": float(ms["tvm"][i]), "ort_ms": float(ms["ort"][i]),
                           "torch_ms": float(ms["torch"][i])} for i, r in enumerate(rows)]
    write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
