"""``hwnas profile --tracker``: one table per tracker key, each measured by every free device
registered under that key.

A key is a device kind (``rpi4``, ``jetson-orin``); each kind needs its own TVM target and gets
its own table. The target of a key is, in order: ``--key KEY=TARGET``; ``--target``; the target
named like the key (``targets/KEY.toml``). Keys are profiled one after another; a key whose
devices are all lost does not stop the others, and the command then fails with one line naming
the keys that did not finish (their tables keep what was measured; ``--resume`` continues).
"""
from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from hwnas.api import list_targets
from hwnas.errors import HwnasError, TargetError

__all__ = ["KeyPlan", "plan_keys", "is_farm_run", "run_keys"]

log = logging.getLogger("hwnas.farm")


@dataclass(frozen=True)
class KeyPlan:
    key: str
    target: str                 # target name or .toml path
    out: Path | None            # None: the profile verb's default table path


def _split(value: str) -> tuple[str, str | None]:
    key, sep, target = value.partition("=")
    if not key or (sep and not target):
        raise TargetError(f"--key must be KEY or KEY=TARGET, got '{value}'")
    return key, target or None


def plan_keys(keys: list[str], target: str | None, out: Path | None) -> list[KeyPlan]:
    """Which target and table each key profiles into; refuses two keys writing one table."""
    plans = []
    for key, explicit in map(_split, keys):
        name = explicit or target or (key if key in list_targets() else None)
        if name is None:
            raise TargetError(f"no target for key '{key}': give --target, --key {key}=TARGET, "
                              f"or add targets/{key}.toml")
        path = Path(str(out).replace("{key}", key)) if out else None
        plans.append(KeyPlan(key, name, path))
    if len({p.key for p in plans}) < len(plans):
        raise TargetError("each --key may be given once")
    if len(plans) > 1:
        if out and "{key}" not in str(out):
            raise TargetError("with several --key, --out must contain '{key}' "
                              "(one table per key), e.g. tables/{key}.json")
        if not out and len({p.target for p in plans}) < len(plans):
            same = [p.key for p in plans if [q.target for q in plans].count(p.target) > 1]
            raise TargetError(f"keys {', '.join(same)} would profile the same target into the "
                              "same table; give --out with '{key}'")
    return plans


def is_farm_run(args: argparse.Namespace) -> bool:
    """A tracker run that still has to be split into one run per key."""
    return bool(args.tracker) and not isinstance(args.key, str)


def run_keys(args: argparse.Namespace, run_one: Callable[[argparse.Namespace], int]) -> int:
    """Profile each key's devices into its own table with ``run_one`` (the verb's own run)."""
    if args.rpc:
        raise TargetError("give either --rpc or --tracker, not both")
    if not args.key:
        raise TargetError("--tracker needs --key (the device key registered at the tracker)")
    if args.runtime:
        from hwnas.api.measuring import _check_tracker

        _check_tracker(runtime=args.runtime)
    plans = plan_keys(args.key, args.target, args.out)
    failed: list[tuple[str, HwnasError]] = []
    code = 0
    for plan in plans:
        one = argparse.Namespace(**{**vars(args), "key": plan.key, "target": plan.target,
                                    "out": plan.out})
        if len(plans) > 1:
            print(f"key        {plan.key} (target {plan.target})")
        try:
            code = max(code, run_one(one))
        except HwnasError as exc:
            if len(plans) == 1:
                raise
            log.error("hwnas: error: key '%s': %s", plan.key, exc)
            failed.append((plan.key, exc))
    if failed:
        key, exc = failed[0]
        raise type(exc)(f"{len(failed)} of {len(plans)} keys did not finish "
                        f"({', '.join(k for k, _ in failed)}); key '{key}': {exc}")
    return code
