"""``hwnas adapt``: a new device from a few measured networks (a few-shot latency predictor)."""
from __future__ import annotations

from pathlib import Path

from hwnas.commands._common import (add_device_args, add_space_args, default_to_searched,
                                   resolve_space)

__all__ = ["register", "run"]


def register(sub) -> None:
    p = sub.add_parser("adapt", help="fit a few-shot latency predictor for a new device from a "
                                     "few measured networks (latency_tables/<target>/"
                                     "<space>.fewshot.json)",
                       description="Measure K networks spread over the space's costs on the "
                       "device (or read your own measurements), fit the few-shot predictor "
                       "from them and other devices, and save it with a leave-one-out error "
                       "estimate. search, deploy and predict then use it for the target.")
    p.add_argument("--target", required=True, help="device to adapt to (with --measure: a "
                                                   "target of hwnas targets)")
    add_space_args(p)
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--measure", type=int, metavar="K",
                     help="measure K informative networks on the device (at least 3)")
    how.add_argument("--from-csv", type=Path, metavar="FILE",
                     help="your own measurements: rows arch,latency_ms[,batch] (a header row "
                          "names the columns in any order); an arch given twice is averaged "
                          "only when its latencies agree within 10%%")
    p.add_argument("--sources", help="comma-separated source devices (default: the published "
                   "devices where the space has them, else every other target with a table for "
                   "the space)")
    add_device_args(p)
    p.add_argument("--rounds", type=int, default=3, metavar="R",
                   help="interleaved timing rounds per network (default %(default)s)")
    p.add_argument("--workers", type=int, default=2, help="compile processes (0: in-process)")
    p.add_argument("--tuning-dir", default="auto",
                   help="MetaSchedule database to compile with (default: the target's own, as "
                        "deploy uses)")
    p.add_argument("--untuned", action="store_true", help="compile without a tuning database")
    p.add_argument("--seed", type=int, default=0, help="seed of the pool the networks come from")
    p.add_argument("--out", type=Path, help="predictor file (default latency_tables/<target>/"
                                            "<space>.fewshot.json)")
    p.set_defaults(func=run)


def run(args) -> int:
    import hwnas
    from hwnas.predict.adapt import DUPLICATE_TOLERANCE

    sources = None if args.sources is None else [s.strip() for s in args.sources.split(",")
                                                 if s.strip()]
    default_to_searched(args)
    rep = hwnas.adapt(args.target, resolve_space(args), measure=args.measure,
                      csv=args.from_csv, sources=sources, rpc=args.rpc, tracker=args.tracker,
                      key=args.key, out=args.out, rounds=args.rounds, workers=args.workers,
                      seed=args.seed, tuning_dir=None if args.untuned else args.tuning_dir)
    loo = rep["leave_one_out"]
    print(f"predictor  {rep['path']}")
    print(f"samples    {rep['k']} networks, {rep['origin']}"
          + (f" (batch {rep['batch']})" if rep["batch"] else ""))
    if rep["duplicates"]:
        rows = ", ".join(f"{a} ×{n}" for a, n in rep["duplicates"].items())
        print(f"repeats    {len(rep['duplicates'])} archs given more than once, averaged (their "
              f"rows agree within {DUPLICATE_TOLERANCE:.0%}): {rows}")
    used = ", ".join(rep["sources"]) or "none (cost features only)"
    print(f"sources    {used}")
    for name, why in rep["skipped_sources"].items():
        print(f"           {name} not used: {why}")
    weights = ", ".join(f"{k} {v:.2f}" for k, v in rep["model"]["family_weights"].items())
    print(f"model      {weights} (posterior weight of each family)")
    print(f"error      leave-one-out over {loo['n']} networks: mean {100 * loo['mean_abs_rel_error']:.1f}%, "
          f"median {100 * loo['median_abs_rel_error']:.1f}%, {100 * loo['within10']:.0f}% within ±10%")
    print(f"time       {rep['wall_s']:.1f} s")
    if rep["poor"]:
        print(f"warning: the leave-one-out error is poor (mean above {100 * rep['poor_threshold']:.0f}%): "
              "measure more networks (a larger --measure), or add source devices")
    return 0
