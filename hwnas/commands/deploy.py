"""``hwnas deploy``: budget in, measured and compiled bundle out (closed loop)."""
from __future__ import annotations

from pathlib import Path

from hwnas.commands._common import add_device_args, connect_runtime
from hwnas.errors import HwnasError
from hwnas.search.objectives import DEFAULT_CHECKPOINT
from hwnas.targets import load_target


def register(sub) -> None:
    p = sub.add_parser("deploy", help="profile (or reuse), search, export, compile and measure "
                                      "until the measured latency meets the budget")
    p.add_argument("--target", required=True, help="target name (hwnas targets)")
    p.add_argument("--latency-ms", required=True, type=float, help="latency budget in ms")
    p.add_argument("--out", type=Path, default=Path("bundle"), help="bundle directory")
    p.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT,
                   help="supernet checkpoint (weights, space, accuracy predictor)")
    p.add_argument("--max-rounds", type=int, default=4, help="search/measure rounds at most")
    p.add_argument("--slack", type=float, default=0.10,
                   help="stop when measured latency is within this fraction under the budget")
    p.add_argument("--strategy", default="evolution", help="search strategy")
    p.add_argument("--margin", type=float, help="fixed safety margin (default: predictor p90)")
    p.add_argument("--tune", type=int, metavar="TRIALS", default=0,
                   help="MetaSchedule trials for each round's subnet (kept in a shared database "
                        "so repeated deploys reuse them); 0 = untuned")
    p.add_argument("--tuning-dir", help="tuning database directory (default: per target cache)")
    p.add_argument("--seed", type=int, default=0)
    add_device_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from hwnas.deploy.loop import DeployConfig, deploy

    if not args.latency_ms > 0:
        raise HwnasError(f"--latency-ms must be positive, got {args.latency_ms}")
    target = load_target(args.target)
    if target.is_cross and not (args.rpc or args.tracker or target.device.startswith(("rpc://", "tracker://"))):
        raise HwnasError(f"target '{target.name}' runs on a remote device: give --rpc HOST:PORT "
                         f"or --tracker HOST:PORT --key KEY so the bundle can be measured")
    runtime = connect_runtime(target, args)
    tuning_dir = args.tuning_dir
    if args.tune and not tuning_dir:
        from hwnas.export.tune import default_work_dir

        tuning_dir = str(default_work_dir(target))
    cfg = DeployConfig(target=target, budget_ms=args.latency_ms, out=args.out,
                       checkpoint=args.checkpoint, runtime=runtime, max_rounds=args.max_rounds,
                       slack=args.slack, strategy=args.strategy, margin=args.margin,
                       seed=args.seed, tuning_dir=tuning_dir, tune_trials=args.tune)
    m = deploy(cfg)
    lat = m["latency"]
    print(f"bundle {args.out}: {m['arch']} on {target.name}: measured {lat['measured']['median_ms']:.3f} ms "
          f"(p90 {lat['measured']['p90_ms']:.3f}) vs budget {args.latency_ms:g} ms, "
          f"predicted {lat['predicted_ms']:.3f} ms, accuracy {m['weights']['accuracy']:.4f}, "
          f"{m['deploy']['rounds']} round(s)")
    return 0
