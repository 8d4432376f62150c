"""TVM untuned vs MetaSchedule-tuned vs onnxruntime vs torch eager on OFA-MBv3 subnets.

    python benchmarks/tuning.py [--trials-per-task 8 32] [--work-dir DIR] [--json out.json]

For each model (one subnet at r=128, one at r=224, 1000 classes, random weights) it prints the
median latency (ms) of each runtime, the TVM/onnxruntime ratios and the tuning wall time of each
trials setting. TVM is compiled through ``hwnas.compiler.pipelines.compile_onnx``, the pipeline that
profile and deploy use, and tuned with ``hwnas.compiler.tune`` into one database per model
(``<work-dir>/<model>``, a temporary folder unless ``--work-dir`` is given, so that an interrupted
run resumes). Settings for one model are cumulative: a bigger setting tops up the smaller one.
``tune_wall_s`` is the wall time of every tuning run recorded in that database so far, i.e. a
cold start. Timings on a shared machine are noisy.

Measured on the 2-core znver3 host while other jobs kept its load average at 7 to 16 (so every
figure is inflated, ratios only roughly comparable):
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
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

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


def _median_ms(fn, warmup: int = 5, repeat: int = 30) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter_ns()
        fn()
        times.append((time.perf_counter_ns() - t0) / 1e6)
    return statistics.median(times)


def ort_ms(path: Path, x: np.ndarray, threads: int) -> float:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return _median_ms(lambda: sess.run(None, {"input": x}))


def torch_ms(seed: int, r: int, x: np.ndarray, threads: int) -> float:
    import torch

    from hwnas.spaces import get_space

    torch.set_num_threads(threads)
    space = get_space("ofa-mbv3")
    arch = space.sample(np.random.default_rng(seed))
    model = space.build(space.make(r, arch.ks, arch.e), num_classes=1000).eval()
    xt = torch.from_numpy(x)
    with torch.inference_mode():
        return _median_ms(lambda: model(xt))


def tvm_ms(path: Path, x: np.ndarray, target, database=None) -> float:
    import tvm
    from tvm import relax

    from hwnas.compiler import compile_onnx

    ex = compile_onnx(path, {"input": x.shape}, target, database=database).executable
    dev = tvm.cpu()
    vm = relax.VirtualMachine(ex, dev)
    vm.set_input("main", tvm.runtime.tensor(x))
    te = vm.time_evaluator("invoke_stateful", dev, number=1, repeat=15, min_repeat_ms=50)("main")
    return te.median * 1e3


def bench_model(name: str, seed: int, r: int, settings: list[int], target, tmp: Path,
                work_dir: Path) -> dict:
    from hwnas._io import read_json
    from hwnas.compiler.database import MANIFEST
    from hwnas.compiler.tune import last_run, tune_onnx

    path = tmp / f"{name}.onnx"
    arch = export_subnet(seed, r, path)
    x = np.random.default_rng(0).standard_normal((1, 3, r, r)).astype("float32")
    out = {"arch": arch, "ort_ms": ort_ms(path, x, target.threads),
           "torch_ms": torch_ms(seed, r, x, target.threads)}
    out["tvm_untuned_ms"] = tvm_ms(path, x, target)
    for tpt in settings:
        db = tune_onnx(path, {"input": x.shape}, target, work_dir, trials_per_task=tpt)
        run = last_run(work_dir)
        wall_s = sum(r["wall_s"] for r in read_json(work_dir / MANIFEST)["runs"])
        ms_ = tvm_ms(path, x, target, db)
        out[f"tvm_tuned_ms@{tpt}"], out[f"tune_wall_s@{tpt}"] = ms_, wall_s
        out[f"tune_trials@{tpt}"], out["tasks"] = run.trials, run.tasks
        out[f"tvm_over_ort_tuned@{tpt}"] = ms_ / out["ort_ms"]
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
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    target = load_target(args.target)
    settings = sorted(set(args.trials_per_task))
    result: dict = {}
    with tempfile.TemporaryDirectory(prefix="hwnas-tuning-") as tmp:
        for name, seed, r in MODELS:
            if name in args.models:
                work_dir = (args.work_dir or Path(tmp)) / name
                res = bench_model(name, seed, r, settings, target, Path(tmp), work_dir)
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
