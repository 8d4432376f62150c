"""After training: store the finished weights, measure subnets, fit the accuracy predictor.

Each phase records its result in the checkpoint folder before the next starts, so rerunning
``hwnas train-supernet`` after an interruption continues where it stopped.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from hwnas._checks import check_int, check_seed
from hwnas._io import atomic_write_json, read_json
from hwnas._log import progress
from hwnas.errors import DataError
from hwnas.predict.accuracy import (PREDICTOR_FILE, fit_accuracy_predictor, kendall_tau,
                                  load_accuracy_predictor)
from hwnas.train.checkpoint import (OPTIMIZER_FILE, SUPERNET_FILE, LoadedSupernet,
                                    evaluate_subnet, load_state, save_state, write_meta)
from hwnas.train.evaluate import median_arch

__all__ = ["finish_checkpoint", "check_finish_options", "measure_reference_subnets", "measure_samples",
           "measure_heldout", "subnet_accuracies", "fit_from_samples", "SAMPLES_FILE",
           "HELDOUT_FILE"]

log = logging.getLogger("hwnas.train")
SAMPLES_FILE = "accuracy_samples.json"
HELDOUT_FILE = "accuracy_heldout.json"
HELDOUT_VAL_FILE = "accuracy_heldout_val.json"
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


def _measure_into(loaded: LoadedSupernet, data, path: Path, archs: list[str], header: dict,
                  workers: int, desc: str) -> dict:
    """Top-1 of each arch on ``header['split']``, appended to ``path`` as they are measured
    (a rerun continues after the last saved one)."""
    rec = read_json(path, "accuracy samples", DataError) if path.exists() else {
        **header, "samples": []}
    for k, v in header.items():
        if rec.get(k) != v:
            raise DataError(f"{path} was measured with {k}={rec.get(k)!r}, not {v!r}; remove it "
                            "to measure again")
    done = len(rec["samples"])
    todo = archs[done:]
    t0 = time.perf_counter()
    accs = subnet_accuracies(loaded, data, todo, header["split"], header.get("val_limit"),
                             workers, path.parent)
    for i, (arch, acc) in enumerate(progress(zip(todo, accs), total=len(todo), desc=desc),
                                    done + 1):
        rec["samples"].append({"arch": arch, "acc": round(acc, 5)})
        if i % 10 == 0 or i == len(archs):
            rec["wall_s"] = round(rec.get("wall_s", 0.0) + time.perf_counter() - t0, 1)
            t0 = time.perf_counter()
            atomic_write_json(path, rec)
            log.info("%s: %d/%d subnets", desc, i, len(archs))
    return rec


def measure_samples(loaded: LoadedSupernet, data, path: Path, n: int, val_limit: int,
                    seed: int = 0, workers: int = 1) -> dict:
    """Validation top-1 of ``n`` random subnets: the predictor's training data."""
    space = loaded.space
    genomes = space.canonical_genomes(space.sample_genomes(np.random.default_rng([seed, 7]), n))
    archs = [str(space.from_genome(g)) for g in genomes]
    return _measure_into(loaded, data, path, archs, {"split": "val", "val_limit": val_limit,
                         "calib_batches": CALIB_BATCHES, "seed": seed}, workers,
                         "measure subnets")


def measure_heldout(loaded: LoadedSupernet, data, path: Path, n: int, exclude: set[str],
                    seed: int = 0, workers: int = 1) -> dict:
    """Top-1 on the whole test split of ``n`` random subnets outside ``exclude``: the
    predictor's held-out set, on images and subnets it never saw."""
    space = loaded.space
    rng = np.random.default_rng([seed, 11])
    archs: list[str] = []
    while len(archs) < n:
        for g in space.canonical_genomes(space.sample_genomes(rng, n)):
            a = str(space.from_genome(g))
            if a not in exclude and a not in archs and len(archs) < n:
                archs.append(a)
    return _measure_into(loaded, data, path, archs, {"split": "test", "val_limit": None,
                         "calib_batches": CALIB_BATCHES, "seed": seed}, workers,
                         "measure held-out subnets")


def measure_heldout_val(loaded: LoadedSupernet, data, ckpt_dir: Path, val_limit: int,
                        workers: int = 1) -> dict:
    """Validation top-1 of the held-out subnets: the quantity the predictor is fitted to
    (``measure_samples``), on subnets it never saw, so that it can be scored on that too."""
    held = read_json(ckpt_dir / HELDOUT_FILE, "held-out subnets", DataError)["samples"]
    return _measure_into(loaded, data, ckpt_dir / HELDOUT_VAL_FILE, [s["arch"] for s in held],
                         {"split": "val", "val_limit": val_limit, "calib_batches": CALIB_BATCHES,
                          "of": HELDOUT_FILE}, workers, "measure held-out subnets (val)")


def _score(pred, space, samples: list[dict]) -> dict:
    g = space.to_genomes([space.parse(s["arch"]) for s in samples])
    acc = np.array([s["acc"] for s in samples])
    p = pred.predict_genomes(g)
    return {"kendall_tau": round(kendall_tau(p, acc), 4),
            "rmse": round(float(np.sqrt(np.mean((p - acc) ** 2))), 5)}


def fit_from_samples(space, rec: dict, heldout: dict | None = None, holdout: float = 0.25,
                     kind: str = "gp", hyper: dict | None = None):
    """Fit the predictor and score it on subnets it was not fitted on.

    With ``heldout`` (``measure_heldout``'s record) it is fitted on every validation sample and
    scored on those test-split subnets; without, the last ``holdout`` share of the samples is
    kept out of the fit and scored instead.
    """
    samples = rec["samples"]
    cut = len(samples) if heldout else int(round(len(samples) * (1 - holdout)))
    fit = samples[:cut]
    held = heldout["samples"] if heldout else samples[cut:]
    genomes = space.to_genomes([space.parse(s["arch"]) for s in fit])
    pred = fit_accuracy_predictor(space, genomes, np.array([s["acc"] for s in fit]), kind=kind,
                                  hyper=hyper)
    acc = np.array([s["acc"] for s in samples])
    pred.stats = {**({"hyper": pred.stats["hyper"]} if "hyper" in pred.stats else {}),
                  "kind": kind, "n_fit": cut, "n_holdout": len(held), **_score(pred, space, held),
                  "acc_range": [float(acc.min()), float(acc.max())],
                  "fit_target": f"top-1 on {rec.get('val_limit')} validation images",
                  "target": ("top-1 on the whole test split (held-out subnets)" if heldout else
                             f"top-1 on {rec.get('val_limit')} validation images")}
    if heldout:
        pred.stats["heldout_file"] = HELDOUT_FILE
    return pred


def _predictor_outdated(stats: dict | None, samples_path: Path, acc_samples: int,
                        acc_model: str) -> bool:
    """No predictor yet, one of another kind than asked for, or fewer measured subnets on disk
    than asked for: a rerun with a bigger ``--acc-samples`` measures only the new ones and
    refits."""
    if not stats or stats.get("kind", "ridge") != acc_model or not samples_path.exists():
        return True
    return len(read_json(samples_path, "accuracy samples", DataError)["samples"]) < acc_samples


def _previous_hyper(out: Path, acc_model: str) -> dict | None:
    """The kernel hyperparameters of the GP already in ``out``, for a top-up to reuse."""
    if acc_model != "gp" or not (out / PREDICTOR_FILE).exists():
        return None
    from hwnas.predict.accuracy_gp import GPAccuracyPredictor, hyper_of

    try:
        old = load_accuracy_predictor(out)
    except DataError:
        return None
    if not isinstance(old, GPAccuracyPredictor):
        return None
    return old.stats.get("hyper") or hyper_of(old, int(old.stats.get("n_fit", 0)))


def check_finish_options(acc_samples: int = 200, val_limit: int = 2000, seed: int = 0,
                         workers: int = 1, acc_heldout: int = 100, acc_model: str = "gp") -> None:
    """The options of ``finish_checkpoint`` in range (checked before training starts)."""
    from hwnas.predict.accuracy import ACC_MODELS

    check_int(acc_samples, "acc_samples (subnets measured to fit the accuracy predictor)", 0,
              error=DataError)
    check_int(acc_heldout, "acc_heldout (held-out subnets)", 0, error=DataError)
    check_int(val_limit, "val_limit (validation images per subnet)", 1, error=DataError)
    check_int(workers, "workers (measuring processes)", 1, 512, DataError)
    check_seed(seed, DataError)
    ACC_MODELS.get(acc_model)


def finish_checkpoint(out: str | Path, net, meta: dict, data, acc_samples: int = 200,
                      val_limit: int = 2000, seed: int = 0, workers: int = 1,
                      acc_heldout: int = 100, acc_model: str = "gp") -> dict:
    """Run the post-training phases that ``out`` has not finished yet; returns the metadata."""
    check_finish_options(acc_samples, val_limit, seed, workers, acc_heldout, acc_model)
    out = Path(out)
    if not meta["train"].get("finished"):
        _store_half(out, net, meta)
    from hwnas.spaces import space_from_config

    loaded = LoadedSupernet(space_from_config(meta["space"]), net.eval(), meta)
    if "accuracy" not in meta:
        meta["accuracy"] = measure_reference_subnets(loaded, data, out, workers=workers)
        write_meta(out, meta)
        log.info("accuracy: %s", meta["accuracy"])
    pred = None
    if acc_samples > 0 and _predictor_outdated(meta.get("accuracy_predictor"), out / SAMPLES_FILE,
                                               acc_samples, acc_model):
        rec = measure_samples(loaded, data, out / SAMPLES_FILE, acc_samples, val_limit, seed,
                              workers)
        held = None
        if acc_heldout > 0:
            held = measure_heldout(loaded, data, out / HELDOUT_FILE, acc_heldout,
                                   {s["arch"] for s in rec["samples"]}, seed, workers)
        t0 = time.perf_counter()
        pred = fit_from_samples(loaded.space, rec, held, kind=acc_model,
                                hyper=_previous_hyper(out, acc_model))
        pred.stats["fit_s"] = round(time.perf_counter() - t0, 1)
        pred.save(out / PREDICTOR_FILE)
        meta["accuracy_predictor"] = {"file": PREDICTOR_FILE,
                                      **{k: v for k, v in pred.stats.items() if k != "hyper"},
                                      "n_samples": len(rec["samples"]),
                                      "measure_wall_s": rec.get("wall_s"),
                                      "heldout_measure_wall_s": (held or {}).get("wall_s")}
        write_meta(out, meta)
    if acc_samples > 0 and acc_heldout > 0 and (out / HELDOUT_FILE).exists() and \
            "kendall_tau_val" not in meta.get("accuracy_predictor", {}):
        rec = measure_heldout_val(loaded, data, out, val_limit, workers)
        pred = pred or load_accuracy_predictor(out)
        score = _score(pred, loaded.space, rec["samples"])
        pred.stats.update(kendall_tau_val=score["kendall_tau"], rmse_val=score["rmse"])
        pred.save(out / PREDICTOR_FILE)
        meta["accuracy_predictor"].update(kendall_tau_val=score["kendall_tau"],
                                          rmse_val=score["rmse"],
                                          heldout_val_measure_wall_s=rec.get("wall_s"))
        write_meta(out, meta)
        log.info("held-out subnets, validation split: Kendall tau %.4f", score["kendall_tau"])
    return meta
