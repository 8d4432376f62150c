"""``hwnas predict``: the predicted latency of one arch on a target, with its uncertainty."""
from __future__ import annotations

import numpy as np

from hwnas.commands._common import resolve_arch, resolve_space, space_help
from hwnas.errors import TableError
from hwnas.predict import PREDICTORS
from hwnas.spaces import DEFAULT_SPACE

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
                        f"one of: {', '.join(PREDICTORS.names())}")
    p.add_argument("--quantile", type=float, default=0.9,
                   help="upper quantile printed as the safety margin (default 0.9)")
    p.add_argument("--allow-emulated", action="store_true",
                   help="accept latency tables measured on an emulated device (hwnas device "
                        "emulate); their timings are the emulator's, not the device's")
    p.add_argument("--refit", action="store_true",
                   help="refit the calibrated predictor from the table's measured networks")
    p.set_defaults(func=run)


def _load(target: str, space, kind: str, refit: bool, allow_emulated: bool = False):
    from hwnas.predict import calibrate_table, load_predictor
    from hwnas.profile.table import table_path

    if refit or kind == "calibrated":
        from hwnas.predict import calibrated_file, table_space
        from hwnas.profile.table import LatencyTable

        path = table_path(target, space if isinstance(space, str) else space.name)
        if path.exists():
            index, _ = table_space(LatencyTable.load(path), space)
            if refit or not calibrated_file(path, index).exists():
                calibrate_table(path, None if isinstance(space, str) else space)
    return load_predictor(target, space, kind, allow_emulated=allow_emulated)


def run(args) -> int:
    if not 0.5 <= args.quantile < 1:
        raise TableError(f"--quantile must be in [0.5, 1), got {args.quantile}")
    arch_json, text = resolve_arch(args.arch)
    space = args.space or DEFAULT_SPACE
    if args.checkpoint or (arch_json and isinstance(arch_json.get("space_config"), dict)):
        space = resolve_space(args, arch_json)
    pred = _load(args.target, space, args.predictor, args.refit, args.allow_emulated)
    space = pred.space
    arch = space.from_json(arch_json) if arch_json else space.parse(text)
    g = space.to_genomes([arch])
    mean = float(pred.predict_genomes(g)[0])
    upper = float(pred.predict_upper_genomes(g, args.quantile)[0])
    sd = getattr(pred, "predict_std_log", None)
    spread = f", ±{100 * float(sd(g)[0]):.1f}% (1σ)" if sd is not None else ""
    q = int(round(100 * args.quantile))
    print(f"{arch}  {mean:.3f} ms  (p{q} {upper:.3f} ms{spread})  "
          f"[{pred.name} predictor, target {args.target}]")
    print(f"predictor  {pred.selection}")
    return 0 if np.isfinite(mean) else 1
