"""Journeys that measure a device: a few-shot latency predictor of a new device (adapt)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hwnas.api._arguments import _check_target_name, _database_dir
from hwnas.api.lookup import _space, connect, load_target
from hwnas.errors import HwnasError


def adapt(target: str, space: Any = None, *, measure: int | None = None,
          csv: str | os.PathLike | None = None, sources: list[str] | None = None,
          rpc: str | None = None, tracker: str | None = None, key: str | None = None,
          out: str | os.PathLike | None = None, rounds: int = 3, workers: int = 2,
          seed: int = 0, tuning_dir: str | os.PathLike | None = "auto") -> dict:
    """Fit and save the few-shot latency predictor of a new device; returns its report.

    Either ``measure`` networks are chosen spread over the space's cost features, compiled
    (with the target's tuning database, ``tuning_dir="auto"``, as deploy compiles) and timed on
    the device (this machine, ``rpc="host:port"`` or a ``tracker`` and ``key``), or ``csv``
    names the user's own measurements (``arch,latency_ms[,batch]``). ``space`` is a name or a
    ``SearchSpace`` (None: the default space). ``sources`` are other devices (default: the
    published ones where the space has them, else every other target's table for the space);
    the target itself is refused. Writes ``<space>.fewshot.json`` beside the
    target's tables (or ``out``) only once everything has been checked and fitted.
    """
    import time

    from hwnas._checks import check_int, check_seed
    from hwnas.predict.adapt import (MIN_SAMPLES, fewshot_file, fit_fewshot, leave_one_out,
                                     read_measurements, resolve_sources)

    if (measure is None) == (csv is None):
        raise HwnasError("adapting needs either a number of networks to measure or a CSV "
                         "file of measurements (exactly one of them)")
    if measure is not None and (not isinstance(measure, int) or isinstance(measure, bool)
                                or measure < MIN_SAMPLES):
        raise HwnasError(f"few-shot adaptation needs at least {MIN_SAMPLES} measured "
                         f"networks, got {measure!r}")
    check_int(rounds, "timing rounds per network", 1)
    check_int(workers, "compile workers (0: in-process)", 0)
    check_seed(seed)
    _check_target_name(target)
    sp = _space(space)
    if out is None or measure is not None:      # writes beside the target's tables
        from hwnas import _data

        _data.write_dir("latency_tables")
    path = Path(out) if out is not None else fewshot_file(target, sp.name, for_writing=True)
    _check_replaceable(path, target, sp)
    t0 = time.perf_counter()
    src = resolve_sources(target, sp, sources)
    reference = None
    if csv is not None:
        meas, device = read_measurements(csv, sp), f"measurements from {csv}"
    else:
        meas, device, reference = _measure_samples(target, sp, measure, src, rpc, tracker, key,
                                                   rounds, workers, seed, tuning_dir)
    pred = fit_fewshot(sp, target, meas, src)
    loo = leave_one_out(pred)
    report = _adapt_report(target, sp, meas, src, pred, loo, device, path,
                           time.perf_counter() - t0)
    if reference is not None:
        # the samples' unit: each is its ratio to this network x this quiet time
        report["reference"] = reference
    pred.save(path, report)
    if csv is None:
        from hwnas.profile.samples import samples_path

        samples_path(target, sp.name).unlink(missing_ok=True)   # its networks are saved now
    return report


def _check_replaceable(path: Path, target: str, sp) -> None:
    """A saved predictor of another device or space configuration is not replaced."""
    from hwnas._io import read_json
    from hwnas.errors import TableError

    if not path.exists():
        return
    if path.is_dir():
        raise TableError(f"{path} is a folder, not a few-shot predictor file; choose a file path")
    try:
        old = read_json(path, "few-shot predictor", TableError)
    except TableError:
        old = None                             # a file of the user's, not a corrupt predictor
    device = (old.get("provenance") or {}).get("target") if isinstance(old, dict) else None
    if not isinstance(old, dict) or old.get("kind") != "fewshot":
        raise TableError(f"{path} exists and is not a few-shot predictor; choose another file")
    if old.get("space") != sp.config() or device not in (None, target):
        raise TableError(f"{path} holds the few-shot predictor of '{device}' for space "
                         f"{old.get('space')}, not '{target}' for {sp.config()}; remove it or "
                         "choose another file")


def _measure_samples(target, sp, k, src, rpc, tracker, key, rounds, workers, seed, tuning_dir):
    from hwnas.predict.adapt import Measurements
    from hwnas.profile.samples import informative_archs, measure_samples, samples_path
    from hwnas.runtime import backend_of

    tgt = load_target(target)
    archs = informative_archs(sp, k, seed, src.tables or None)
    db = _database_dir(tgt, tuning_dir) if backend_of(tgt).tuned else None
    with connect(tgt, rpc, tracker, key) as runtime:
        device = runtime.describe()
        spath = samples_path(target, sp.name)
        recs = measure_samples(sp, tgt, runtime, archs, spath, rounds, workers, db)
    from hwnas._io import read_json
    from hwnas.errors import TableError

    ref = (read_json(spath, "samples file", TableError).get("meta") or {}).get("reference")
    reference = ({k: ref[k] for k in ("arch", "quiet_ms", "busy_cores", "contended") if k in ref}
                 if isinstance(ref, dict) and ref.get("quiet_ms") else None)
    loads = [r["load"] for r in recs if r.get("load") is not None]
    how = (f"drift-corrected against the reference network (device load x{min(loads):.2f}"
           f"–x{max(loads):.2f})" if loads and len(loads) == len(recs) else "raw (no reference)")
    meas = Measurements.from_pairs([(r["arch"], r["median_ms"]) for r in recs],
                                   f"measured on {device}, {how}", tuning_dir=db)
    return meas, device, reference


def _adapt_report(target, sp, meas, src, pred, loo, device, path, wall_s) -> dict:
    from hwnas._versions import versions
    from hwnas.predict.adapt import POOR_LOO
    from hwnas.profile.meta import now_iso

    return {"target": target, "space": sp.config(), "path": str(path), "k": len(meas.archs),
            "device": device, "origin": meas.origin,
            "tuning_dir": meas.tuning_dir,
            "batch": meas.batch, "duplicates": meas.duplicates,
            "samples": [{"arch": a, "latency_ms": float(v)}
                        for a, v in zip(meas.archs, meas.latency_ms)],
            "sources": list(src.used), "skipped_sources": dict(src.skipped),
            "source_kind": src.kind, "model": pred.summary(), "leave_one_out": loo,
            "poor": bool(loo["mean_abs_rel_error"] > POOR_LOO), "poor_threshold": POOR_LOO,
            "created": now_iso(), "wall_s": round(wall_s, 2), "versions": versions()}
