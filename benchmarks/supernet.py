"""Supernet benchmark: dataset, training time, subnet accuracy, predictor τ, ranking fidelity.

    python benchmarks/supernet.py --out ckpt/ --epochs 0.3     # train a supernet, then measure
    python benchmarks/supernet.py --checkpoint checkpoints/ofa-mbv3-fmnist   # existing one
    python benchmarks/supernet.py --quick --json out.json      # shipped checkpoint, < 5 min

Figures printed:

* the dataset and its split sizes, the training wall time, and top-1 on the test split of the
  largest, smallest and median subnets (inherited weights, BN recalibrated), from the
  checkpoint's ``meta.json`` (measured by ``hwnas train-supernet``);
* the accuracy predictor's Kendall τ and RMSE on held-out subnets it was not fitted on
  (``accuracy_heldout.json``): on their validation top-1, the quantity it is fitted to
  (``accuracy_heldout_val.json``), and on their whole-test-split top-1, beside how well their
  measured validation top-1 ranks that (in older checkpoints the last quarter of
  ``accuracy_samples.json``); and its speed;
* ranking fidelity: 8 subnets (largest, smallest, median and 5 random, fixed seed) trained
  from scratch, their test top-1 rank against their inherited-weight rank (Kendall τ).

"Same budget" for the scratch subnets: the supernet run trained the largest subnet alone for
its first steps, then 4 subnets (largest, smallest, 2 random) per step; the sum is its
subnet-steps. The 8 scratch subnets share the same number: each gets 1/8 of it, as steps of
the same batch size, optimizer, schedule and data order, with labels only (``--scratch-steps``
overrides it; both counts are printed). Their results are kept in
``<checkpoint>/scratch_baseline.json`` (resumable). ``--quick`` trains them for
``--quick-steps`` steps each instead, and evaluates on 2,000 test images, so the quick
ranking-fidelity figure is much noisier than the full one.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from hwnas._io import atomic_write_json, read_json
from hwnas.errors import DataError
from hwnas.predict.accuracy import kendall_tau, load_accuracy_predictor
from hwnas.train.checkpoint import checkpoint_dataset, load_supernet, read_meta
from hwnas.train.evaluate import accuracy, median_arch
from hwnas.train.measure import HELDOUT_FILE, HELDOUT_VAL_FILE, SAMPLES_FILE, subnet_accuracies
from hwnas.train.trainer import TrainConfig, train_standalone

SHIPPED = Path(__file__).resolve().parent.parent / "checkpoints" / "ofa-mbv3-fmnist"
N_SCRATCH = 8


def ranking_archs(space, seed: int = 0) -> list:
    """The 8 subnets of the fidelity study: three anchors and five random ones."""
    rng = np.random.default_rng([seed, 8])
    return [space.largest(), space.smallest(), median_arch(space)] + space.sample_many(rng, 5)


def _scratch_one(ckpt: str, arch_text: str, index: int, steps: int,
                 limit: int | None) -> tuple[str, float, float]:
    """Train one arch from scratch and return its test top-1 (runs in a worker process)."""
    from hwnas.spaces import space_from_config

    torch.set_num_threads(1)
    meta = read_meta(ckpt)
    data, space = checkpoint_dataset(meta), space_from_config(meta["space"])
    cfg = TrainConfig(**meta["train"]["config"])
    arch = space.parse(arch_text)
    torch.manual_seed(cfg.seed + index)
    t0 = time.perf_counter()
    model = train_standalone(space.build(arch), data, arch.r, steps, cfg)
    x, y = (data.x_test[:limit], data.y_test[:limit]) if limit else (data.x_test, data.y_test)
    return arch_text, round(accuracy(model, x, y, arch.r), 5), round(time.perf_counter() - t0, 1)


def scratch_accuracies(ckpt: Path, archs: list, steps: int, limit: int | None,
                       cache: Path | None, workers: int = 1) -> list[float]:
    """Train each arch from scratch for ``steps`` steps; test top-1 (cached per arch)."""
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from multiprocessing import get_context

    rec = read_json(cache, "scratch baseline", DataError) if cache and cache.exists() else {}
    if rec.get("steps") != steps or rec.get("limit") != limit:
        rec = {"steps": steps, "limit": limit, "acc": {}, "wall_s": {}}
    todo = [(i, str(a)) for i, a in enumerate(archs) if str(a) not in rec["acc"]]
    with ProcessPoolExecutor(max(1, workers), get_context("spawn")) as pool:
        jobs = [pool.submit(_scratch_one, str(ckpt), a, i, steps, limit) for i, a in todo]
        for job in as_completed(jobs):
            arch, acc, wall = job.result()
            rec["acc"][arch], rec["wall_s"][arch] = acc, wall
            print(f"  scratch {len(rec['acc'])}/{len(archs)} {arch}: {acc:.4f} ({wall:.0f} s)",
                  flush=True)
            if cache:
                atomic_write_json(cache, rec)
    return [rec["acc"][str(a)] for a in archs]


def predictor_figures(ckpt: Path, space) -> dict:
    """τ and RMSE of the shipped predictor on the subnets it was not fitted on.

    The predictor is fitted to validation top-1, so its headline τ is on the held-out subnets'
    validation top-1 (``accuracy_heldout_val.json``); τ on their whole-test-split top-1 is
    printed beside it, with how well the measured validation top-1 itself ranks the test
    top-1 (the same subnets, measured, not predicted).
    """
    pred = load_accuracy_predictor(ckpt)
    if (ckpt / HELDOUT_FILE).exists():     # other subnets, measured on the whole test split
        held = read_json(ckpt / HELDOUT_FILE, "held-out subnets", DataError)["samples"]
    else:                                  # the last samples, kept out of the fit
        samples = read_json(ckpt / SAMPLES_FILE, "accuracy samples", DataError)["samples"]
        held = samples[int(pred.stats["n_fit"]):]
    if not held:
        raise DataError(f"{ckpt} has no held-out subnets to score the accuracy predictor on")
    g = space.to_genomes([space.parse(s["arch"]) for s in held])
    acc = np.array([s["acc"] for s in held])
    p = pred.predict_genomes(g)
    big = space.sample_genomes(np.random.default_rng(0), 10_000)
    times_ms = []
    for _ in range(5):
        t0 = time.perf_counter()
        pred.predict_genomes(big)
        times_ms.append((time.perf_counter() - t0) * 1e3)
    fig = {"acc_predictor_kendall": round(kendall_tau(p, acc), 4),
           "acc_predictor_rmse": round(float(np.sqrt(np.mean((p - acc) ** 2))), 5),
           "acc_predictor_target": "held-out subnets, top-1 on the test split",
           "acc_predictor_n_fit": int(pred.stats["n_fit"]), "acc_predictor_n_heldout": len(held),
           "acc_predictor_ms_per_10k": round(float(np.median(times_ms)), 2)}
    vpath = ckpt / HELDOUT_VAL_FILE
    if (ckpt / HELDOUT_FILE).exists() and vpath.exists():
        val = read_json(vpath, "held-out subnets (val)", DataError)["samples"]
        if [v["arch"] for v in val] == [s["arch"] for s in held]:
            vacc = np.array([v["acc"] for v in val])
            fig.update({
                "acc_predictor_kendall_test": fig["acc_predictor_kendall"],
                "acc_predictor_rmse_test": fig["acc_predictor_rmse"],
                "acc_predictor_kendall": round(kendall_tau(p, vacc), 4),
                "acc_predictor_rmse": round(float(np.sqrt(np.mean((p - vacc) ** 2))), 5),
                "acc_predictor_target": ("held-out subnets, top-1 on the validation split "
                                         "(the fit's target)"),
                "heldout_val_vs_test_kendall": round(kendall_tau(vacc, acc), 4)})
    return fig


def fidelity_figures(ckpt: Path, loaded, data, steps: int, limit: int | None,
                     cache: Path | None, workers: int) -> dict:
    archs = ranking_archs(loaded.space)
    print(f"training {len(archs)} subnets from scratch, {steps} steps each ...", flush=True)
    scratch = scratch_accuracies(ckpt, archs, steps, limit, cache, workers)
    inherited = [round(a, 5) for a in subnet_accuracies(loaded, data, [str(a) for a in archs],
                                                          "test", limit, workers, ckpt)]
    for a, s, i in zip(archs, scratch, inherited):
        print(f"  {str(a):<58} scratch {s:.4f}  inherited {i:.4f}")
    return {"inherited_vs_scratch_kendall": round(kendall_tau(inherited, scratch), 4),
            "scratch_steps_each": steps, "fidelity_test_images": limit or len(data.y_test),
            "fidelity_archs": [str(a) for a in archs], "acc_scratch": scratch,
            "acc_inherited": inherited}


def _subnet_steps(meta: dict) -> int:
    """Subnet forward/backward passes of the supernet run (largest alone, then 4 per step);
    the largest-only phase is the one of the first plan when ``--epochs`` was changed."""
    train, cfg = meta["train"], meta["train"]["config"]
    first = train.get("replanned", [{}])[0].get("from_epochs", cfg["epochs"])
    full = int(cfg["full_fraction"] * TrainConfig(epochs=first, batch_size=cfg["batch_size"])
               .total_steps(meta["dataset"]["train"]))
    return full + (train["total_steps"] - full) * (2 + cfg["n_random"])


def _train(args) -> Path:
    from hwnas.cli import main as cli

    out = Path(args.out)
    rc = cli(["train-supernet", "--data", args.data, "--out", str(out), "--epochs",
              str(args.epochs), "--threads", str(args.threads)])
    if rc:
        sys.exit(rc)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="shipped checkpoint, short scratch runs")
    ap.add_argument("--checkpoint", default=None, help="measure this checkpoint (no training)")
    ap.add_argument("--out", default="ckpt-bench", help="where to train when no checkpoint")
    ap.add_argument("--data", default="fashion-mnist")
    ap.add_argument("--epochs", type=float, default=0.3)
    ap.add_argument("--quick-steps", type=int, default=12)
    ap.add_argument("--scratch-steps", type=int, default=None,
                    help="override the same-budget rule (steps per scratch subnet)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2,
                    help="processes (one thread each) for the scratch subnets")
    ap.add_argument("--scratch-only", action="store_true",
                    help="only train and cache the scratch subnets (may run beside training)")
    ap.add_argument("--json", default=None, help="write the figures to this JSON file")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    ckpt = Path(args.checkpoint) if args.checkpoint else SHIPPED if args.quick else _train(args)
    meta = read_meta(ckpt)
    data = checkpoint_dataset(meta)
    steps = args.quick_steps if args.quick else _subnet_steps(meta) // N_SCRATCH
    steps = args.scratch_steps or steps
    limit = 2000 if args.quick else None
    cache = None if args.quick else ckpt / "scratch_baseline.json"
    if args.scratch_only:
        from hwnas.spaces import space_from_config

        space = space_from_config(meta["space"])
        scratch_accuracies(ckpt, ranking_archs(space), steps, limit, cache, args.workers)
        return 0
    loaded = load_supernet(ckpt)
    acc = meta["accuracy"]
    fig = {"dataset": meta["dataset"]["name"], "dataset_sizes": data.sizes(),
           "checkpoint": str(ckpt), "space": meta["space"], "train_epochs": meta["train"]
           ["config"]["epochs"], "train_steps": meta["train"]["total_steps"],
           "train_wall_s": meta["train"]["wall_s"], "acc_largest": acc["acc_largest"],
           "acc_smallest": acc["acc_smallest"], "acc_median": acc["acc_median"],
           **predictor_figures(ckpt, loaded.space),
           "supernet_subnet_steps": _subnet_steps(meta),
           **fidelity_figures(ckpt, loaded, data, steps, limit, cache, args.workers)}
    for k in ("dataset", "dataset_sizes", "train_wall_s", "acc_largest", "acc_smallest",
              "acc_median", "acc_predictor_target", "acc_predictor_kendall",
              "acc_predictor_rmse", "acc_predictor_kendall_test", "acc_predictor_rmse_test",
              "heldout_val_vs_test_kendall", "inherited_vs_scratch_kendall",
              "scratch_steps_each", "supernet_subnet_steps"):
        if k in fig:
            print(f"{k:<30} {fig[k]}")
    if args.json:
        atomic_write_json(args.json, fig)
    return 0


if __name__ == "__main__":
    sys.exit(main())
