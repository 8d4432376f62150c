"""``hwnas targets``: list the shipped device targets."""
from __future__ import annotations

import sys

from hwnas import api
from hwnas.errors import HwnasError


def register(sub) -> None:
    p = sub.add_parser("targets", help="list device targets (targets/*.toml)")
    p.set_defaults(func=run)


def run(args) -> int:
    """Every target that loads, one line each; a broken file is one warning line on stderr and
    hides no other target."""
    for name, t in api.load_targets().items():
        if isinstance(t, HwnasError):
            print(f"hwnas: warning: skipped target '{name}': {t}", file=sys.stderr)
            continue
        kind = t.tvm_target.get("kind")
        arch = t.tvm_target.get("arch") or t.tvm_target.get("mcpu", "")
        arch = "this CPU" if arch == "native" else arch
        print(f"{name:<14} {kind:<5} {arch:<12} {t.device:<6} {t.description}")
    return 0
