"""TVM untuned vs MetaSchedule-tuned vs onnxruntime vs torch eager on OFA-MBv3 subnets.

    python benchmarks/tuning.py [--trials-per-task 8 32] [--work-dir DIR] [--json out.json]

For each model (one subnet at r=128, one at r=224, 1000 classes, random weights) it prints the
median latency (ms) of each runtime, the TVM/onnxruntime ratios and the tuning wall time of each
trials setting. Every runtime is timed the same way once the tuning has ended (``_timing``:
the same Python loop of calls, each runtime in a fresh process, alternated ``--rounds`` times);
torch eager in this process, first. TVM is compiled through ``hwnas.compiler.pipelines.compile_onnx``, the pipeline that
profile and deploy use, and tuned with ``hwnas.compiler.tune`` into one database per model
(``<work-dir>/<model>``, a temporary folder unless ``--work-dir`` is given, so that an interrupted
run resumes). Settings for one model are cumulative: a bigger setting tops up the smaller one.
``tune_wall_s`` is the wall time of every tuning run recorded in that database so far, i.e. a
cold start. Timings on a shared machine are noisy.

Measured on the 2-core znver3 host while other jobs kept its load average at 7 to 16 (so every
figure is inflated, ratios only roughly comparable), and before the one timing method: TVM
then by its own C++ loop (``time_evaluator``), onnxruntime first and by a Python loop:
- r128 subnet, 65 kernels, 8 trials per kernel (520 trials; 90 min of tuning with
  MetaSchedule's stock builder at load 7-16): at load ~3, untuned 78 ms, tuned 10.5 ms,
  onnxruntime 8.6-8.8 ms: 1.2x. At load ~12 the same pair read 72 vs 36 ms (2.0x).
  Convolutions were 99% of the tuned time; the largest kernel alone 18%.
- r224 subnet, 80 kernels, 4 trials per kernel (320 trials; 36 min with this module's pooled
  builder at load ~12): tuned 38.8 ms, onnxruntime 22.4-22.7 ms at load ~3-4: 1.7x.
- Kernels are shared between subnets only partly: two other r128 subnets reuse 40 of 77 and
  40 of 72 of the first one's kernels. A kernel missing from the database stays unscheduled
  and dominates (414 ms with 40/77 tuned), so the database must cover every kernel the latency
  table or the bundle uses.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import median, time_ms  # noqa: E402
from _timing import time_alternating  # noqa: E402

MODELS = (("r128", 0, 128), ("r224", 1, 224))


def export_subnet(seed: int, r: int, path: Path) -> str:
    import torch

    from hwnas.spaces import get_space

    space = get_space("ofa-mbv3")
    arch = space.sample(np.random.default_rng(seed))
    arch = space.make(r, arch.ks, arch.e)
    torch.manual_seed(seed)
    model = space.build(arch, num_classes=1000).eval()
    torch.onnx.export(model, (torch.randn(1, 3, r, r),), str(path), dynamo=False,
                      opset_version=17, input_names=["input"], output_names=["logits"])
    return str(arch)


def torch_ms(seed: int, r: int, x: np.ndarray, threads: int) -> float:
    import torch

    from hwnas.spaces import get_space

    torch.set_num_threads(threads)
    space = get_space("ofa-mbv3")
    arch = space.sample(np.random.default_rng(seed))
    model = space.build(space.make(r, arch.ks, arch.e), num_classes=1000).eval()
    xt = torch.from_numpy(x)
    with torch.inference_mode():
        return median(time_ms(lambda: model(xt)))


def tvm_library(path: Path, x: np.ndarray, target, out: Path, database=None) -> str:
    """The model compiled by hwnas's pipeline (with ``database``'s schedules), exported."""
    from hwnas.compiler import compile_onnx, export_library

    ex = compile_onnx(path, {"input": x.shape}, target, database=database).executable
    return str(export_library(ex, out, target))


def bench_model(name: str, seed: int, r: int, settings: list[int], target, tmp: Path,
                work_dir: Path, rounds: int = 3) -> dict:
    from hwnas._io import read_json
    from hwnas.compiler.database import MANIFEST
    from hwnas.compiler.tune import last_run, tune_onnx

    path = tmp / f"{name}.onnx"
    arch = export_subnet(seed, r, path)
    x = np.random.default_rng(0).standard_normal((1, 3, r, r)).astype("float32")
    out = {"arch": arch, "torch_ms": torch_ms(seed, r, x, target.threads)}
    row = {"onnx": str(path), "shape": list(x.shape),
           "untuned": tvm_library(path, x, target, tmp / f"{name}.untuned.so")}
    for tpt in settings:
        db = tune_onnx(path, {"input": x.shape}, target, work_dir, trials_per_task=tpt)
        run = last_run(work_dir)
        wall_s = sum(r["wall_s"] for r in read_json(work_dir / MANIFEST)["runs"])
        row[f"tuned@{tpt}"] = tvm_library(path, x, target, tmp / f"{name}.{tpt}.so", db)
        out[f"tune_wall_s@{tpt}"] = wall_s
        out[f"tune_trials@{tpt}"], out["tasks"] = run.trials, run.tasks
    # every runtime timed the same way, after the tuning, alternated (``_timing``)
    kinds = [k for k in row if k not in ("onnx", "shape")] + ["ort"]
    got = {k: float(v[0]) for k, v in time_alternating([row], kinds, rounds).items()}
    out["ort_ms"], out["tvm_untuned_ms"] = got["ort"], got["untuned"]
    for tpt in settings:
        out[f"tvm_tuned_ms@{tpt}"] = got[f"tuned@{tpt}"]
        out[f"tvm_over_ort_tuned@{tpt}"] = got[f"tuned@{tpt}"] / got["ort"]
    best = min(settings, key=lambda t: out[f"tvm_tuned_ms@{t}"])
    out["tvm_tuned_ms"] = out[f"tvm_tuned_ms@{best}"]
    out["tune_wall_s"] = out[f"tune_wall_s@{best}"]
    out["tvm_over_ort_untuned"] = out["tvm_untuned_ms"] / out["ort_ms"]
    out["tvm_over_ort_tuned"] = out["tvm_tuned_ms"] / out["ort_ms"]
    return out


def main(argv=None) -> dict:
    from hwnas._log import setup_logging
    from hwnas.targets import load_target

    setup_logging()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="x86-host")
    ap.add_argument("--trials-per-task", type=int, nargs="+", default=[8])
    ap.add_argument("--models", nargs="+", default=[m[0] for m in MODELS],
                    choices=[m[0] for m in MODELS])
    ap.add_argument("--work-dir", type=Path, help="keep (and reuse) the tuning databases here")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    target = load_target(args.target)
    settings = sorted(set(args.trials_per_task))
    result: dict = {}
    with tempfile.TemporaryDirectory(prefix="hwnas-tuning-") as tmp:
        for name, seed, r in MODELS:
            if name in args.models:
                work_dir = (args.work_dir or Path(tmp)) / name
                res = bench_model(name, seed, r, settings, target, Path(tmp), work_dir, args.rounds)
                for k, v in res.items():
                    result[f"{name}_{k}" if k != "tasks" else f"{name}_tasks"] = v
                _print_model(name, result, settings)
    # headline keys: the r=224 model when it ran, else the first model
    head = "r224" if "r224" in args.models else args.models[0]
    for k in ("tvm_untuned_ms", "tvm_tuned_ms", "ort_ms", "torch_ms", "tvm_over_ort_untuned",
              "tvm_over_ort_tuned", "tune_wall_s"):
        result[k] = result[f"{head}_{k}"]
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return result


def _print_model(name: str, res: dict, settings: list[int]) -> None:
    p = f"{name}_"
    print(f"{name}  {res[p + 'arch']}  ({res[p + 'tasks']} kernels)")
    print(f"  onnxruntime {res[p + 'ort_ms']:8.2f} ms   torch eager {res[p + 'torch_ms']:8.2f} ms")
    print(f"  tvm untuned {res[p + 'tvm_untuned_ms']:8.2f} ms   "
          f"x{res[p + 'tvm_over_ort_untuned']:.2f} onnxruntime")
    for t in settings:
        print(f"  tvm tuned {t:3d} trials/kernel {res[f'{p}tvm_tuned_ms@{t}']:8.2f} ms   "
              f"x{res[f'{p}tvm_over_ort_tuned@{t}']:.2f} onnxruntime   "
              f"tuning {res[f'{p}tune_wall_s@{t}']:.0f} s")


if __name__ == "__main__":
    main()
