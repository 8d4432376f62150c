"""``hwnas predict``: the predicted latency of one arch on a target, with its uncertainty."""
from __future__ import annotations

import numpy as np

from hwnas.commands._common import resolve_arch
from hwnas.errors import TableError
from hwnas.predict import PREDICTORS

__all__ = ["register", "run"]


def register(sub) -> None:
    p = sub.add_parser("predict", help="predicted latency of an arch on a target, with uncertainty")
    p.add_argument("--target", required=True, help="target with a latency table (latency_tables/)")
    p.add_argument("--space", default="ofa-mbv3", help="search space of the table")
    p.add_argument("--arch", required=True, help="arch string or arch.json")
    p.add_argument("--predictor", default="auto",
                   help=f"auto (calibrated when fitted, else table) or one of: "
                        f"{', '.join(PREDICTORS.names())}")
    p.add_argument("--quantile", type=float, default=0.9,
                   help="upper quantile printed as the safety margin (default 0.9)")
    p.add_argument("--refit", action="store_true",
                   help="refit the calibrated predictor from the table's measured networks")
    p.set_defaults(func=run)


def _load(target: str, space_name: str, kind: str, refit: bool):
    from hwnas.predict.calibrated import calibrate_table, calibrated_path
    from hwnas.profile.table import table_path
    from hwnas.search.objectives import load_latency_predictor

    if kind == "fewshot":
        raise TableError("the fewshot predictor adapts from measured samples and source devices; "
                         "use it from Python (hwnas.predict.FewShotPredictor) or the benchmark")
    if kind == "calibrated" and (refit or not calibrated_path(table_path(target, space_name)).exists()):
        calibrate_table(table_path(target, space_name))
    return load_latency_predictor(target, space_name, kind)


def run(args) -> int:
    if not 0.5 <= args.quantile < 1:
        raise TableError(f"--quantile must be in [0.5, 1), got {args.quantile}")
    pred = _load(args.target, args.space, args.predictor, args.refit)
    arch_json, text = resolve_arch(args.arch)
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
    return 0 if np.isfinite(mean) else 1
