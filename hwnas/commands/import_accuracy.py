"""``hwnas import-accuracy``: turn published accuracy data into an hwnas accuracy source."""
from __future__ import annotations

from pathlib import Path

from hwnas import api
from hwnas.commands._common import as_flags

__all__ = ["register", "run"]


def register(sub) -> None:
    from hwnas.predict.accuracy_import import ACCURACY_IMPORTERS
    from hwnas.predict.measured_csv import DEFAULT_TOLERANCE

    p = sub.add_parser("import-accuracy",
                       help="import published accuracy data as an accuracy source "
                            f"({', '.join(ACCURACY_IMPORTERS.names())})",
                       description="Read published accuracy data once and write it in hwnas's "
                                   "own format under accuracy/<space>/, where searches find it.")
    p.add_argument("--source", required=True, type=Path,
                   help="OFA's accuracy predictor .pth, or a CSV of arch -> top-1 (or a "
                        "folder of them, such as DyNAS-T's dynast_top1/)")
    p.add_argument("--format", choices=ACCURACY_IMPORTERS.names(),
                   help="default: detected from the file suffix")
    defaults = ", ".join(f"{ACCURACY_IMPORTERS.get(n).default_space()} for {n}"
                         for n in ACCURACY_IMPORTERS.names())
    p.add_argument("--space", help=f"space configuration the data is for (default: {defaults}); "
                                   f"one of: {', '.join(api.list_spaces(configurations=True))}")
    p.add_argument("--out", type=Path, help="default accuracy/<space>/<source>.<ext>")
    p.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE, metavar="POINTS",
                   help="measured-csv: repeats of one subnet further apart than this (top-1 "
                        f"points) are refused, closer ones averaged (default {DEFAULT_TOLERANCE})")
    p.add_argument("--force", action="store_true", help="replace an existing import")
    p.set_defaults(func=run)


def run(args) -> int:
    with as_flags({"force=True": "--force"}):
        done = api.import_accuracy(args.source, args.format, args.space, args.out, args.force,
                                   tolerance=args.tolerance)
    print(f"accuracy   {done.path}")
    print(f"source     {done.source} (format {done.format}) for {done.space}")
    for key, value in done.summary.items():
        shown = f"{value:.4g}" if isinstance(value, float) else value
        print(f"{key.replace('_', ' '):<10} {shown}")
    return 0
