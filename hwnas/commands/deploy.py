"""``hwnas deploy``: budget in, measured and compiled bundle out (closed loop)."""
from __future__ import annotations

from pathlib import Path

from hwnas.commands._common import add_device_args, add_force_arg
from hwnas.spaces import default_checkpoint


def register(sub) -> None:
    p = sub.add_parser("deploy", help="profile (or reuse), search, export, compile and measure "
                                      "until the measured latency meets the budget")
    p.add_argument("--target", required=True, help="target name (hwnas targets)")
    p.add_argument("--latency-ms", required=True, type=float, help="latency budget in ms")
    p.add_argument("--out", type=Path, default=Path("bundle"), help="bundle directory")
    p.add_argument("--checkpoint", default=None, metavar="NAME|DIR|FILE",
                   help="supernet checkpoint: weights, space and accuracy predictor "
                        f"(default: {default_checkpoint()}, the default space's); a "
                        "Once-for-All .pth file gives weights and space")
    p.add_argument("--space", default=None,
                   help="deploy a space configuration without a checkpoint (such as "
                        "ofa-mbv3-imagenet): random weights, said so in the manifest; its "
                        "imported accuracy sources score the search")
    p.add_argument("--max-rounds", type=int, default=4, help="search/measure rounds at most")
    p.add_argument("--slack", type=float, default=0.10,
                   help="stop when measured latency is within this fraction under the budget")
    p.add_argument("--agree", type=float, default=0.10,
                   help="from the second round, also stop when a measured latency within "
                        "budget is within this fraction of its prediction (0: only --slack "
                        "stops early)")
    p.add_argument("--contended-margin", type=float, default=None, metavar="FRACTION",
                   help="judge a bundle timed while other processes held a core this much "
                        "slower than it read (default: the error measured for such timings)")
    p.add_argument("--strategy", default="evolution", help="search strategy")
    p.add_argument("--margin", type=float, help="fixed safety margin (default: predictor p90)")
    p.add_argument("--tune", type=int, metavar="TRIALS", default=0,
                   help="top the target's tuning database up with TRIALS MetaSchedule trials "
                        "per kernel of each round's subnet (default 0: use it as it is)")
    p.add_argument("--tuning-dir", default="auto",
                   help="tuning database (default: the target's own, "
                        "latency_tables/<target>/tuning/, when it has one)")
    p.add_argument("--untuned", action="store_true",
                   help="compile without a tuning database (its table must be untuned too)")
    p.add_argument("--predictor", default="auto",
                   choices=["auto", "fewshot", "table", "calibrated"],
                   help="latency predictor (auto: the best available for the target, printed; "
                        "fewshot: the one hwnas adapt fitted, with no operator table)")
    p.add_argument("--profile-networks", type=int, default=20, metavar="N",
                   help="whole networks measured when the target's table must be profiled "
                        "first (default %(default)s)")
    p.add_argument("--allow-emulated", action="store_true",
                   help="accept an emulated device (hwnas device emulate) and tables measured "
                        "on one; the report says the latencies are the emulator's")
    p.add_argument("--seed", type=int, default=0)
    add_device_args(p)
    add_force_arg(p, "bundle")
    p.set_defaults(func=run)


def run(args) -> int:
    import hwnas

    tuning_dir = None if args.untuned else args.tuning_dir
    m = hwnas.deploy(args.target, args.latency_ms, args.out, checkpoint=args.checkpoint,
                     space=args.space,
                     rpc=args.rpc, tracker=args.tracker, key=args.key,
                     max_rounds=args.max_rounds, slack=args.slack, agree=args.agree,
                     strategy=args.strategy,
                     margin=args.margin, tune=args.tune, tuning_dir=tuning_dir, seed=args.seed,
                     force=args.force, predictor=args.predictor,
                     profile_networks=args.profile_networks, allow_emulated=args.allow_emulated,
                     contended_margin=args.contended_margin)
    lat = m["latency"]
    tuning = m.get("tuning", {})
    pred = m["deploy"].get("predictor") or {}
    if pred:
        fed = pred.get("feedback", {})
        print(f"predictor  {pred['selection']}; {fed.get('measurements_fed_back', 0)} "
              f"measurement(s) fed back " + ("as samples" if fed.get("as_samples")
                                              else "as a ratio correction"))
    acc = m["weights"].get("accuracy")
    print(f"bundle {args.out}: {m['arch']} on {m['target']['name']}: measured "
          f"{lat['measured']['median_ms']:.3f} ms (p90 {lat['measured']['p90_ms']:.3f}) vs budget "
          f"{args.latency_ms:g} ms, predicted {lat['predicted_ms']:.3f} ms, accuracy "
          f"{'not measured' if acc is None else f'{acc:.4f}'}, "
          f"{tuning.get('tuned', 0)}/{tuning.get('kernels', 0)} "
          f"kernels tuned, {m['deploy']['rounds']} round(s)")
    if lat["measured"].get("emulated"):
        print(f"emulated: measured on {lat['measured']['emulator']}, not on a "
              f"{m['target']['name']}; report.md says so")
    return 0
