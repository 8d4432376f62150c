"""``hwnas import-accuracy``: turn published accuracy data into an hwnas accuracy source."""
from __future__ import annotations

from pathlib import Path

from hwnas.commands._common import space_help

__all__ = ["register", "run"]


def register(sub) -> None:
    from hwnas.predict.accuracy_import import ACCURACY_IMPORTERS

    p = sub.add_parser("import-accuracy",
                       help="import published accuracy data as an accuracy source "
                            f"({', '.join(ACCURACY_IMPORTERS.names())})",
                       description="Read published accuracy data once and write it in hwnas's "
                                   "own format under accuracy/<space>/, where searches find it.")
    p.add_argument("--source", required=True, type=Path,
                   help="OFA's accuracy predictor .pth")
    p.add_argument("--format", choices=ACCURACY_IMPORTERS.names(),
                   help="default: detected from the file suffix")
    p.add_argument("--space", help=space_help("space configuration the data is for "
                                              "(default: the format's)"))
    p.add_argument("--out", type=Path, help="default accuracy/<space>/<source>.<ext>")
    p.add_argument("--force", action="store_true", help="replace an existing import")
    p.set_defaults(func=run)


def run(args) -> int:
    from hwnas.predict.accuracy_import import import_accuracy

    done = import_accuracy(args.source, args.format, args.space, args.out, args.force)
    print(f"accuracy   {done.path}")
    print(f"source     {done.source} (format {done.format}) for {done.space}")
    for key, value in done.summary.items():
        print(f"{key:<10} {value}")
    return 0
