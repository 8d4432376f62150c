"""``hwnas tune``: tune every kernel of a space once for a device, so that every subnet ships
tuned code with no tuning at deploy time."""
from __future__ import annotations

import math
import sys
import time

from hwnas import api
from hwnas.api.measuring import _op_costs  # noqa: F401  (the weights of each kernel's trials)
from hwnas.commands._common import add_space_args, default_to_searched, resolve_space
from hwnas.errors import HwnasError

__all__ = ["register", "run"]


def register(sub) -> None:
    p = sub.add_parser("tune", help="tune every kernel a space can produce into the target's "
                                    "tuning database (latency_tables/<target>/tuning/)",
                       description="Without space options the space's shipped checkpoint's "
                                   "configuration (the one deploy searches) is tuned.")
    p.add_argument("--target", required=True, help="target name (hwnas targets)")
    add_space_args(p)
    p.add_argument("--minutes", type=float, help="stop cleanly after this many minutes "
                                                 "(default: when every kernel is tuned)")
    p.add_argument("--resume", action="store_true",
                   help="continue the tuning run in the work folder")
    p.add_argument("--work-dir", help="where every trial is kept (default: "
                                      "~/.cache/hwnas/tuning/<target>, or $HWNAS_CACHE; "
                                      "<target>-<configuration> for a configuration other "
                                      "than the default)")
    p.add_argument("--out", help="database folder to publish to (default: "
                                 "latency_tables/<target>/tuning/, or tuning-<cpu>/ beside "
                                 "it when that holds another CPU's database; another "
                                 "configuration than the default goes in a folder of its "
                                 "name inside it)")
    p.add_argument("--snapshots", default="", metavar="MIN,MIN",
                   help="copy the database at these minutes of tuning (to chart speed "
                        "against tuning time)")
    p.add_argument("--transfer", choices=("auto", "none"), default="auto",
                   help="auto: on a CPU model with no database of its own, first time every "
                        "other CPU model's schedules of each kernel (and its default one) "
                        "here and keep the fastest, then spend --minutes on the kernels that "
                        "carry the most time; none: tune from scratch")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def _minutes(text: str) -> list[float]:
    try:
        vals = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise HwnasError(f"--snapshots must be comma-separated minutes, got '{text}'") from None
    if any(not (math.isfinite(v) and v > 0) for v in vals):
        raise HwnasError(f"--snapshots must be positive minutes, got '{text}'")
    return vals


class _Progress:
    """One line per step on stderr: what is done, the time so far and the ETA."""

    def __init__(self) -> None:
        self.last = 0.0

    def __call__(self, info: dict) -> None:
        now = time.monotonic()
        if info["phase"] == "transfer":
            print(f"transfer   {info['done']}/{info['total']} kernels timed with the other "
                  f"CPUs' schedules ({info['elapsed_s'] / 60:.1f} min)", file=sys.stderr,
                  flush=True)
            return
        if info["phase"] == "kernels":
            if info["done"] == info["total"] or now - self.last > 10:
                print(f"kernels    {info['done']}/{info['total']} operators enumerated "
                      f"({info['elapsed_s']:.0f} s)", file=sys.stderr, flush=True)
                self.last = now
            return
        pct = 100 * info["done"] / max(info["total"], 1)
        print(f"tuning     {info['done']}/{info['total']} trials ({pct:.0f}%), "
              f"{info['elapsed_s'] / 60:.1f} min, ETA {info['eta_s'] / 60:.0f} min",
              file=sys.stderr, flush=True)


def run(args) -> int:
    if args.minutes is not None and not (math.isfinite(args.minutes) and args.minutes > 0):
        raise HwnasError(f"--minutes must be a positive number, got {args.minutes}")
    snapshots = _minutes(args.snapshots)
    target = api.check_tunable(args.target)
    default_to_searched(args)
    rep = api.tune(target, resolve_space(args), minutes=args.minutes, resume=args.resume,
                   work_dir=args.work_dir, out=args.out, snapshot_minutes=snapshots,
                   transfer=args.transfer, seed=args.seed, on_progress=_Progress())
    state = "complete" if rep.finished else f"stopped ({rep.stopped or 'not finished'})"
    print(f"kernels    {rep.covered}/{rep.kernels} tuned; tuning {state}")
    print(f"trials     {rep.trials} this run, {rep.trials_total} in all")
    print(f"time       {rep.wall_s / 60:.1f} min this run, {rep.wall_total_s / 60:.1f} min in all")
    if rep.transfer:
        kept = ", ".join(f"{n} {src}" for src, n in sorted(rep.transfer["kept"].items()))
        print(f"transfer   from {', '.join(rep.transfer['from'])} in "
              f"{rep.transfer['wall_s'] / 60:.1f} min; fastest: {kept}")
    print(f"database   {rep.database} (every trial: {rep.work_dir})")
    if not rep.finished:
        print("resume     hwnas tune ... --resume continues where this run stopped")
    return 0
