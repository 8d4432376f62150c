"""``hwnas import-table``: turn a published lookup table into an hwnas latency table."""
from __future__ import annotations

from pathlib import Path

from hwnas import api
from hwnas.commands._common import as_flags

__all__ = ["register", "run"]


def register(sub) -> None:
    from hwnas.profile.importers import IMPORTERS

    p = sub.add_parser("import-table", help="convert a published latency lookup table "
                                            "(OFA Note10, ProxylessNAS mobile)")
    p.add_argument("--source", required=True,
                   help="a folder of <r>_lookup_table.yaml files or one YAML table")
    p.add_argument("--target", required=True, help="target name to file the table under")
    p.add_argument("--space", help="search space (default: the format's)")
    p.add_argument("--format", choices=IMPORTERS.names(), help="default: detected")
    p.add_argument("--width-mult", type=float, help="override the space's width multiplier")
    p.add_argument("--out", type=Path, help="default latency_tables/<target>/<space>.json in "
                                            "the user data folder ($HWNAS_DATA, else "
                                            "~/.local/share/hwnas), never the shipped data")
    p.add_argument("--force", action="store_true",
                   help="replace an existing latency table (a file that is no hwnas table is "
                        "never replaced)")
    p.set_defaults(func=run)


def run(args) -> int:
    with as_flags({"force=True": "--force"}):
        out, table = api.import_table(args.source, args.target, args.space, args.format,
                                      width_mult=args.width_mult, out=args.out, force=args.force)
    cov = table.meta.get("coverage", {})
    print(f"table      {out}")
    print(f"source     {table.meta['imported']['origin']} ({len(table.meta['imported']['files'])} files)")
    print(f"entries    {len(table)}")
    if cov:
        print(f"coverage   {cov['n_measured']}/{cov['n_ops']} operators of "
              f"{', '.join(str(c['config']) for c in cov['per_space'])}")
    return 0
