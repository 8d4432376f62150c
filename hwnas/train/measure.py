"""After training: store the finished weights, measure subnets, fit the accuracy predictor.

Each phase records its result in the checkpoint folder before the next starts, so rerunning
``hwnas train-supernet`` after an interruption continues where it stopped.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from hwnas._io import atomic_write_json, read_json
from hwnas._log import progress
from hwnas.errors import DataError
from hwnas.train.accuracy import PREDICTOR_FILE, fit_accuracy_predictor, kendall_tau
from hwnas.train.checkpoint import (OPTIMIZER_FILE, SUPERNET_FILE, LoadedSupernet,
                                    evaluate_subnet, load_state, save_state, write_meta)
from hwnas.train.evaluate import median_arch

__all__ = ["finish_checkpoint", "measure_reference_subnets", "measure_samples",
           "subnet_accuracies", "fit_from_samples", "SAMPLES_FILE"]

log = logging.getLogger("hwnas.train")
SAMPLES_FILE = "accuracy_samples.json"
CALIB_BATCHES = 4


def _store_half(out: Path, net, meta: dict) -> None:
    """float16 weights on disk (half the size), loaded back so that measurements match them."""
    save_state(out / SUPERNET_FILE, net.state_dict(), half=True)
    net.load_state_dict(load_state(out / SUPERNET_FILE))
    (out / OPTIMIZER_FILE).unlink(missing_ok=True)
    meta["train"]["finished"] = True
    write_meta(out, meta)


def measure_reference_subnets(loaded: LoadedSupernet, data, ckpt_dir: Path, split: str = "test",
                              workers: int = 1) -> dict:
    """Top-1 of the largest, smallest and median subnets on ``split``."""
    space = loaded.space
    archs = {"largest": space.largest(), "smallest": space.smallest(),
             "median": median_arch(space)}
    accs = subnet_accuracies(loaded, data, [str(a) for a in archs.values()], split, None,
                             workers, ckpt_dir)
    out = {f"acc_{k}": round(acc, 5) for k, acc in zip(archs, accs)}
    out.update(split=split, calib_batches=CALIB_BATCHES,
               archs={k: str(a) for k, a in archs.items()})
    return out


_WORKER: dict = {}


def _worker_init(ckpt_dir: str, threads: int) -> None:
    import torch

    from hwnas.train.checkpoint import checkpoint_dataset, load_supernet

    torch.set_num_threads(threads)
    _WORKER["loaded"] = load_supernet(ckpt_dir)
    _WORKER["data"] = checkpoint_dataset(_WORKER["loaded"].meta)


def _worker_measure(arch_text: str, split: str, limit: int | None) -> float:
    loaded = _WORKER["loaded"]
    return evaluate_subnet(loaded, loaded.space.parse(arch_text), split, CALIB_BATCHES,
                           _WORKER["data"], limit=limit)


def subnet_accuracies(loaded: LoadedSupernet, data, archs: list[str], split: str,
                      limit: int | None, workers: int, ckpt_dir: Path):
    """Yield the top-1 on ``split`` of each arch in order; ``workers`` > 1 uses processes that
    load the stored checkpoint ``ckpt_dir`` themselves (each with one thread)."""
    if workers <= 1:
        for a in archs:
            yield evaluate_subnet(loaded, loaded.space.parse(a), split, CALIB_BATCHES, data,
                                  limit=limit)
        return
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    n = len(archs)
    with ProcessPoolExecutor(min(workers, n), get_context("spawn"), _worker_init,
                             (str(ckpt_dir), 1)) as pool:
        yield from pool.map(_worker_measure, archs, [split] * n, [limit] * n)


def measure_samples(loaded: LoadedSupernet, data, path: Path, n: int, val_limit: int,
                    seed: int = 0, workers: int = 1) -> dict:
    """Validation top-1 of ``n`` random subnets, appended to ``path`` as they are measured."""
    space = loaded.space
    genomes = space.canonical_genomes(space.sample_genomes(np.random.default_rng([seed, 7]), n))
    rec = read_json(path, "accuracy samples", DataError) if path.exists() else {
        "split": "val", "val_limit": val_limit, "calib_batches": CALIB_BATCHES, "seed": seed,
        "samples": []}
    done = len(rec["samples"])
    todo = [str(space.from_genome(g)) for g in genomes[done:]]
    t0 = time.perf_counter()
    accs = subnet_accuracies(loaded, data, todo, "val", val_limit, workers, path.parent)
    for i, (arch, acc) in enumerate(progress(zip(todo, accs), total=len(todo),
                                             desc="measure subnets"), done + 1):
        rec["samples"].append({"arch": arch, "acc": round(acc, 5)})
        if i % 10 == 0 or i == n:
            rec["wall_s"] = round(rec.get("wall_s", 0.0) + time.perf_counter() - t0, 1)
            t0 = time.perf_counter()
            atomic_write_json(path, rec)
            log.info("measured %d/%d subnets", i, n)
    return rec


def fit_from_samples(space, rec: dict, holdout: float = 0.25):
    """Fit on the first (1 - holdout) of the samples; report τ and RMSE on the rest."""
    archs = [space.parse(s["arch"]) for s in rec["samples"]]
    acc = np.array([s["acc"] for s in rec["samples"]])
    genomes = space.to_genomes(archs)
    cut = int(round(len(acc) * (1 - holdout)))
    pred = fit_accuracy_predictor(space, genomes[:cut], acc[:cut])
    p = pred.predict_genomes(genomes[cut:])
    pred.stats = {"n_fit": cut, "n_holdout": len(acc) - cut,
                  "kendall_tau": round(kendall_tau(p, acc[cut:]), 4),
                  "rmse": round(float(np.sqrt(np.mean((p - acc[cut:]) ** 2))), 5),
                  "acc_range": [float(acc.min()), float(acc.max())],
                  "target": f"top-1 on {rec.get('val_limit')} validation images"}
    return pred


def finish_checkpoint(out: str | Path, net, meta: dict, data, acc_samples: int = 200,
                      val_limit: int = 2000, seed: int = 0, workers: int = 1) -> dict:
    """Run the post-training phases that ``out`` has not finished yet; returns the metadata."""
    out = Path(out)
    if not meta["train"].get("finished"):
        _store_half(out, net, meta)
    from hwnas.spaces import space_from_config

    loaded = LoadedSupernet(space_from_config(meta["space"]), net.eval(), meta)
    if "accuracy" not in meta:
        meta["accuracy"] = measure_reference_subnets(loaded, data, out, workers=workers)
        write_meta(out, meta)
        log.info("accuracy: %s", meta["accuracy"])
    if acc_samples > 0 and "accuracy_predictor" not in meta:
        rec = measure_samples(loaded, data, out / SAMPLES_FILE, acc_samples, val_limit, seed,
                              workers)
        pred = fit_from_samples(loaded.space, rec)
        pred.save(out / PREDICTOR_FILE)
        meta["accuracy_predictor"] = {"file": PREDICTOR_FILE, **pred.stats,
                                      "measure_wall_s": rec.get("wall_s")}
        write_meta(out, meta)
    return meta
