"""Once-for-All's published supernet file format, loaded into hwnas, against OFA's own logits.

OFA's real ImageNet weights are not in the shared data; its forward fixture is
(``../shared/data/external/ofa_imagenet/forward_fixture/``): every key and shape of
``ofa_mbv3_d234_e346_k357_w1.2``, two numpy recipes that fill them (v1, and v2, which also
exercises the stem and the first stage), and the logits OFA's own ``OFAMobileNetV3`` gives for
4 subnets under each. For each recipe this script

* builds the state dict with the fixture's ``synthetic_weights.py`` and checks its sha256
  against the fixture's;
* writes it as OFA writes its files, ``torch.save({"state_dict": ...})``, into a temporary
  folder, and loads it with ``hwnas.load_supernet`` (``weights_only``; the configuration comes
  from the shapes);
* runs each subnet on the fixture's input three ways: the supernet with that subnet active,
  the extracted standalone subnet, and that subnet exported to ONNX and run by onnxruntime.

Each is compared with OFA's logits by the fixture's rule, max |Δ| ≤ 1e-3 · max |OFA's logit|
(``max_rel_diff_*``), and by its top-1 class (``top1_agreement_*``: the fraction of the 8
cases whose argmax is OFA's). ``onnx_vs_torch_max_abs`` is the export's own parity. Then one
subnet (v2, ``mixed_a``) is exported as a whole bundle for ``x86-host`` (``hwnas.export``:
ONNX, TVM library, parity checks) and its library run on the fixture's input
(``tvm_rel_diff``, ``tvm_vs_onnxruntime_max_abs``); ``--no-tvm`` skips it. Nothing in the
checkout is written.

Usage: python benchmarks/ofa_checkpoint.py [--json out.json] [--shared DIR] [--no-tvm]
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import parser, write_json  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RECIPES = {"v1": "ofa_forward_fixture.json", "v2": "ofa_forward_fixture_v2.json"}
RULE = 1e-3
MODES = ("supernet", "subnet", "onnx")


def _recipe_module(fixture: Path):
    spec = importlib.util.spec_from_file_location("synthetic_weights",
                                                  fixture / "synthetic_weights.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _ofa_file(fixture: Path, recipe: str, expected_sha: str, path: Path) -> Path:
    import torch

    sd = _recipe_module(fixture).make_state_dict(str(fixture / "keys_w12.txt"), recipe)
    digest = hashlib.sha256(b"".join(np.ascontiguousarray(v).tobytes() for v in sd.values()))
    if digest.hexdigest() != expected_sha:
        raise SystemExit(f"recipe {recipe}: the state dict's sha256 is not the fixture's")
    torch.save({"state_dict": {k: torch.from_numpy(np.asarray(v)) for k, v in sd.items()}},
               path)
    return path


def _case(space, net, sub: dict, folder: Path) -> dict:
    import torch

    from hwnas.compiler.onnx_export import export_onnx, max_abs_diff, run_ort

    c = sub["config"]
    d = c["d"]
    arch = space.make(c["r"], [c["ks"][4 * s:4 * s + d[s]] for s in range(5)],
                      [c["e"][4 * s:4 * s + d[s]] for s in range(5)])
    x = np.random.default_rng(0).standard_normal((1, 3, arch.r, arch.r)).astype(np.float32)
    ref = np.asarray(sub["supernet_forward"]["logits"], np.float32)
    with torch.no_grad():
        net.set_active_subnet(arch)
        y = {"supernet": net(torch.from_numpy(x)).numpy()[0]}
        static = net.get_active_subnet(arch).eval()
        y["subnet"] = static(torch.from_numpy(x)).numpy()[0]
    onnx_path = export_onnx(static, x.shape, folder / f"{sub['name']}.onnx")
    y["onnx"] = run_ort(onnx_path, x)[0]
    scale = float(np.abs(ref).max())
    out = {"name": sub["name"], "arch": str(arch), "max_abs_logit": scale,
           "onnx_vs_torch_max_abs": max_abs_diff(y["onnx"], y["subnet"])}
    for mode in MODES:
        diff = max_abs_diff(y[mode], ref)
        out[f"max_abs_diff_{mode}"] = diff
        out[f"rel_diff_{mode}"] = diff / scale
        out[f"top1_{mode}"] = int(np.argmax(y[mode])) == int(sub["supernet_forward"]["argmax"])
    return out


def _tvm_bundle(space, sub: dict, path: Path, folder: Path) -> dict:
    """One subnet exported as a bundle with OFA's file, its library run on the fixture input."""
    import hwnas
    from hwnas.export import run_tvm_library

    c = sub["config"]
    d = c["d"]
    arch = space.make(c["r"], [c["ks"][4 * s:4 * s + d[s]] for s in range(5)],
                      [c["e"][4 * s:4 * s + d[s]] for s in range(5)])
    t0 = time.perf_counter()
    m = hwnas.export(str(arch), "x86-host", folder / "bundle", checkpoint=path, tuning_db=None)
    x = np.random.default_rng(0).standard_normal((1, 3, arch.r, arch.r)).astype(np.float32)
    ref = np.asarray(sub["supernet_forward"]["logits"], np.float32)
    y = run_tvm_library(folder / "bundle" / m["files"]["library"], x)[0]
    return {"tvm_subnet": sub["name"], "tvm_arch": str(arch),
            "tvm_rel_diff": float(np.abs(y - ref).max() / np.abs(ref).max()),
            "tvm_top1": int(np.argmax(y)) == int(sub["supernet_forward"]["argmax"]),
            "tvm_vs_onnxruntime_max_abs": m["parity"]["tvm_vs_onnxruntime_max_abs"],
            "bundle_onnxruntime_vs_torch_max_abs": m["parity"]["onnxruntime_vs_torch_max_abs"],
            "bundle_weights": m["weights"]["source"], "export_s": time.perf_counter() - t0}


def main() -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--shared", type=Path, default=ROOT.parent / "shared",
                   help="the shared folder (default: ../shared beside the checkout)")
    p.add_argument("--no-tvm", action="store_true", help="skip the TVM bundle of one subnet")
    args = p.parse_args()
    fixture = args.shared / "data" / "external" / "ofa_imagenet" / "forward_fixture"
    if not fixture.is_dir():
        raise SystemExit(f"no forward fixture at {fixture}")

    import torch

    from hwnas import load_supernet

    torch.set_num_threads(1)            # as OFA's run that recorded the fixture
    cases, load_s, configs = [], {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for recipe, name in RECIPES.items():
            fx = json.loads((fixture / name).read_text())
            path = _ofa_file(fixture, recipe, fx["state_dict_raw_sha256"],
                             Path(tmp) / f"ofa_mbv3_w12_{recipe}.pth")
            t0 = time.perf_counter()
            space, net, meta = load_supernet(path)
            load_s[recipe] = time.perf_counter() - t0
            configs[recipe] = meta["configuration"]
            for sub in fx["subnets"]:
                cases.append({"recipe": recipe, **_case(space, net, sub, Path(tmp))})
        tvm = {} if args.no_tvm else _tvm_bundle(
            space, next(s for s in fx["subnets"] if s["name"] == "mixed_a"), path, Path(tmp))

    fig: dict = {"configuration": configs["v1"], "rule": f"max|diff| <= {RULE:g} * max|OFA logit|",
                 "n_cases": len(cases), "load_s": load_s}
    for mode in MODES:
        fig[f"max_abs_diff_{mode}"] = max(c[f"max_abs_diff_{mode}"] for c in cases)
        fig[f"max_rel_diff_{mode}"] = max(c[f"rel_diff_{mode}"] for c in cases)
        fig[f"top1_agreement_{mode}"] = sum(c[f"top1_{mode}"] for c in cases) / len(cases)
    fig["onnx_vs_torch_max_abs"] = max(c["onnx_vs_torch_max_abs"] for c in cases)
    fig["passes"] = all(c[f"rel_diff_{m}"] <= RULE for c in cases for m in MODES) and \
        tvm.get("tvm_rel_diff", 0.0) <= RULE
    fig.update(tvm)
    fig["cases"] = cases

    print(f"OFA checkpoint file -> {fig['configuration']}: {len(cases)} cases (2 recipes x 4 "
          f"subnets), rule {fig['rule']}")
    for c in cases:
        print(f"  {c['recipe']} {c['name']:8s} {c['arch']:55s} " + "  ".join(
            f"{m} {c[f'max_abs_diff_{m}']:.2e} ({c[f'rel_diff_{m}']:.1e} rel)" for m in MODES)
              + f"  onnx-torch {c['onnx_vs_torch_max_abs']:.1e}")
    for m in MODES:
        print(f"{m:9s} max |diff| {fig[f'max_abs_diff_{m}']:.3e}, max relative "
              f"{fig[f'max_rel_diff_{m}']:.3e}, top-1 agreement {fig[f'top1_agreement_{m}']:.0%}")
    print(f"onnxruntime vs torch max |diff| {fig['onnx_vs_torch_max_abs']:.3e}; load "
          + ", ".join(f"{r} {s:.2f} s" for r, s in load_s.items())
          + f"; {'PASS' if fig['passes'] else 'FAIL'}")
    if tvm:
        print(f"TVM bundle (x86-host, v2 {tvm['tvm_subnet']}): library vs OFA "
              f"{tvm['tvm_rel_diff']:.2e} relative, top-1 {'agrees' if tvm['tvm_top1'] else 'differs'}"
              f"; tvm vs onnxruntime {tvm['tvm_vs_onnxruntime_max_abs']:.2e}, onnxruntime vs "
              f"torch {tvm['bundle_onnxruntime_vs_torch_max_abs']:.2e}; export "
              f"{tvm['export_s']:.1f} s")
    write_json(args.json, fig)
    return 0 if fig["passes"] else 1


if __name__ == "__main__":
    sys.exit(main())
