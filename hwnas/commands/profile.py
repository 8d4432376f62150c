"""``hwnas profile``: measure a device's operator latency table through TVM (or onnxruntime)."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from hwnas.commands._common import add_device_args, add_space_args, resolve_space
from hwnas._checks import check_int
from hwnas.errors import TargetError
from hwnas.runtime import backend_of, runtime_names
from hwnas.runtime.protocol import DEFAULT_PROTOCOL, Protocol
from hwnas.targets import load_target

__all__ = ["register", "run", "default_table_path"]


def register(sub) -> None:
    p = sub.add_parser("profile", help="measure every operator of a space on a device "
                                       "(latency_tables/<target>/<space>.json)")
    p.add_argument("--target", help="targets/<name>.toml (with --tracker, a --key may name "
                                    "it instead)")
    add_space_args(p)
    add_device_args(p, many_keys=True)
    p.add_argument("--parallel", type=int, default=0, metavar="N",
                   help="with --tracker: measure on at most N devices at once (default: every "
                        "free device under the key)")
    p.add_argument("--runtime", choices=runtime_names(),
                   help="measure through this runtime (default: the target's own)")
    p.add_argument("--networks", type=int, default=50,
                   help="whole random subnets to measure after the operators (default 50)")
    p.add_argument("--resume", action="store_true", help="complete an existing table")
    p.add_argument("--out", type=Path, help="table file (default latency_tables/<target>/<space>.json)")
    p.add_argument("--workers", type=int, default=2, help="compile processes (0: in-process)")
    p.add_argument("--batch", type=int, default=8, help="operators per compiled module")
    p.add_argument("--limit", type=int, help="profile only the first N operators of the space")
    p.add_argument("--tuning-dir", default="auto",
                   help="MetaSchedule database to compile with (default: the target's own, "
                        "latency_tables/<target>/tuning/, when it has one)")
    p.add_argument("--untuned", action="store_true",
                   help="compile without a tuning database")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampled subnets")
    p.add_argument("--network-rounds", type=int, default=5, metavar="R",
                   help="time each whole network in R rounds interleaved with the others of "
                        "its wave; the median of the rounds is stored (default %(default)s)")
    p.add_argument("--remeasure-networks", action="store_true",
                   help="with --resume: compile and time again the stored networks that were "
                        "timed in fewer rounds than --network-rounds")
    p.add_argument("--min-repeat-ms", type=float, default=DEFAULT_PROTOCOL.min_repeat_ms,
                   help="shortest sample (default %(default)s ms); longer samples average over "
                        "scheduler time slices on a busy machine")
    p.set_defaults(func=run)


def default_table_path(target, space_name: str, family: str) -> Path:
    """``<space>.json`` for the target's own runtime, ``<space>.<family>.json`` for another
    runtime ``family``; in ``cpu-<mcpu>/`` when the target's table was measured on another CPU
    model."""
    from hwnas.profile.table import table_path

    own = family == target.runtime
    return table_path(target.name, space_name, "" if own else f".{family}", for_writing=True)


def run(args) -> int:
    from hwnas.profile import ProfileOptions, profile
    from hwnas.commands._fanout import connect_profile, is_farm_run, run_keys

    if is_farm_run(args):           # one table per tracker key, each over all its free devices
        return run_keys(args, run)
    if not args.target:
        raise TargetError("--target is required (with --tracker, a --key may name the target)")
    check_int(args.parallel, "--parallel (devices at once; 0: every free one)", 0)
    from hwnas import _data
    from hwnas.compiler.database import resolve_database

    if args.out is None:
        _data.write_dir("latency_tables")     # created now when it does not exist yet

    target = load_target(args.target)
    space = resolve_space(args)
    tuned = backend_of(target).tuned and not args.untuned
    db = resolve_database(target, args.tuning_dir) if tuned else None
    opts = ProfileOptions(networks=args.networks, resume=args.resume, workers=args.workers,
                          batch=args.batch, limit=args.limit,
                          tuning_dir=None if db is None else str(db),
                          seed=args.seed, network_rounds=args.network_rounds,
                          remeasure_networks=args.remeasure_networks,
                          protocol=Protocol(min_repeat_ms=args.min_repeat_ms))
    t0 = time.perf_counter()
    with connect_profile(target, args) as runtime:
        out = args.out or default_table_path(target, space.name, runtime.family)
        rep = profile(space, target, runtime, out, opts)
    wall = time.perf_counter() - t0
    cov, val = rep.coverage, rep.validation
    print(f"table      {rep.path}")
    print(f"device     {runtime.describe()}")
    tuned = rep.ops.kernels_tuned + rep.networks.kernels_tuned
    total = rep.ops.kernels + rep.networks.kernels
    if total:
        print(f"compiler   {tuned}/{total} kernels tuned, "
              + (f"database {opts.tuning_dir}" if opts.tuning_dir else "no tuning database"))
    if hasattr(runtime, "tally"):   # a tracker farm: who measured what, and who was lost
        print(f"devices    {runtime.tally()}")
    print(f"operators  {rep.n_new} measured now; {cov['n_measured']}/{cov['n_ops']} in the table")
    print(f"time       {wall:.1f} s wall; operators: compile {rep.ops.compile_s:.1f} s, measure "
          f"{rep.ops.measure_s:.1f} s; networks: compile {rep.networks.compile_s:.1f} s, "
          f"measure {rep.networks.measure_s:.1f} s")
    if rep.cvs:
        cv = np.asarray(rep.cvs)
        print(f"cv         median {np.median(cv):.3f}, p90 {np.percentile(cv, 90):.3f}, "
              f"over 5%: {np.mean(cv > opts.protocol.cv_threshold):.0%}")
    loads = [v for v in rep.loads if v is not None]
    if loads:
        line = f"load       the reference ran x{min(loads):.2f}-x{max(loads):.2f} its quiet time"
        if rep.busy:
            cores = [b for b, _ in rep.busy]
            line += (f"; other processes held {min(cores):.2f}-{max(cores):.2f} cores, "
                     f"{sum(c for _, c in rep.busy)} of {len(rep.busy)} waves contended")
        print(line)
    if val.get("n"):
        print(f"networks   {val['n']} measured; table sum within ±10%: {val['within10']:.0%}, "
              f"MAPE {val['mape']:.1f}%, median table/measured {val['bias']:.2f}")
    _calibrate(Path(rep.path), space)
    return 0


def _calibrate(path: Path, space) -> None:
    """Fit the compiler-aware ``calibrated`` predictor from the networks this table holds for
    ``space`` and save it beside the table (skipped, with a note, when there are too few)."""
    from hwnas.errors import TableError
    from hwnas.predict import calibrate_table
    from hwnas.profile.table import LatencyTable

    if LatencyTable.load(path).config_index(space) is None:
        return
    try:
        out = calibrate_table(path, space)
    except TableError as exc:
        print(f"calibrated not fitted: {exc}")
        return
    print(f"calibrated {out}")
