"""What a full ofa-mbv3 latency table costs on this machine.

Profiles every operator of the space at the given resolutions (default {128,160,192,224}) into a
fresh table, then a few whole networks, and prints: the number of operator configurations, the
wall time, the time per operator split into compile and measure, the distribution of the
coefficient of variation, and how well the table sum predicts the networks measured in this run.

    python benchmarks/profile_cost.py [--networks 10] [--out TABLE] [--json PATH]

The machine's load average is printed too: timings taken beside other jobs are noisier.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--target", default="x86-host")
    p.add_argument("--resolutions", default="128,160,192,224")
    p.add_argument("--networks", type=int, default=10)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--min-repeat-ms", type=float, default=1.0)
    p.add_argument("--out", type=Path, help="table file (default: a temporary file)")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--json", type=Path, help="write the figures as one flat JSON object")
    return p.parse_args(argv)


def run(args, out: Path) -> dict:
    from hwnas.profile import ProfileOptions, profile
    from hwnas.runtime import Protocol, connect
    from hwnas.spaces import get_space
    from hwnas.targets import load_target

    target = load_target(args.target)
    space = get_space("ofa-mbv3", resolutions=[int(r) for r in args.resolutions.split(",")])
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    with connect(target) as rt:
        rep = profile(space, target, rt, out, ProfileOptions(
            networks=args.networks, workers=args.workers, batch=args.batch, resume=args.resume,
            protocol=Protocol(min_repeat_ms=args.min_repeat_ms)))
        device = rt.describe()
    total = time.perf_counter() - t0
    nets = rep.new_networks
    err = np.array([abs(r["table_ms"] - r["median_ms"]) / r["median_ms"] for r in nets
                    if "table_ms" in r])
    cv = np.asarray(rep.cvs) if rep.cvs else np.zeros(1)
    n = max(rep.n_new, 1)
    return {
        "n_ops": rep.n_ops, "n_measured": rep.n_new, "wall_s": rep.ops.wall_s,
        "compile_s": rep.ops.compile_s, "measure_s": rep.ops.measure_s,
        "compile_per_op_s": rep.ops.compile_s / n, "measure_per_op_s": rep.ops.measure_s / n,
        "worker_compile_per_op_s": rep.ops.task_s / n,
        "cv_median": float(np.median(cv)), "cv_p90": float(np.percentile(cv, 90)),
        "cv_max": float(cv.max()), "cv_over_5pct": float(np.mean(cv > 0.05)),
        "n_networks": len(nets), "networks_wall_s": rep.networks.wall_s,
        "table_sum_within10": float(np.mean(err <= 0.10)) if err.size else None,
        "table_sum_mape_pct": float(100 * err.mean()) if err.size else None,
        "total_wall_s": total, "loadavg_start": load0, "loadavg_end": os.getloadavg()[0],
        "workers": args.workers, "batch": args.batch, "min_repeat_ms": args.min_repeat_ms, "device": device, "table": str(out),
    }


def main(argv=None) -> int:
    from hwnas._log import setup_logging

    setup_logging()
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        res = run(args, args.out or Path(tmp) / "ofa-mbv3.json")
    print(f"device                 {res['device']}")
    print(f"load average           {res['loadavg_start']:.1f} at start, {res['loadavg_end']:.1f} at end (2 cores)")
    print(f"operator configs       {res['n_ops']} ({res['n_measured']} measured in this run)")
    print(f"operator table wall    {res['wall_s']:.1f} s (goal ≤ 600 s)")
    print(f"  compile              {res['compile_s']:.1f} s wall, {res['compile_per_op_s']:.3f} s/op "
          f"({res['worker_compile_per_op_s']:.3f} s/op of worker time, {res['workers']} workers, "
          f"{res['batch']} ops per module)")
    print(f"  measure              {res['measure_s']:.1f} s, {res['measure_per_op_s']:.3f} s/op")
    print(f"cv                     median {res['cv_median']:.3f}, p90 {res['cv_p90']:.3f}, "
          f"max {res['cv_max']:.3f}, over 5% after re-measuring: {res['cv_over_5pct']:.0%}")
    if res["n_networks"]:
        print(f"networks               {res['n_networks']} in {res['networks_wall_s']:.1f} s; table sum "
              f"within ±10%: {res['table_sum_within10']:.0%}, MAPE {res['table_sum_mape_pct']:.1f}%")
    print(f"total wall             {res['total_wall_s']:.1f} s")
    if args.json:
        args.json.write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
