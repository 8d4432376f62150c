"""TVM (untuned, the deploy pipeline) against onnxruntime and torch eager, batch 1, this host.

    python benchmarks/compile_vs_ort.py [--n 10] [--resolutions 224,160] [--json out.json]

For each of N random ofa-mbv3 subnets (1000 classes) at each resolution, the same model is timed
in TVM (compiled through hwnas' x86-host pipeline) and onnxruntime (as many threads as the
target's TVM pool) by one method (``_timing``: the same Python loop of calls, each runtime in a
fresh process, alternated ``--rounds`` times), and in torch eager (2 threads, in this process
before anything of TVM's runtime starts). Prints per-model medians and the median
TVM/onnxruntime ratio.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import median, parser, time_ms, write_json  # noqa: E402
from _timing import time_alternating  # noqa: E402


def main() -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=10)
    p.add_argument("--resolutions", default="224,160")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()

    import torch

    from hwnas.compiler import compile_onnx, export_library
    from hwnas.compiler.onnx_export import INPUT_NAME, export_onnx
    from hwnas.spaces import get_space
    from hwnas.targets import load_target

    torch.set_num_threads(2)
    target = load_target("x86-host")
    rows, timed = [], []
    tmp = tempfile.TemporaryDirectory()
    for r in [int(v) for v in args.resolutions.split(",")]:
        space = get_space("ofa-mbv3", resolutions=[r], num_classes=1000)
        rng = np.random.default_rng(args.seed + r)
        for i, arch in enumerate(space.sample_many(rng, args.n)):
            model = space.build(arch).eval()
            x = rng.standard_normal((1, 3, r, r)).astype(np.float32)
            onnx_path = export_onnx(model, x.shape, Path(tmp.name) / f"m{r}_{i}.onnx")
            ex = compile_onnx(onnx_path, {INPUT_NAME: x.shape}, target).executable
            lib = export_library(ex, Path(tmp.name) / f"m{r}_{i}.so", target)
            xt = torch.from_numpy(x)
            with torch.no_grad():
                torch_ms = median(time_ms(lambda: model(xt)))
            timed.append({"onnx": str(onnx_path), "tvm": str(lib), "shape": list(x.shape)})
            rows.append([str(arch), None, None, torch_ms])
            print(f"compiled {arch}: torch {torch_ms:.2f} ms", flush=True)
    got = time_alternating(timed, ["tvm", "ort"], args.rounds)
    print(f"\n{'arch':<48} {'tvm ms':>9} {'ort ms':>8} {'torch ms':>9} {'tvm/ort':>8}")
    for i, row in enumerate(rows):
        row[1], row[2] = float(got["tvm"][i]), float(got["ort"][i])
        print(f"{row[0]:<48} {row[1]:9.2f} {row[2]:8.2f} {row[3]:9.2f} {row[1] / row[2]:8.1f}",
              flush=True)
    tmp.cleanup()
    a = np.array([r[1:] for r in rows])
    figures = {"tvm_ms_median": median(a[:, 0]), "ort_ms_median": median(a[:, 1]),
               "torch_ms_median": median(a[:, 2]), "tvm_over_ort": median(a[:, 0] / a[:, 1]),
               "n_models": len(rows)}
    print(f"\nmedians over {len(rows)} models: TVM untuned {figures['tvm_ms_median']:.2f} ms, "
          f"onnxruntime {figures['ort_ms_median']:.2f} ms, torch eager {figures['torch_ms_median']:.2f} ms; "
          f"median TVM/onnxruntime ratio {figures['tvm_over_ort']:.1f}x")
    write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
