"""Tuned x86 code at ImageNet scale (ofa-mbv3-imagenet, 160-224 px): TVM against onnxruntime
and torch eager, the roofline, the table's error and deploys that bind, on this CPU.

    python benchmarks/imagenet_tuning.py --reuse [--subnets 24] [--json out.json]
    python benchmarks/imagenet_tuning.py --minutes 120 [--json out.json]

1. The database: ``--reuse`` takes the committed one (the configuration's folder inside
   ``latency_tables/x86-host/tuning-<cpu>/``); otherwise ``hwnas tune --space
   ofa-mbv3-imagenet`` runs first for ``--minutes`` (resuming from it).
2. ``--subnets`` random subnets of the configuration, spread evenly over its five
   resolutions, compiled with it (two workers; nothing is timed meanwhile).
3. TVM, onnxruntime and torch eager time every subnet by one method (``_timing``: the same
   Python loop of calls, each runtime in a fresh process, the three alternated ``--rounds``
   times, the median round kept). Achieved GFLOP/s (2 x MACs / time) beside the CPU's fp32
   peak, derived from ``/proc/cpuinfo`` (``space_tuning.peak_gflops``). Then where the time
   goes in the largest of them: ms per call by class of layer (pointwise, depthwise, stem,
   squeeze-excite and head, classifier), TVM's kernels timed from its VM's instrument hook
   and onnxruntime's nodes from its own profiler (``breakdown``, ``depthwise_over_ort``,
   ``pointwise_over_ort``).
4. When this CPU has a latency table of the configuration (``hwnas profile --space
   ofa-mbv3-imagenet``): ``--holdout`` held-out networks (``latency_tables/<target>/
   cpu-<mcpu>/ofa-mbv3.holdout.json``, measured first where missing, resumably, as
   ``benchmarks/latency_predictor.py --measure`` does) score its predictor raw
   (``within10_raw``: against each network's plain timing) and drift-corrected
   (``within10_corrected``: against the timing scaled by the table's reference network).
5. Deploys that bind: one per quantile of ``--budgets`` (quantiles of the predictor's
   latency over random subnets of the configuration), ``--space ofa-mbv3-imagenet`` with
   random weights and OFA's accuracy predictor as the objective (imported from
   ``../shared`` into a temporary folder when not imported already). Each bundle is judged
   by the deploy's own measurement (``within_budget_rate``, ``median_slack``: its judged
   latency, the slower of drift-corrected and raw) and by an independent re-timing right
   after it (``_timing``, fresh processes, alternated with onnxruntime:
   ``..._independent``), and must say "random weights" in its manifest and report.
6. One more deploy at the middle budget with ``--checkpoint`` an OFA-format file (the
   forward fixture's synthetic v2 weights, saved as OFA saves its files): the bundle carries
   those weights and its outputs match torch's (``checkpoint_rel_diff_vs_torch``).
7. The largest subnet at 224 px exported with that file, its ``run.py`` run by a Python that
   sees only numpy and TVM's runtime (no compiler library, no torch, onnx or hwnas):
   ``run_py_224_ok``.
Without a table, 4 to 7 are skipped, their keys are null and the output says why.

``--json PATH`` writes coverage, tvm_over_ort_median/_worst, torch_over_ort_median,
achieved_gflops_median, peak_gflops, tune_wall_s, tune_trials, tune_finished,
within10_raw, within10_corrected, within_budget_rate(_independent),
median_slack(_independent), checkpoint and run.py checks, the CPU model, the load, and the
per-subnet and per-deploy rows.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import budgets_ms, deploy_figures, median, parser, write_json  # noqa: E402
from _timing import bundle_rows, time_alternating  # noqa: E402
from space_tuning import _compile, achieved_gflops, peak_gflops  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TARGET = "x86-host"
SPACE = "ofa-mbv3-imagenet"


def _archs(space, n: int, seed: int) -> list[str]:
    """``n`` random subnets, the resolutions taken in turn."""
    rng = np.random.default_rng(seed)
    g = space.sample_genomes(rng, n)
    g[:, -1] = np.arange(n) % len(space.resolutions)
    return [str(space.from_genome(x)) for x in g]


def _database(target, space, args) -> tuple[Path | None, dict]:
    """The configuration's published database (tuned first without ``--reuse``) and its
    manifest."""
    from hwnas.compiler.database import database_dir, read_manifest

    if not args.reuse:
        from hwnas.api import tune

        rep = tune(TARGET, space=space, minutes=args.minutes)
        print(f"tuned {rep.covered}/{rep.kernels} kernels, {rep.trials_total} trials, "
              f"{rep.wall_total_s / 60:.1f} min in all", flush=True)
    folder = database_dir(target, for_writing=True, space=space)
    if not (folder / "tuning.json").is_file():
        return None, {}
    return database_dir(target), read_manifest(folder)


def _kind(inp, out, weight_numel: int | None) -> str:
    """The class of a convolution from its input and output shapes (N, C, H, W) and its
    weight's element count: what the breakdown sums by."""
    if len(inp) != 4 or len(out) != 4 or weight_numel is None:
        return "other"
    c_in, c_out = inp[1], out[1]
    if inp[2] == 1:
        return "1x1 input (squeeze-excite, head)"
    if c_in == 3:
        return "stem"
    if c_in == c_out and weight_numel in (c_in * 9, c_in * 25, c_in * 49):
        return "depthwise"
    if weight_numel == c_in * c_out:
        return "pointwise"
    return "other"


def _breakdown(job) -> dict:
    """Worker: where one subnet's time goes, in ms per call by class of layer, for TVM (each
    kernel timed from the VM's instrument hook, fused epilogues included) and onnxruntime
    (its own per-node profile; NCHWc reorders and unfused element-wise nodes in a class of
    their own)."""
    import collections
    import tempfile as tf

    from hwnas._cpus import restore

    cpus, row, calls = job
    restore(cpus)
    from hwnas.compiler.onnx_export import INPUT_NAME
    from hwnas.runtime.bundle_runner import Model
    from hwnas.targets import load_target

    threads = int(load_target(TARGET).threads)
    x = np.random.default_rng(0).standard_normal(tuple(row["shape"])).astype(np.float32)
    net = Model(library=row["tvm"], input_shape=tuple(row["shape"]), threads=threads,
                adaptive=False)
    for _ in range(10):
        net(x)
    spent: dict = collections.defaultdict(float)
    kinds: dict = {}
    started: dict = {}

    def hook(func, symbol, before, ret, *args):
        if before:
            started[symbol] = time.perf_counter()
            return 0
        spent[symbol] += time.perf_counter() - started[symbol]
        if symbol not in kinds:
            shapes = [tuple(a.shape) for a in args if hasattr(a, "shape")]
            if "matmul" in symbol or "dense" in symbol:
                kinds[symbol] = "classifier"
            elif "conv2d" in symbol and len(shapes) >= 3:
                kinds[symbol] = _kind(shapes[0], shapes[-1], int(np.prod(shapes[1])))
            else:
                kinds[symbol] = "other" if symbol.startswith("fused") else "runtime (VM)"
        return 0

    net._vm.set_instrument(hook)
    for _ in range(calls):
        net(x)
    tvm_ms: dict = collections.defaultdict(float)
    for symbol, sec in spent.items():
        tvm_ms[kinds[symbol]] += 1e3 * sec / calls
    import onnxruntime as ort

    with tf.TemporaryDirectory() as tmp:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.enable_profiling = True
        opts.profile_file_prefix = str(Path(tmp) / "ort")
        sess = ort.InferenceSession(row["onnx"], opts, providers=["CPUExecutionProvider"])
        for _ in range(10 + calls):
            sess.run(None, {INPUT_NAME: x})
        events = json.loads(Path(sess.end_profiling()).read_text())
    per_node: dict = collections.defaultdict(list)
    info: dict = {}
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            per_node[e["name"]].append(e["dur"])
            a = e["args"]
            info[e["name"]] = (a.get("op_name"),
                               [next(iter(v.values())) for v in a.get("input_type_shape", [])],
                               [next(iter(v.values())) for v in a.get("output_type_shape", [])])
    ort_ms: dict = collections.defaultdict(float)
    for name, durs in per_node.items():
        op, ins, outs = info[name]
        us = float(np.mean(durs[-calls:]))
        if op in ("Conv", "FusedConv") and len(ins) >= 2 and outs:
            kind = _kind(ins[0], outs[0], int(np.prod(ins[1])))
        elif op in ("Gemm", "FusedGemm", "MatMul"):
            kind = "classifier"
        else:
            kind = "layout and element-wise (onnxruntime)"
        ort_ms[kind] += us / 1e3
    kinds_all = sorted(set(tvm_ms) | set(ort_ms), key=lambda k: -tvm_ms.get(k, 0.0))
    return {"arch": row["arch"], "macs": row["macs"],
            "classes": {k: {"tvm_ms": round(tvm_ms.get(k, 0.0), 4),
                            "ort_ms": round(ort_ms.get(k, 0.0), 4)} for k in kinds_all}}


def _holdout_score(space, target, db_dir, args) -> dict:
    """The configuration's table on this CPU: its held-out networks (measured where missing)
    scored raw and drift-corrected; ``why`` when there is no table."""
    from latency_predictor import HOLDOUT_SEED

    from hwnas.errors import HwnasError
    from hwnas.predict import load_predictor
    from hwnas.profile.holdout import Holdout, holdout_path, measure_holdout
    from hwnas.profile.table import LatencyTable, table_path
    from hwnas.runtime import connect

    tpath = table_path(TARGET, space)
    try:
        table = LatencyTable.load(tpath)
        if table.config_index(space) is None:
            raise HwnasError(f"{tpath} holds another configuration")
        pred = load_predictor(TARGET, space, "auto", tpath)
    except HwnasError as exc:
        return {"why": f"no latency table of {SPACE} for this CPU ({exc})"}
    hpath = holdout_path(tpath)
    t0 = time.perf_counter()
    if args.holdout:
        with connect(target) as rt:
            measure_holdout(space, target, rt, hpath, args.holdout, HOLDOUT_SEED,
                            args.max_new, table=table, tuning_dir=str(db_dir))
    wall = time.perf_counter() - t0
    hold = Holdout.load(hpath) if hpath.exists() else Holdout({}, [])
    calib = {rec["arch"] for rec in table.meta.get("networks", [])}
    nets = [n for n in hold.networks if n["arch"] not in calib and "raw_ms" in n]
    out = {"table": str(tpath), "predictor": pred.name, "holdout_n": len(nets),
           "holdout_wall_s": round(wall, 1)}
    if not nets:
        return {**out, "why": f"no held-out networks measured at {hpath}"}
    p = pred.predict_genomes(space.to_genomes([space.parse(n["arch"]) for n in nets]))
    for key, field in (("raw", "raw_ms"), ("corrected", "median_ms")):
        meas = np.array([n[field] for n in nets])
        err = np.abs(p / meas - 1)
        out[f"within10_{key}"] = float(np.mean(err <= 0.10))
        out[f"mape_{key}"] = float(100 * err.mean())
    loads = [n["load_avg_1m"] for n in nets if n.get("load_avg_1m") is not None]
    out["holdout_load"] = [min(loads), max(loads)] if loads else None
    out["holdout_ms_range"] = [float(min(n["raw_ms"] for n in nets)),
                               float(max(n["raw_ms"] for n in nets))]
    return out


def _accuracy_source(work: Path) -> str:
    """OFA's accuracy predictor for the configuration: the imported one, else imported from
    ``../shared`` into ``work`` for this process (``HWNAS_ACCURACY``)."""
    from hwnas.predict.accuracy_sources import find_accuracy_source
    from hwnas.spaces import get_space

    found = find_accuracy_source(get_space(SPACE))
    if found is not None:
        return f"{found.name} (imported)"
    from ofa_reproduction import OFA_PREDICTOR

    from hwnas.predict.accuracy_import import import_accuracy

    if not OFA_PREDICTOR.exists():
        raise SystemExit(f"published data not found: {OFA_PREDICTOR}")
    os.environ["HWNAS_ACCURACY"] = str(work / "accuracy")   # where searches look first
    npz = import_accuracy(OFA_PREDICTOR, "ofa-predictor", SPACE)
    if find_accuracy_source(get_space(SPACE)) is None:
        raise SystemExit(f"OFA's predictor, imported into {npz.path}, is not found by searches")
    return f"ofa-predictor (imported now from {OFA_PREDICTOR.name} into {npz.path.parent})"


def _deploy(target, runtime, db_dir, budget: float, out: Path, **where) -> dict:
    """One deploy into ``out`` (``where``: ``space=`` or ``checkpoint=``); the row it adds."""
    from hwnas.deploy.config import DeployConfig
    from hwnas.deploy.loop import deploy
    from hwnas.errors import HwnasError

    t0 = time.perf_counter()
    try:
        m = deploy(DeployConfig(target=target, budget_ms=budget, out=out, runtime=runtime,
                                max_rounds=3, tuning_dir=str(db_dir), **where))
    except HwnasError as exc:
        return {"budget": budget, "ok": False, "error": str(exc),
                "wall_s": round(time.perf_counter() - t0, 1)}
    report = (out / "report.md").read_text() if (out / "report.md").exists() else ""
    return {"budget": budget, "bundle": str(out), "arch": m["arch"],
            **deploy_figures(m, budget), "wall_s": round(time.perf_counter() - t0, 1),
            "objective": (m.get("accuracy") or {}).get("source"),
            "predicted_top1": (m.get("accuracy") or {}).get("top1"),
            "weights": m["weights"]["source"],
            "random_said": ("random weights" in m["weights"]["source"]
                            and "random weights" in report)}


def _matches_torch(bundle: Path, checkpoint: Path) -> float:
    """Max |bundle logits - torch logits| / max |torch logits| on a random input (a bundle
    without a dataset has no sample), torch running the subnet of the OFA-format file."""
    import torch

    from hwnas import load_supernet
    from hwnas.runtime.bundle_runner import Model

    m = json.loads((bundle / "manifest.json").read_text())
    space, net, _ = load_supernet(checkpoint)
    x = np.random.default_rng(0).standard_normal(m["input"]["shape"]).astype(np.float32)
    with torch.no_grad():
        ref = net.get_active_subnet(space.parse(m["arch"])).eval()(torch.from_numpy(x)).numpy()
    y = Model(bundle)(x)
    return float(np.abs(y - ref).max() / np.abs(ref).max())


def _runtime_only_site(folder: Path) -> Path:
    """A ``sys.path`` folder holding numpy and TVM's runtime only: the TVM package without its
    compiler and CUDA libraries, as a device with the runtime alone has it."""
    import numpy
    import tvm

    site = Path(numpy.__file__).resolve().parents[1]
    folder.mkdir(parents=True)
    for name in ("numpy", "numpy.libs", "tvm_ffi", "typing_extensions.py"):
        if (site / name).exists():
            (folder / name).symlink_to(site / name)
    pkg = Path(tvm.__file__).resolve().parent
    (folder / "tvm" / "lib").mkdir(parents=True)
    for entry in pkg.iterdir():
        if entry.name != "lib":
            (folder / "tvm" / entry.name).symlink_to(entry)
    for lib in ("libtvm_runtime.so", "libtvm_runtime_extra.so"):
        (folder / "tvm" / "lib" / lib).symlink_to(pkg / "lib" / lib)
    return folder


def _run_py_runtime_only(bundle: Path, work: Path) -> dict:
    """``run.py`` of ``bundle`` in a fresh Python that sees only ``_runtime_only_site``."""
    site = _runtime_only_site(work / "runtime-only-site")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(site)}
    probe = ("import importlib.util as u; "
             "print([m for m in ('torch', 'onnx', 'onnxruntime', 'hwnas') if u.find_spec(m)])")
    check = subprocess.run([sys.executable, "-S", "-c", probe], check=False, env=env,
                           capture_output=True, text=True, timeout=60)
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-S", "run.py"], check=False, cwd=bundle, env=env,
                       capture_output=True, text=True, timeout=300)
    return {"run_py_224_ok": r.returncode == 0 and r.stdout.startswith("class "),
            "run_py_224_output": (r.stdout or r.stderr).strip().splitlines()[-1:],
            "run_py_224_s": round(time.perf_counter() - t0, 1),
            "run_py_224_importable_besides": check.stdout.strip()}


def _deploys(space, target, db_dir, args, work: Path) -> dict:
    """Deploys at ``--budgets`` with random weights, one with an OFA-format file, every
    bundle re-timed independently, and ``run.py`` of a 224 px bundle on the runtime alone."""
    from ofa_checkpoint import _ofa_file

    import hwnas
    from hwnas.deploy.run_script import write_run_scripts
    from hwnas.runtime import connect

    out: dict = {"objective": _accuracy_source(work)}
    budgets, how = budgets_ms(args.budgets, TARGET, space)
    out["budgets_how"] = how
    print(f"deploy budgets {budgets} ms: {how}; objective {out['objective']}", flush=True)
    fixture = ROOT.parent / "shared" / "data" / "external" / "ofa_imagenet" / "forward_fixture"
    fx = json.loads((fixture / "ofa_forward_fixture_v2.json").read_text())
    ckpt = _ofa_file(fixture, "v2", fx["state_dict_raw_sha256"], work / "ofa_w12_v2.pth")
    rows = []

    def retimed(row: dict, what: str) -> dict:
        # re-timed independently at once, before the next deploy: the host's speed drifts
        if "bundle" in row:
            got = time_alternating(bundle_rows([row["bundle"]]), ["tvm", "ort"], args.rounds)
            tvm_ms, ort_ms = float(got["tvm"][0]), float(got["ort"][0])
            row.update(tvm_ms=tvm_ms, ort_ms=ort_ms, ok_independent=bool(tvm_ms <= row["budget"]),
                       slack_independent=float((row["budget"] - tvm_ms) / row["budget"]),
                       load_retimed=round(os.getloadavg()[0], 2))
        print(f"  deploy {row['budget']:.2f} ms ({what}): {row}", flush=True)
        return row

    with connect(target) as runtime:
        for i, b in enumerate(budgets):
            rows.append(retimed(_deploy(target, runtime, db_dir, b, work / f"random{i}",
                                        space=SPACE), "random weights"))
        mid = budgets[len(budgets) // 2]
        rows.append(retimed(_deploy(target, runtime, db_dir, mid, work / "ofa-file",
                                    checkpoint=ckpt), "OFA-format file"))
    done = [r for r in rows if "bundle" in r]
    random_rows = rows[:len(budgets)]
    out.update({
        "within_budget_rate": float(np.mean([r["ok"] for r in rows])),
        "median_slack": median([r["slack"] for r in done]) if done else None,
        "within_budget_rate_independent": float(np.mean([r.get("ok_independent", False)
                                                         for r in rows])),
        "median_slack_independent": (median([r["slack_independent"] for r in done])
                                     if done else None),
        "deploy_tvm_over_ort_median": (median([r["tvm_ms"] / r["ort_ms"] for r in done])
                                       if done else None),
        "random_weights_said": all(r.get("random_said") for r in random_rows),
        "deploys": rows})
    ck = rows[-1]
    if "bundle" in ck:
        out["checkpoint_weights"] = ck["weights"]
        out["checkpoint_rel_diff_vs_torch"] = _matches_torch(Path(ck["bundle"]), ckpt)
    big = space.make(224, [[7] * 4] * 5, [[6] * 4] * 5)
    t0 = time.perf_counter()
    hwnas.export(str(big), TARGET, work / "r224", checkpoint=ckpt, tuning_db=str(db_dir))
    write_run_scripts(work / "r224")
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    np.save(work / "r224" / "sample_input.npy", x)
    out.update({"run_py_224_arch": str(big), "r224_export_s": round(time.perf_counter() - t0, 1),
                **_run_py_runtime_only(work / "r224", work)})
    return out


def main() -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--reuse", action="store_true", help="use the committed tuning database")
    p.add_argument("--minutes", type=float, default=120.0, help="tuning time without --reuse")
    p.add_argument("--subnets", type=int, default=24)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--holdout", type=int, default=100,
                   help="held-out networks to score the table's predictor on (0: score those "
                        "measured, measure none)")
    p.add_argument("--max-new", type=int, help="measure at most this many missing ones now")
    p.add_argument("--budgets", default="q:0.25,0.5,0.75",
                   help="deploy budgets: ms, or q: quantiles of the predicted latency")
    p.add_argument("--no-deploy", action="store_true", help="skip the deploys (5 to 7)")
    args = p.parse_args()

    from hwnas._cpus import allowed_cpus
    from hwnas._log import setup_logging
    from hwnas.spaces import get_space
    from hwnas.targets import load_target

    setup_logging()
    target = load_target(TARGET)
    space = get_space(SPACE)
    t_start = time.perf_counter()
    load_before = os.getloadavg()[0]
    db_dir, man = _database(target, space, args)
    if db_dir is None:
        print(f"no tuning database of {SPACE} for x86-host on {target.mcpu}: run without "
              "--reuse, or hwnas tune --space ofa-mbv3-imagenet")
        return 1
    print(f"database {db_dir}: {SPACE} {man.get('workloads')} kernels, "
          f"{man.get('trials_total')} trials, {(man.get('wall_s') or 0) / 60:.1f} min of tuning "
          f"on {man.get('target', {}).get('mcpu')} (finished: {man.get('finished')}); "
          f"this CPU: {target.mcpu}", flush=True)

    archs = _archs(space, args.subnets, args.seed)
    with tempfile.TemporaryDirectory(prefix="hwnas-bench-imagenet-") as tmp:
        t0 = time.perf_counter()
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(2, maxtasksperchild=4) as pool:
            rows = pool.map(_compile, [(allowed_cpus(), space.config(), a,
                                        str(Path(tmp) / f"net{i}"), {"tvm": str(db_dir)})
                                       for i, a in enumerate(archs)])
        for r in rows:
            r["space"] = space.config()
        compile_s = time.perf_counter() - t0
        print(f"compiled {len(rows)} subnets in {compile_s:.0f} s", flush=True)
        t0 = time.perf_counter()
        ms = time_alternating(rows, ["tvm", "ort", "torch"], args.rounds,
                              on_round=lambda r, k: print(f"  round {r + 1}/{args.rounds} {k}",
                                                          flush=True))
        print(f"timed in {time.perf_counter() - t0:.0f} s", flush=True)
        big = max(range(len(rows)), key=lambda i: rows[i]["macs"])
        with multiprocessing.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
            split = pool.apply(_breakdown, ((allowed_cpus(), rows[big], 30),))
        print(f"\nwhere the time goes, {split['arch']} ({split['macs'] / 1e6:.0f} MMACs), ms "
              "per call (TVM: its VM's hook per kernel; onnxruntime: its node profile)")
        for k, v in split["classes"].items():
            ratio = v["tvm_ms"] / v["ort_ms"] if v["ort_ms"] else float("nan")
            print(f"  {k:40s} tvm {v['tvm_ms']:7.3f}  ort {v['ort_ms']:7.3f}  {ratio:5.2f}x")
        scored = _holdout_score(space, target, db_dir, args)
        if scored.get("why"):
            print(f"held-out scoring skipped: {scored['why']}", flush=True)
        else:
            print(f"held-out: {scored['holdout_n']} networks, {scored['predictor']} predictor "
                  f"within 10%: raw {scored['within10_raw']:.1%}, drift-corrected "
                  f"{scored['within10_corrected']:.1%}", flush=True)
        if not args.no_deploy and "why" not in scored:
            scored.update(_deploys(space, target, db_dir, args, Path(tmp)))

    peak, how = peak_gflops()
    ratio = ms["tvm"] / ms["ort"]
    gflops = achieved_gflops(rows, ms["tvm"])
    print(f"\n{'arch':58s} {'MMACs':>6} {'tvm':>7} {'ort':>7} {'torch':>7} {'tvm/ort':>7} "
          f"{'kernels':>8} {'GFLOP/s':>8}")
    for i, r in enumerate(rows):
        print(f"{r['arch']:58s} {r['macs'] / 1e6:6.0f} {ms['tvm'][i]:7.2f} {ms['ort'][i]:7.2f} "
              f"{ms['torch'][i]:7.2f} {ratio[i]:7.3f} "
              f"{r['tvm_kernels'][0]:>3}/{r['tvm_kernels'][1]:<4} {gflops[i]:8.1f}")
    kernels = sum(r["tvm_kernels"][1] for r in rows)
    tuned = sum(r["tvm_kernels"][0] for r in rows)
    figures = {
        "cpu": target.mcpu, "tuned_on": man.get("target", {}).get("mcpu"),
        "coverage": tuned / kernels if kernels else None,
        "tvm_over_ort_median": median(ratio), "tvm_over_ort_worst": float(ratio.max()),
        "torch_over_ort_median": median(ms["torch"] / ms["ort"]),
        "tvm_ms_median": median(ms["tvm"]), "ort_ms_median": median(ms["ort"]),
        "torch_ms_median": median(ms["torch"]),
        "achieved_gflops_median": median(gflops), "peak_gflops": peak,
        "peak_fraction_median": median(gflops) / peak, "peak_derivation": how,
        "tune_wall_s": man.get("wall_s"), "tune_trials": man.get("trials_total"),
        "tune_finished": man.get("finished"),
        **{f"{k}_over_ort": (split["classes"][k]["tvm_ms"] / split["classes"][k]["ort_ms"]
                             if split["classes"].get(k, {}).get("ort_ms") else None)
           for k in ("depthwise", "pointwise")},
        **{k: scored.get(k) for k in (
            "within10_raw", "within10_corrected", "mape_raw", "mape_corrected", "holdout_n",
            "holdout_load", "holdout_ms_range", "predictor", "within_budget_rate",
            "median_slack", "within_budget_rate_independent", "median_slack_independent",
            "deploy_tvm_over_ort_median", "random_weights_said", "checkpoint_weights",
            "checkpoint_rel_diff_vs_torch", "run_py_224_ok", "run_py_224_arch",
            "objective", "budgets_how")},
        "not_measured": scored.get("why"),
        "compile_s": round(compile_s, 1),
        "benchmark_wall_s": round(time.perf_counter() - t_start, 1),
        "load_avg_1m_before": load_before, "load_avg_1m_at_end": os.getloadavg()[0],
    }
    print(f"\npeak fp32: {peak:.0f} GFLOP/s = {how}")
    if scored.get("why"):
        print(f"table, predictor and deploys not measured: {scored['why']}")
    print("  ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in figures.items()
                    if k not in ("peak_derivation", "not_measured", "budgets_how", "deploys",
                                 "holdout_load", "holdout_ms_range", "breakdown")))
    figures["breakdown"] = split
    figures["deploys"] = scored.get("deploys")
    figures["subnets"] = [{"arch": r["arch"], "macs": r["macs"], "kernels": r["tvm_kernels"],
                           "tvm_ms": float(ms["tvm"][i]), "ort_ms": float(ms["ort"][i]),
                           "torch_ms": float(ms["torch"][i])} for i, r in enumerate(rows)]
    write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
