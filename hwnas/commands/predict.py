"""``hwnas predict``: the predicted latency of one arch on a target, with its uncertainty."""
from __future__ import annotations

from hwnas import api
from hwnas.commands._common import resolve_arch, resolve_space, space_help
from hwnas.errors import TableError

__all__ = ["register", "run"]


def register(sub) -> None:
    p = sub.add_parser("predict", help="predicted latency of an arch on a target, with uncertainty")
    p.add_argument("--target", required=True, help="target with a latency table (latency_tables/)")
    p.add_argument("--space", help=space_help("search space of the table"))
    p.add_argument("--checkpoint", metavar="NAME|DIR|FILE",
                   help="predict in this supernet checkpoint's space configuration (a folder, "
                        "a shipped name or a Once-for-All .pth file)")
    p.add_argument("--arch", required=True, help="arch string or arch.json")
    p.add_argument("--predictor", default="auto",
                   help=f"auto (calibrated when fitted; else the table or the few-shot "
                        f"predictor, whichever errs less on the device's measured networks) or "
                        f"one of: {', '.join(api.list_predictors())}")
    p.add_argument("--quantile", type=float, default=0.9,
                   help="upper quantile printed as the safety margin (default 0.9)")
    p.add_argument("--allow-emulated", action="store_true",
                   help="accept latency tables measured on an emulated device (hwnas device "
                        "emulate); their timings are the emulator's, not the device's")
    p.add_argument("--refit", action="store_true",
                   help="refit the calibrated predictor from the table's measured networks")
    p.set_defaults(func=run)


def run(args) -> int:
    if not 0.5 <= args.quantile < 1:
        raise TableError(f"--quantile must be in [0.5, 1), got {args.quantile}")
    arch_json, text = resolve_arch(args.arch)
    space = args.space
    if args.checkpoint or (arch_json and isinstance(arch_json.get("space_config"), dict)):
        space = resolve_space(args, arch_json)
    p = api.predict(args.target, arch_json or text, space, predictor=args.predictor,
                    quantile=args.quantile, refit=args.refit, allow_emulated=args.allow_emulated)
    spread = f", ±{100 * p['std_log']:.1f}% (1σ)" if p["std_log"] is not None else ""
    q = int(round(100 * args.quantile))
    print(f"{p['arch']}  {p['latency_ms']:.3f} ms  (p{q} {p['upper_ms']:.3f} ms{spread})  "
          f"[{p['predictor']} predictor, target {args.target}]")
    print(f"predictor  {p['selection']}")
    return 0 if p["finite"] else 1
