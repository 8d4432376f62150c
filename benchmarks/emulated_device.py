"""An emulated aarch64 device end to end: setup, parity, RPC profile, deploy and run.py.

    python benchmarks/emulated_device.py [--cache DIR] [--profile-networks 2] [--json PATH]

1. setup: the aarch64 root (Debian's Python, numpy, TVM's runtime) set up in a fresh cache,
   downloads included (pip's own cache may already hold the wheels), then asked for again
   (cached); ``--cache`` sets it up in, or reuses, that folder instead;
2. serve it: TVM's RPC server under qemu-user (``hwnas.farm.start_emulated_device``);
3. export: the shipped checkpoint's smallest subnet for ``rpi4``, run on the emulated device and
   compared with onnxruntime on this machine (``aarch64_parity_max_abs``);
4. profile: the first 8 operators over RPC into a table that must be marked emulated
   (``rpc_profile_ok``);
5. deploy: ``hwnas deploy --target rpi4 --rpc ... --allow-emulated`` in a fresh tables folder,
   so it profiles the checkpoint space's whole table (with ``--profile-networks`` networks)
   before it searches, exports and measures (``deploy_ok``); then the bundle's ``run.py`` on
   the device's Python, TVM runtime only (``run_py_ok``).

Everything runs on this machine: the latencies are qemu's, not a Raspberry Pi's.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import parser, write_json  # noqa: E402


def parse_args(argv=None):
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--cache", help="set the root up in (or reuse) this folder instead of a "
                                   "fresh temporary one")
    p.add_argument("--profile-networks", type=int, default=2,
                   help="whole networks the deploy profiles into the table (default 2)")
    p.add_argument("--budget-ms", type=float, default=10_000.0,
                   help="deploy budget (default 10000 ms: one round, since emulated latencies "
                        "say nothing about a real budget)")
    p.add_argument("--keep", metavar="DIR", help="keep the deploy bundle and tables here")
    return p.parse_args(argv)


def setup_times(cache: Path) -> tuple[dict, object]:
    from hwnas.farm import ensure_root

    first = ensure_root("aarch64", cache)
    t0 = time.perf_counter()
    again = ensure_root("aarch64", cache)
    cached_s = time.perf_counter() - t0
    state = json.loads((cache / "setup.json").read_text())
    sizes = {k: state.get(k) for k in ("apt_lists_bytes", "packages_bytes", "wheels_bytes",
                                       "root_bytes")}
    print(f"setup      first {first.setup_s:.1f} s ({'already cached' if first.cached else 'built'}"
          f"; steps {state.get('seconds')}), cached {cached_s * 1e3:.1f} ms")
    print("sizes      " + ", ".join(f"{k[:-6]} {v / 2**20:.1f} MiB" for k, v in sizes.items() if v))
    return {"first": round(first.setup_s, 2), "cached": round(cached_s, 4),
            "first_was_cached": first.cached, "sizes": sizes}, again


def parity(device, work: Path) -> float:
    import hwnas

    space = hwnas.load_supernet().space
    arch = space.smallest()
    runtime = hwnas.connect("rpi4", rpc=device.address)
    try:
        m = hwnas.export(str(arch), "rpi4", work / "export", checkpoint="ofa-mbv3-fmnist",
                         tuning_db=None, runtime=runtime)
    finally:
        runtime.close()
    diff = m["parity"]["tvm_vs_onnxruntime_max_abs"]
    print(f"export     {arch} on {m['parity']['tvm_ran_on']}: |tvm - onnxruntime| = {diff:.2e}; "
          f"{m['latency']['measured']['median_ms']:.3f} ms emulated")
    return diff


def rpc_profile(device, work: Path) -> bool:
    from hwnas.profile.table import LatencyTable

    out = work / "profile.json"
    cmd = [sys.executable, "-m", "hwnas", "profile", "--target", "rpi4", "--rpc", device.address,
           "--limit", "8", "--networks", "0", "--workers", "0", "--untuned",
           "--resolutions", "28", "--num-classes", "10", "--in-chans", "1", "--out", str(out)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        print(f"profile    FAILED: {proc.stderr.strip().splitlines()[-1:]}")
        return False
    meta = LatencyTable.load(out).meta
    ok = len(LatencyTable.load(out)) == 8 and meta.get("emulated") is True
    print(f"profile    8 operators over RPC in {wall:.1f} s; table marked emulated: "
          f"{meta.get('emulated')} ({meta.get('emulator')})")
    return ok


def deploy(args, device, work: Path) -> dict:
    out = work / "bundle"
    env = {**os.environ, "HWNAS_TABLES": str(work / "tables")}
    cmd = [sys.executable, "-m", "hwnas", "deploy", "--target", "rpi4", "--rpc", device.address,
           "--allow-emulated", "--latency-ms", f"{args.budget_ms:g}", "--max-rounds", "1",
           "--profile-networks", str(args.profile_networks), "--out", str(out)]
    print("deploy     " + " ".join(cmd[2:]), flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    res = {"wall_s": round(wall, 1), "ok": False}
    if proc.returncode != 0:
        print(f"deploy     FAILED in {wall:.0f} s: {proc.stderr.strip().splitlines()[-1:]}")
        server_log = Path(device.log_path).read_text(errors="replace").splitlines()
        print("server log (last lines):\n  " + "\n  ".join(server_log[-15:]))
        return res
    m = json.loads((out / "manifest.json").read_text())
    lat, table = m["latency"]["measured"], m["deploy"]["table"]
    report = (out / "report.md").read_text()
    res.update({
        "measured_ms": lat["median_ms"], "arch": m["arch"], "rounds": m["deploy"]["rounds"],
        "profiled_ops": table.get("profiled_ops"), "profiled_networks": table.get("profiled_networks"),
        "parity_max_abs": m["parity"]["tvm_vs_onnxruntime_max_abs"],
        "ok": bool(lat.get("emulated") and table.get("emulated") and "Emulated device" in report
                   and m["parity"]["tvm_ran_on"] == f"rpc://{device.address}")})
    for line in proc.stdout.strip().splitlines():
        print(f"           {line}")
    print(f"deploy     {wall:.0f} s wall: table of {table.get('profiled_ops')} operators and "
          f"{table.get('profiled_networks')} networks profiled, {m['arch']} measured "
          f"{lat['median_ms']:.2f} ms emulated; report says emulated: "
          f"{'Emulated device' in report}")
    return res


def host_class(bundle: Path) -> str:
    """What run.py should print first: the sample's class and probability, from onnxruntime
    on this machine."""
    import numpy as np
    import onnxruntime as ort

    m = json.loads((bundle / "manifest.json").read_text())
    x = np.load(bundle / "sample_input.npy").astype("float32").reshape(m["input"]["shape"])
    logits = ort.InferenceSession(str(bundle / "model.onnx")).run(None, {"input": x})[0][0]
    p = np.exp(logits - logits.max())
    p /= p.sum()
    top = int(p.argmax())
    names = m.get("classes") or [str(i) for i in range(len(p))]
    return f"class {top} ({names[top]}), p={p[top]:.3f}"


def run_py(root, bundle: Path) -> bool:
    t0 = time.perf_counter()
    proc = subprocess.run([str(root.python), "run.py"], cwd=bundle, capture_output=True,
                          text=True, timeout=600)
    want = host_class(bundle)
    ok = proc.returncode == 0 and proc.stdout.startswith(want)
    print(f"run.py     {proc.stdout.strip() or proc.stderr.strip().splitlines()[-1:]} "
          f"({time.perf_counter() - t0:.1f} s on the device's Python); onnxruntime here: {want}")
    return ok


def main(argv=None) -> int:
    args = parse_args(argv)
    from hwnas.farm import start_emulated_device

    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    tmp = Path(tempfile.mkdtemp(prefix="hwnas-emulated-bench-"))
    cache = Path(args.cache) if args.cache else tmp / "cache"
    figures: dict = {"aarch64_parity_max_abs": None, "run_py_ok": False, "rpc_profile_ok": False,
                     "deploy_ok": False}
    try:
        figures["setup_s"], root = setup_times(cache)
        t0 = time.perf_counter()
        with start_emulated_device("aarch64", cache_dir=cache,
                                   log_path=tmp / "server.log") as device:
            figures["server_start_s"] = round(time.perf_counter() - t0, 1)
            print(f"server     {device.address} up in {figures['server_start_s']} s")
            figures["aarch64_parity_max_abs"] = parity(device, tmp)
            figures["rpc_profile_ok"] = rpc_profile(device, tmp)
            dep = deploy(args, device, tmp)
        figures["deploy_ok"] = dep.pop("ok")
        figures["deploy"] = dep
        if figures["deploy_ok"]:
            figures["run_py_ok"] = run_py(root, tmp / "bundle")
    finally:
        if args.keep:
            for name in ("bundle", "tables", "server.log"):
                src, dst = tmp / name, Path(args.keep) / name
                if src.is_dir():
                    shutil.copytree(src, dst, dirs_exist_ok=True)
                elif src.exists():
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(src, dst)
        shutil.rmtree(tmp, ignore_errors=True)
    figures["load_avg_1min"] = round(os.getloadavg()[0], 2)
    write_json(args.json, figures)
    ok = all(figures[k] for k in ("run_py_ok", "rpc_profile_ok", "deploy_ok")) and \
        figures["aarch64_parity_max_abs"] is not None and figures["aarch64_parity_max_abs"] <= 1e-4
    print(f"\n{'all checks passed' if ok else 'SOME CHECKS FAILED'}: {json.dumps(figures)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
