"""``hwnas profile``: measure a device's operator latency table through TVM (or onnxruntime)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hwnas import api
from hwnas._checks import check_int
from hwnas.commands._common import add_device_args, add_space_args, resolve_space
from hwnas.errors import TargetError
from hwnas.runtime import runtime_names
from hwnas.runtime.protocol import DEFAULT_PROTOCOL

__all__ = ["register", "run"]


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


def run(args) -> int:
    from hwnas.commands._fanout import is_farm_run, run_keys

    if is_farm_run(args):           # one table per tracker key, each over all its free devices
        return run_keys(args, run)
    if not args.target:
        raise TargetError("--target is required (with --tracker, a --key may name the target)")
    check_int(args.parallel, "--parallel (devices at once; 0: every free one)", 0)
    target = api.load_target(args.target)
    done = api.profile(target, resolve_space(args), rpc=args.rpc, tracker=args.tracker,
                       key=args.key, runtime=args.runtime, parallel=args.parallel,
                       networks=args.networks, resume=args.resume, out=args.out,
                       workers=args.workers, batch=args.batch, limit=args.limit,
                       tuning_dir=None if args.untuned else args.tuning_dir, seed=args.seed,
                       network_rounds=args.network_rounds,
                       remeasure_networks=args.remeasure_networks,
                       min_repeat_ms=args.min_repeat_ms)
    rep = done.report
    cov, val = rep.coverage, rep.validation
    print(f"table      {rep.path}")
    print(f"device     {done.device}")
    tuned = rep.ops.kernels_tuned + rep.networks.kernels_tuned
    total = rep.ops.kernels + rep.networks.kernels
    if total:
        print(f"compiler   {tuned}/{total} kernels tuned, "
              + (f"database {done.tuning_dir}" if done.tuning_dir else "no tuning database"))
    if done.devices is not None:    # a tracker farm: who measured what, and who was lost
        print(f"devices    {done.devices}")
    print(f"operators  {rep.n_new} measured now; {cov['n_measured']}/{cov['n_ops']} in the table")
    print(f"time       {done.wall_s:.1f} s wall; operators: compile {rep.ops.compile_s:.1f} s, "
          f"measure {rep.ops.measure_s:.1f} s; networks: compile {rep.networks.compile_s:.1f} s, "
          f"measure {rep.networks.measure_s:.1f} s")
    if rep.cvs:
        cv = np.asarray(rep.cvs)
        print(f"cv         median {np.median(cv):.3f}, p90 {np.percentile(cv, 90):.3f}, "
              f"over 5%: {np.mean(cv > done.cv_threshold):.0%}")
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
    if done.not_calibrated is not None:
        print(f"calibrated not fitted: {done.not_calibrated}")
    elif done.calibrated is not None:
        print(f"calibrated {done.calibrated}")
    return 0
