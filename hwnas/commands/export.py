"""``hwnas export``: arch → ONNX → TVM library for a target, in a bundle directory."""
from __future__ import annotations

from pathlib import Path

from hwnas.commands._common import (add_device_args, add_force_arg, add_space_args,
                                    connect_runtime, resolve_arch, resolve_space)


def register(sub) -> None:
    p = sub.add_parser("export", help="export an architecture as a compiled, checked bundle")
    p.add_argument("--arch", required=True, help="arch string or path to arch.json")
    p.add_argument("--target", required=True, help="target name (hwnas targets) or .toml path")
    p.add_argument("--out", required=True, type=Path, help="bundle directory to write")
    p.add_argument("--tuning-db", metavar="DIR", default="auto",
                   help="MetaSchedule database for tuned kernels (default: the target's own, "
                        "latency_tables/<target>/tuning/, when it has one)")
    p.add_argument("--untuned", action="store_true", help="compile without a tuning database")
    p.add_argument("--no-measure", action="store_true", help="skip the latency measurement")
    add_space_args(p)
    add_device_args(p)
    add_force_arg(p, "bundle")
    p.set_defaults(func=run)


def run(args) -> int:
    import hwnas
    from hwnas._outputs import check_output_dir
    from hwnas.predict.accuracy_sources import accuracy_text

    check_output_dir(args.out, "bundle", args.force)     # before connecting to any device
    arch_json, arch_text = resolve_arch(args.arch)
    space = resolve_space(args, arch_json)
    target = hwnas.load_target(args.target)
    runtime = None
    if not args.no_measure and (not target.is_cross or args.rpc or args.tracker):
        runtime = connect_runtime(target, args)
    manifest = hwnas.export(arch_json or arch_text, target, args.out, checkpoint=args.checkpoint,
                            space=space, tuning_db=None if args.untuned else args.tuning_db,
                            runtime=runtime, force=args.force)
    lat = manifest["latency"]["measured"]
    msg = f"{lat['median_ms']:.3f} ms median" if lat else manifest["latency"]["measured_note"]
    tuning = manifest.get("tuning", {})
    print(f"bundle {args.out}: {manifest['arch']} on {target.name} "
          f"({manifest['files']['library']}, {tuning.get('tuned', 0)}/{tuning.get('kernels', 0)}"
          f" kernels tuned), {msg}")
    print(f"accuracy   {accuracy_text(manifest.get('accuracy'))}")
    return 0
