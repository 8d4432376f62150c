"""Journeys that measure a device: its operator latency table (profile), its tuning database
(tune), and a few-shot latency predictor of a new device (adapt)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

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
    from hwnas.profile.reference_network import lower_quiet_time
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
    recs = [dict(r) for r in recs]
    lowered = lower_quiet_time(recs, reference)
    loads = [r["load"] for r in recs if r.get("load") is not None]
    how = (f"drift-corrected against the reference network (device load x{min(loads):.2f}"
           f"–x{max(loads):.2f})" if loads and len(loads) == len(recs) else "raw (no reference)")
    if lowered != 1.0:
        how += (f"; its quiet time lowered x{lowered:.2f} to the fastest it ran (the probe "
                "caught a slow moment)")
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


def tune(target: str, space: Any = None, *, minutes: float | None = None, resume: bool = False,
         work_dir: str | os.PathLike | None = None, out: str | os.PathLike | None = None,
         snapshot_minutes=(), transfer: str = "auto", seed: int = 0,
         on_progress: Callable[[dict], None] | None = None):
    """Tune every kernel ``space`` can produce (a name or a ``SearchSpace``; None: the default
    space) once for ``target``, so that every subnet ships tuned code; returns the run's
    ``SpaceTuneReport``.

    Every trial is kept in ``work_dir`` (default ``~/.cache/hwnas/tuning/<target>``, or
    ``$HWNAS_CACHE``; ``<target>-<configuration>`` for another configuration than the default),
    and the best records are published to ``out`` (default the target's own database,
    ``latency_tables/<target>/tuning/``, or ``tuning-<cpu>/`` beside it when that holds another
    CPU's database; a configuration other than the default goes into its own folder inside it,
    such as ``tuning-znver4/ofa-mbv3-imagenet/``). The run stops cleanly after ``minutes`` (None: when every
    kernel is tuned); ``resume`` continues the run in the work folder; the database is copied
    at each of ``snapshot_minutes``. ``transfer="auto"`` first times every other CPU model's
    schedules here on a CPU model with no database of its own (``"none"``: tune from scratch).
    ``on_progress`` receives a dict (phase, done, total, elapsed and ETA) after each step.
    """
    from hwnas._checks import check_number
    from hwnas.compiler.database import database_dir
    from hwnas.compiler.database import work_dir as default_work_dir
    from hwnas.compiler.space_tuning import tune_space

    if minutes is not None:
        check_number(minutes, "minutes of tuning", 0, above=True)
    if isinstance(snapshot_minutes, (str, bytes)):
        raise HwnasError(f"snapshot_minutes is a list of minutes, got {snapshot_minutes!r}")
    for m in snapshot_minutes:
        check_number(m, "snapshot minutes", 0, above=True)
    if out is None:
        from hwnas import _data

        _data.write_dir("latency_tables")     # created now when it does not exist yet
    tgt = check_tunable(target)
    sp = _space(space)
    work = work_dir or default_work_dir(tgt, sp)
    out = out or database_dir(tgt, for_writing=True, space=sp)
    return tune_space(sp, tgt, work, out, op_cost_ms=_op_costs(tgt, sp), minutes=minutes,
                      resume=resume, seed=seed, snapshot_minutes=list(snapshot_minutes),
                      on_progress=on_progress, transfer=transfer)


def check_tunable(target):
    """``target`` (a name, a ``.toml`` path or a ``Target``) loaded, refused unless its runtime
    compiles with a tuning database."""
    from hwnas.runtime import backend_of

    _check_target_name(target)
    tgt = load_target(target) if isinstance(target, (str, os.PathLike)) else target
    backend = backend_of(tgt)
    if not backend.tuned:
        raise HwnasError(f"target '{tgt.name}' does not compile with a tuning database "
                         f"(runtime '{backend.name}'); nothing to tune")
    return tgt


def _op_costs(target, space) -> dict[str, float] | None:
    """The space's operators' untuned latencies, which weigh each kernel's trials: from the
    target's untuned table (``<space>.untuned.json``), else its table, when it has one. (Once
    the table describes tuned code, its costs are flatter: weighted by them, the same tiers
    planned 14564 trials where the untuned costs plan 10200.)"""
    from hwnas.profile.table import LatencyTable, table_path

    path = table_path(target.name, space, ".untuned")
    if not path.exists():
        path = table_path(target.name, space)
    if not path.exists():
        return None
    table = LatencyTable.load(path)
    return {op.key: table.entries[op.key]["median_ms"] for op in space.op_list
            if op.key in table.entries}


@dataclass
class Profiled:
    """What ``profile`` did: the profiler's report (the table's path, coverage, timings, the
    per-wave load), the device, and the calibrated predictor fitted from the table."""

    report: Any                       # hwnas.profile.ProfileReport
    device: str                       # the runtime's description of the device
    tuning_dir: str | None            # the database the code was compiled with
    devices: str | None               # a tracker farm's tally: who measured what, who was lost
    wall_s: float
    cv_threshold: float               # a sample's coefficient of variation counted as noisy
    calibrated: Path | None           # the calibrated predictor saved beside the table
    not_calibrated: str | None        # why it was not fitted (None: fitted, or not for this space)


def profile(target: str, space: Any = None, *, rpc: str | None = None,
            tracker: str | None = None, key: str | None = None, runtime: str | None = None,
            parallel: int = 0, networks: int = 50, resume: bool = False,
            out: str | os.PathLike | None = None, workers: int = 2, batch: int = 8,
            limit: int | None = None, tuning_dir: str | os.PathLike | None = "auto",
            seed: int = 0, network_rounds: int = 5, remeasure_networks: bool = False,
            min_repeat_ms: float | None = None) -> Profiled:
    """Measure every operator of ``space`` (a name or a ``SearchSpace``; None: the default space)
    on ``target``'s device into its latency table, then ``networks`` whole random subnets (each
    in ``network_rounds`` interleaved rounds), and fit the calibrated predictor from them.

    The device is this machine, an RPC server (``rpc="host:port"``), or every free device
    registered under ``key`` at a ``tracker`` (at most ``parallel`` at once; 0: all), through
    the target's own runtime or ``runtime``. ``out`` is the table file (default
    ``latency_tables/<target>/<space>.json``, ``<space>.<runtime>.json`` for another runtime);
    ``resume`` completes an existing one. Code is compiled with the target's tuning database
    (``tuning_dir="auto"``; None: untuned). ``min_repeat_ms`` is the shortest sample (None: the
    measurement protocol's default).
    """
    import time

    from hwnas._checks import check_int
    from hwnas.profile import ProfileOptions
    from hwnas.profile import profile as _profile
    from hwnas.runtime import backend_of
    from hwnas.runtime.protocol import DEFAULT_PROTOCOL, Protocol

    check_int(parallel, "parallel (devices at once; 0: every free one)", 0)
    _check_target_name(target)
    if out is None:
        from hwnas import _data

        _data.write_dir("latency_tables")     # created now when it does not exist yet
    tgt = load_target(target) if isinstance(target, (str, os.PathLike)) else target
    sp = _space(space)
    db = _database_dir(tgt, tuning_dir) if backend_of(tgt).tuned else None
    protocol = DEFAULT_PROTOCOL if min_repeat_ms is None else Protocol(min_repeat_ms=min_repeat_ms)
    opts = ProfileOptions(networks=networks, resume=resume, workers=workers, batch=batch,
                          limit=limit, tuning_dir=db, seed=seed, network_rounds=network_rounds,
                          remeasure_networks=remeasure_networks, protocol=protocol)
    t0 = time.perf_counter()
    with _connect_profile(tgt, rpc, tracker, key, runtime, parallel) as rt:
        path = Path(out) if out is not None else _table_path(tgt, sp.name, rt.family)
        rep = _profile(sp, tgt, rt, path, opts)
    wall = time.perf_counter() - t0
    device = rt.describe()
    devices = rt.tally() if hasattr(rt, "tally") else None
    calibrated, why = _calibrate(Path(rep.path), sp)
    return Profiled(rep, device, opts.tuning_dir, devices, wall, opts.protocol.cv_threshold,
                    calibrated, why)


def _table_path(target, space_name: str, family: str) -> Path:
    """``<space>.json`` for the target's own runtime, ``<space>.<family>.json`` for another
    runtime ``family``; in ``cpu-<mcpu>/`` when the target's table was measured on another CPU
    model."""
    from hwnas.profile.table import table_path

    own = family == target.runtime
    return table_path(target.name, space_name, "" if own else f".{family}", for_writing=True)


def _calibrate(path: Path, space) -> tuple[Path | None, str | None]:
    """Fit the compiler-aware ``calibrated`` predictor from the networks this table holds for
    ``space`` and save it beside the table; (None, why) when there are too few, (None, None)
    when the table holds no networks of the space."""
    from hwnas.errors import TableError
    from hwnas.predict import calibrate_table
    from hwnas.profile.table import LatencyTable

    if LatencyTable.load(path).config_index(space) is None:
        return None, None
    try:
        return calibrate_table(path, space), None
    except TableError as exc:
        return None, str(exc)


def _check_tracker(target=None, runtime: str | None = None) -> None:
    """A runtime (``runtime``, else the target's) that measures only on this machine is refused
    through a tracker."""
    from hwnas.errors import TargetError
    from hwnas.runtime import backend_of

    backend = backend_of(target, runtime)
    if backend.local_only:
        raise TargetError(f"the {backend.name} runtime runs only on this machine, not through "
                          "a tracker")


def _connect_profile(target, rpc, tracker, key, runtime, parallel):
    """The runtime ``profile`` measures on: every free device under the key when a tracker is
    named (``tracker`` or a ``tracker://HOST:PORT/KEY`` target), else ``runtime.connect``."""
    from hwnas.runtime import connect as _connect

    if not tracker and not rpc and target.device.startswith("tracker://"):
        tracker, _, key = target.device[len("tracker://"):].partition("/")
    if not tracker:
        return _connect(target, rpc, None, None, runtime)
    _check_tracker(target, runtime)
    from hwnas.farm.scheduler import DeviceFarm

    return DeviceFarm(target, tracker, key, parallel or 0)
