"""``hwnas search``: the best predicted architecture under hard latency (and size) budgets."""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from hwnas.commands._common import add_force_arg
from hwnas.errors import HwnasError
from hwnas.commands._common import space_help

log = logging.getLogger("hwnas.search")


def register(sub) -> None:
    from hwnas.predict.accuracy_sources import ACCURACY_SOURCES
    from hwnas.search import STRATEGIES, strategy_options

    accuracy_sources = ACCURACY_SOURCES.names()

    opts = "; ".join(f"{n}: " + ", ".join(f"{k}={v}" for k, v in strategy_options(n).items())
                     for n in STRATEGIES.names())
    p = sub.add_parser("search", help="search an architecture under latency budgets",
                       description="Search the space for the best predicted architecture that "
                       "meets every budget. An impossible budget is refused at once.",
                       epilog=f"strategy options (--option KEY=VALUE): {opts}")
    p.add_argument("--target", help="target whose budget a bare --latency-ms number sets")
    p.add_argument("--space", help=space_help())
    p.add_argument("--latency-ms", required=True, metavar="SPEC",
                   help="budget: '25' (on --target) or 'x86-host=25,note10=40' (all at once)")
    p.add_argument("--strategy", default="evolution",
                   help=f"one of: {', '.join(STRATEGIES.names())}")
    p.add_argument("--max-params", type=float, help="most parameters (count)")
    p.add_argument("--max-mflops", type=float, help="most multiply-adds, in millions")
    p.add_argument("--max-act-kb", type=float, help="most peak activation memory (float32 KiB)")
    p.add_argument("--margin", type=float,
                   help="fixed safety margin as a fraction (default: the predictor's upper quantile)")
    p.add_argument("--quantile", type=float, default=0.9, help="upper quantile used as the margin")
    p.add_argument("--report-targets", default="", help="more targets to predict (no budget)")
    p.add_argument("--objective", default="auto", choices=["auto", "accuracy", "mflops"],
                   help="auto: the supernet's accuracy predictor when a checkpoint for the space "
                   "exists, else MACs as a proxy (said so in arch.json)")
    p.add_argument("--accuracy", metavar="SOURCE",
                   help="accuracy source of the accuracy objective, one of: "
                        f"{', '.join(accuracy_sources)} (default: the first that the space's "
                        "configuration accepts and that has data; arch.json names it and says "
                        "whether its figure is measured or predicted)")
    p.add_argument("--checkpoint", metavar="NAME|DIR|FILE",
                   help="supernet checkpoint: its space configuration is searched and its "
                        "accuracy predictor is the objective (default: the space's default "
                        "configuration, scored by the shipped checkpoint when it fits); a "
                        "Once-for-All .pth file gives the configuration and weights only, and "
                        "the accuracy comes from the configuration's other sources")
    p.add_argument("--predictor", default="auto",
                   choices=["auto", "fewshot", "table", "calibrated"],
                   help="latency predictor (auto: calibrated when fitted; else the table or "
                   "the few-shot predictor of hwnas adapt, whichever errs less on the device's "
                   "measured networks; the choice is printed)")
    p.add_argument("--option", "-O", action="append", default=[], metavar="KEY=VALUE",
                   help="strategy option, e.g. -O generations=200 (see below)")
    p.add_argument("--allow-emulated", action="store_true",
                   help="accept latency tables measured on an emulated device (hwnas device "
                        "emulate); their timings are the emulator's, not the device's")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="search_out", help="output folder")
    add_force_arg(p, "search result")
    p.set_defaults(func=run)


def _parse_options(strategy: str, items: list[str]) -> dict:
    from hwnas.search import STRATEGIES

    fields = {f.name: f for f in dataclasses.fields(STRATEGIES.get(strategy).Options)}
    out = {}
    for item in items:
        key, sep, val = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in fields:
            raise HwnasError(f"bad strategy option '{item}' for '{strategy}'; options: "
                             f"{', '.join(sorted(fields))}")
        default = fields[key].default
        try:
            if isinstance(default, bool):
                if val.lower() not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                    raise HwnasError(f"strategy option '{key}' is true or false, got '{val}'")
                out[key] = val.lower() in ("1", "true", "yes", "on")
            elif isinstance(default, (int, float)):
                out[key] = float(val)
                if isinstance(default, int):
                    if not out[key].is_integer():
                        raise HwnasError(f"strategy option '{key}' needs an integer, got '{val}'")
                    out[key] = int(out[key])
            else:
                out[key] = val
        except ValueError:
            raise HwnasError(f"strategy option '{key}' needs a number, got '{val}'") from None
    return out


def run(args) -> int:
    import hwnas
    from hwnas.predict.accuracy_sources import accuracy_text

    options = _parse_options(args.strategy, args.option)
    space = args.space
    if args.checkpoint:
        from hwnas.commands._common import resolve_space

        space = resolve_space(args)
    reports = [t.strip() for t in args.report_targets.split(",") if t.strip()]
    best = hwnas.search(args.target, args.latency_ms, space=space, checkpoint=args.checkpoint,
                        strategy=args.strategy, objective=args.objective,
                        predictor=args.predictor, margin=args.margin, quantile=args.quantile,
                        max_params=args.max_params, max_mflops=args.max_mflops,
                        max_act_kb=args.max_act_kb, report_targets=reports, seed=args.seed,
                        out=args.out, force=args.force, allow_emulated=args.allow_emulated,
                        accuracy=args.accuracy, **options)
    for t, why in best.get("latency_predictor_choice", {}).items():
        print(f"predictor  {t}: {why}")
    lat = ", ".join(f"{t} {v:.2f} ms" for t, v in best["predicted_latency_ms"].items())
    print(f"{best['arch']}  {best['objective']['name']} {best['objective']['value']:.4f}  {lat}  "
          f"({best['evaluations']} evaluations, {best['search_wall_s']:.2f} s) → "
          f"{Path(args.out)}/arch.json")
    print(f"accuracy   {accuracy_text(best.get('accuracy'))}")
    return 0
