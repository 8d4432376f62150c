"""The front door: the three journeys from Python, as the CLI runs them.

Deploy under 0.6 ms on this machine::

    import hwnas
    manifest = hwnas.deploy("x86-host", latency_ms=0.6, out="bundle")
    print(manifest["arch"], manifest["latency"]["measured"]["median_ms"])

Every function raises an ``hwnas.errors.HwnasError`` subclass with a one-line message on bad
input; nothing here imports torch, TVM or onnxruntime before it is called.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from hwnas.errors import BudgetError, HwnasError

__all__ = ["list_targets", "list_spaces", "list_predictors", "list_strategies",
           "list_accuracy_sources", "list_checkpoints", "get_space", "load_target",
           "load_supernet", "load_predictor", "connect", "adapt", "search", "export", "deploy"]


# ---------------------------------------------------------------------------- catalogues
def list_targets() -> list[str]:
    """Device targets (``targets/*.toml`` in the data folders)."""
    from hwnas.targets import list_targets as _list

    return _list()


def list_spaces(configurations: bool = False) -> list[str]:
    """Registered search spaces; with ``configurations``, also each named configuration
    (``<space>-<configuration>``), which every verb accepts as a space name too."""
    from hwnas.spaces import space_names

    return space_names(configurations)


def list_predictors() -> list[str]:
    """Registered latency predictors."""
    from hwnas.predict import PREDICTORS

    return PREDICTORS.names()


def list_strategies() -> list[str]:
    """Registered search strategies."""
    from hwnas.search import STRATEGIES

    return STRATEGIES.names()


def list_accuracy_sources() -> list[str]:
    """Registered accuracy sources (each space configuration names those it accepts)."""
    from hwnas.predict.accuracy_sources import ACCURACY_SOURCES

    return ACCURACY_SOURCES.names()


def list_checkpoints() -> list[str]:
    """Shipped (and ``$HWNAS_DATA``) supernet checkpoints."""
    from hwnas._data import list_checkpoints as _list

    return _list()


# ---------------------------------------------------------------------------- nouns
def get_space(name: str, **config):
    """A registered search space by name (``list_spaces(True)``), with its options as keywords,
    e.g. ``get_space(name, resolutions=[16, 20, 24, 28])``."""
    from hwnas.spaces import get_space as _get

    return _get(name, **config)


def _space(space: Any):
    """A ``SearchSpace`` from a name, None (the default space) or a space itself."""
    from hwnas.spaces import DEFAULT_SPACE

    return get_space(space or DEFAULT_SPACE) if space is None or isinstance(space, str) else space


def load_target(name_or_path: str | os.PathLike):
    """A device ``Target`` from ``targets/<name>.toml`` or a ``.toml`` path."""
    from hwnas.targets import load_target as _load

    _check_target_name(name_or_path)
    return _load(name_or_path)


def load_supernet(checkpoint: str | os.PathLike | None = None):
    """``(space, supernet, meta)`` of a checkpoint folder or shipped name (None: the default
    space's shipped checkpoint), or of a ``.pth`` file of Once-for-All's published format
    (its configuration inferred from its shapes)."""
    from hwnas.train.checkpoint import load_supernet as _load

    return _load(checkpoint)


def load_predictor(target: str, space: Any = None, kind: str = "auto", *,
                   allow_emulated: bool = False):
    """The latency predictor of ``target`` for ``space`` (a name or a ``SearchSpace``, such as
    ``load_supernet().space``; None: the default space); ``kind`` is ``auto``, ``table``, ``calibrated`` or
    ``fewshot``. Its ``selection`` says which one ``auto`` chose and why. A table measured
    on an emulated device is refused unless ``allow_emulated``."""
    from hwnas.predict import load_predictor as _load

    _check_target_name(target)
    return _load(target, space, kind, allow_emulated=allow_emulated)


def connect(target, rpc: str | None = None, tracker: str | None = None, key: str | None = None,
            runtime: str | None = None):
    """The runtime that measures on ``target``'s device: this machine, an RPC server
    (``rpc="host:port"``) or a tracker (``tracker="host:port"``, ``key``)."""
    from hwnas.runtime import connect as _connect

    _check_target_name(target)
    target = load_target(target) if isinstance(target, (str, os.PathLike)) else target
    return _connect(target, rpc, tracker, key, runtime)


# ---------------------------------------------------------------------------- journeys
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


def _budget_ms(value, what: str = "latency budget") -> float:
    if isinstance(value, bool):             # True is not 1 ms
        raise BudgetError(f"{what} must be a number of milliseconds, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise BudgetError(f"{what} must be a number of milliseconds, got {value!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise BudgetError(f"{what} must be a positive, finite number of ms, got {value!r}")
    return v


def _check_target_name(target, optional: bool = False) -> None:
    """A target is a name or a ``.toml`` path (or a loaded ``Target``), never another type."""
    from hwnas.errors import TargetError
    from hwnas.targets import Target

    if (target is None and optional) or isinstance(target, (str, os.PathLike, Target)):
        return
    raise TargetError(f"a target is a name (see list_targets()) or a .toml path, got "
                      f"{type(target).__name__} {target!r}")


def _check_numbers(error: type[HwnasError] = HwnasError, **values) -> None:
    """Numbers given from Python: a bool is no number, and NaN or inf no count or fraction
    (None: the default). Ranges are checked where each value is used."""
    import numbers

    for name, v in values.items():
        if v is not None and (isinstance(v, bool) or not isinstance(v, numbers.Real)
                              or not math.isfinite(v)):
            raise error(f"{name} must be a finite number, got {v!r}")


def search(target: str | None, latency_ms: float | str | dict[str, float], *,
           space: Any = None, checkpoint: str | os.PathLike | None = None,
           strategy: str = "evolution", objective: str = "auto", predictor: str = "auto",
           margin: float | None = None, quantile: float = 0.9, max_params: float | None = None,
           max_mflops: float | None = None, max_act_kb: float | None = None,
           report_targets=(), seed: int = 0, out: str | os.PathLike | None = None,
           force: bool = False, allow_emulated: bool = False, accuracy: Any = None,
           **options) -> dict:
    """The best predicted architecture under the budgets; returns what ``arch.json`` holds.

    ``predictor`` is the latency predictor kind of every target (``auto``, ``table``,
    ``calibrated`` or ``fewshot``); the result's ``latency_predictor_choice`` says which one
    each target got and why.
    ``latency_ms`` is a number of ms on ``target``, a spec such as ``"x86-host=6,rpi4=40"``,
    or a ``{target: ms}`` dict. ``space`` is a name or a ``SearchSpace`` (None: the default
    space, or the checkpoint's); a ``checkpoint`` selects its space configuration (and its accuracy predictor scores the archs). An
    impossible budget raises ``BudgetError`` at once, naming the fastest reachable latency.
    With ``out`` the arch, Pareto front, plot and history are written there (a new or empty
    folder, or an earlier search output that holds only hwnas's files; with ``force`` any
    folder, whose other files are kept), under a lock that refuses a second run into it.
    Latency tables measured on an emulated device are refused unless ``allow_emulated``.
    ``accuracy`` names the accuracy source (``list_accuracy_sources()``, or an
    ``AccuracySource``); None: the first the space's configuration accepts that has data. The
    result's ``accuracy`` names the source and says whether the figure is measured or
    predicted, and whether it is an extrapolation.
    """
    from hwnas._checks import check_seed
    from hwnas.search import STRATEGIES, Constraints, LatencyBudget, parse_latency_spec
    from hwnas.spaces import resolve_space_name

    STRATEGIES.get(strategy)                     # an unknown name fails before anything loads
    if isinstance(space, str):
        resolve_space_name(space)
    _check_target_name(target, optional=True)
    if isinstance(report_targets, (str, bytes)) or not all(
            isinstance(t, str) for t in report_targets):
        raise BudgetError(f"report_targets is a list of target names, got {report_targets!r}")
    check_seed(seed, BudgetError)
    if isinstance(latency_ms, dict):
        budgets = tuple(LatencyBudget(t, _budget_ms(v, f"latency budget of {t}"))
                        for t, v in latency_ms.items())
    elif isinstance(latency_ms, str):
        budgets = parse_latency_spec(latency_ms, target)
    elif isinstance(latency_ms, (list, tuple, set)):
        raise BudgetError(f"latency_ms is a number of ms, a spec such as 'a=5,b=9' or a "
                          f"{{target: ms}} dict, got the {type(latency_ms).__name__} "
                          f"{latency_ms!r}")
    else:
        if target is None:
            raise BudgetError("a latency budget in ms needs a target")
        budgets = (LatencyBudget(target, _budget_ms(latency_ms)),)
    cons = Constraints(budgets, max_params, max_mflops, max_act_kb, margin, quantile)
    with _claim(out, "search", force):          # held until the result is written
        return _search_under(target, space, cons, checkpoint, strategy, objective, predictor,
                             report_targets, seed, allow_emulated, options, out, force, accuracy)


def _claim(out, kind: str, force: bool):
    """The lock of the output folder ``out`` once it passed its checks (None: no output)."""
    import contextlib

    from hwnas._outputs import check_output_dir, claim_output

    if out is None:
        return contextlib.nullcontext()
    return claim_output(check_output_dir(out, kind, force))


def _search_under(target, space, cons, checkpoint, strategy, objective, predictor,
                  report_targets, seed, allow_emulated, options, out, force, accuracy) -> dict:
    from hwnas.search import STRATEGIES, build_problem, write_outputs
    from hwnas.search import search as _search
    from hwnas.spaces import DEFAULT_SPACE, space_plugin

    if checkpoint is not None:        # its weights too: a broken file fails now, not at export
        sp = load_supernet(checkpoint).space
        if space is None or isinstance(space, str):
            if space is not None and space_plugin(space) is not space_plugin(sp):
                raise HwnasError(f"checkpoint {checkpoint} is for space '{sp.name}', not "
                                 f"'{space}'")
            space = sp
    elif space is None:
        space = DEFAULT_SPACE
    extra = [t for t in ([target] if target else []) + list(report_targets)]
    problem = build_problem(space, cons, extra, objective, checkpoint, predictor, allow_emulated,
                            accuracy)
    if checkpoint is not None and "checkpoint" in STRATEGIES.get(strategy).Options.__dataclass_fields__:
        options.setdefault("checkpoint", str(checkpoint))   # gradient strategies' supernet too
    result = _search(strategy, problem, seed=seed, **options)
    if out is not None:
        return write_outputs(out, problem, result, {"seed": seed}, force=force)
    best = problem.describe(result.best)
    best.update({"strategy": result.strategy, "evaluations": result.n_evals,
                 "search_wall_s": round(result.wall_s, 3), "seed": seed})
    return best


def export(arch: str | dict, target: str, out: str | os.PathLike, *,
           checkpoint: str | os.PathLike | None = None, space: Any = None,
           tuning_db: str | os.PathLike | None = "auto", runtime=None,
           force: bool = False) -> dict:
    """Export ``arch`` (its string, or an ``arch.json`` dict) as a checked, compiled bundle in
    ``out`` and return its manifest.

    The subnet inherits the ``checkpoint``'s weights (None: random weights, said so in the
    manifest); ``space`` defaults to the checkpoint's, else the arch.json's ``space_config``,
    else the default space's defaults. ``tuning_db`` is ``"auto"`` (the target's own tuning
    database, ``latency_tables/<target>/tuning/``, when it has one), None (untuned code) or a
    database folder. With a ``runtime`` (``connect(...)``) the library is also measured on the
    device. The manifest says how many kernels run tuned schedules, and its ``accuracy``
    names where the stated top-1 comes from and whether it is measured or predicted (the
    weights' own on the held-out split, else the search's figure from ``arch.json``). ``out``
    must be new, empty or an earlier bundle that holds only hwnas's files; it is replaced as a
    whole (``force``: any folder, whose other files are kept beside the bundle).
    """
    from hwnas._outputs import check_output_dir

    from hwnas.export.bundle import BundleRequest, export_bundle
    from hwnas.export.manifest_accuracy import manifest_accuracy
    from hwnas.export.weights import subnet_with_weights
    from hwnas.compiler.database import describe_database, load_database, resolve_database
    from hwnas.runtime import backend_of
    from hwnas.spaces import DEFAULT_SPACE, SearchSpace, get_space as _get, space_from_config

    _check_target_name(target)
    check_output_dir(out, "bundle", force)
    arch_json = arch if isinstance(arch, dict) else None
    text = arch_json.get("arch") if arch_json else arch
    if not isinstance(text, str):
        from hwnas.errors import ArchError

        raise ArchError("an arch is its string, or an arch.json object with an 'arch' string")
    tgt = load_target(target) if isinstance(target, (str, os.PathLike)) else target
    backend_of(tgt)                               # an unknown runtime: refused now
    db_dir = resolve_database(tgt, tuning_db)     # a database of another device: refused now
    loaded = load_supernet(checkpoint) if checkpoint is not None else None
    if isinstance(space, SearchSpace):
        sp = space
    elif loaded is not None:
        sp = loaded.space
    elif arch_json and arch_json.get("space_config") is not None:
        sp = space_from_config(arch_json["space_config"])
    else:
        sp = _get(space or DEFAULT_SPACE)
    parsed = sp.parse(text)
    # loaded only once the arch is known good: a bad arch is one line, not a database warning
    database = load_database(db_dir, required=True, target=tgt) if db_dir else None
    model, weights = subnet_with_weights(sp, parsed, loaded)
    searched = arch_json.get("accuracy") if arch_json and arch_json.get("arch") == str(parsed) \
        else None
    return export_bundle(BundleRequest(sp, parsed, model, tgt, Path(out), weights,
                                       database=database, database_info=describe_database(db_dir),
                                       runtime=runtime, force=force,
                                       extra={"accuracy": manifest_accuracy(weights, searched)}))


def _database_dir(target, choice) -> str | None:
    from hwnas.compiler.database import resolve_database

    found = resolve_database(target, choice)
    return None if found is None else str(found)


def deploy(target: str, latency_ms: float, out: str | os.PathLike = "bundle", *,
           checkpoint: str | os.PathLike | None = None, rpc: str | None = None,
           tracker: str | None = None, key: str | None = None, max_rounds: int = 4,
           slack: float = 0.10, agree: float = 0.10, strategy: str = "evolution",
           margin: float | None = None,
           tune: int = 0, tuning_dir: str | os.PathLike | None = "auto", seed: int = 0,
           force: bool = False, predictor: str = "auto", profile_networks: int = 20,
           allow_emulated: bool = False, contended_margin: float | None = None) -> dict:
    """Search, export, compile and measure on the device until a bundle meets ``latency_ms``
    (the closed loop); returns the bundle's manifest. The device is this machine, or an RPC
    server (``rpc="host:port"``) or tracker (``tracker``, ``key``) for remote targets.

    Code is compiled with the target's tuning database (``tuning_dir="auto"``; None compiles
    untuned code, and the table must describe the same code); ``tune`` trials per kernel top
    the database up with each round's subnet first. ``predictor`` is the latency predictor
    kind (``auto``, ``table``, ``calibrated`` or ``fewshot``); a few-shot predictor needs no
    operator table, and takes each measured bundle as one more sample. The manifest's
    ``deploy.predictor`` says which predictor was used and how measurements were fed back.
    A target without a fitting latency table is profiled first, with ``profile_networks``
    whole networks.

    An emulated device (one that reports an emulator, such as ``hwnas device emulate``) and
    tables measured on one are refused unless ``allow_emulated``; the bundle's report then
    says that its latencies are the emulator's.

    A bundle timed while other processes held a core of the device is judged
    ``contended_margin`` slower than it read (None: the loop's ``CONTENDED_MARGIN``)."""
    from dataclasses import replace

    from hwnas import _data
    from hwnas.deploy.loop import CONTENDED_MARGIN, DeployConfig, deploy as _deploy

    budget = _budget_ms(latency_ms)
    _check_target_name(target)
    _check_numbers(BudgetError, max_rounds=max_rounds, slack=slack, agree=agree, margin=margin,
                   tune=tune, seed=seed, profile_networks=profile_networks,
                   contended_margin=contended_margin)
    _data.write_dir("latency_tables")      # a table (or tuning) deploy writes goes there
    tgt = load_target(target) if isinstance(target, (str, os.PathLike)) else target
    if tgt.is_cross and not (rpc or tracker or tgt.device.startswith(("rpc://", "tracker://"))):
        from hwnas.errors import DeviceError

        raise DeviceError(f"target '{tgt.name}' runs on a remote device: give an RPC server "
                          f"(HOST:PORT) or a tracker and device key to measure the bundle on")
    cfg = DeployConfig(target=tgt, budget_ms=budget, out=Path(out), checkpoint=checkpoint,
                       runtime=None, max_rounds=max_rounds, slack=slack, agree=agree,
                       strategy=strategy,
                       margin=margin, seed=seed,
                       tuning_dir=_database_dir(tgt, tuning_dir),
                       tune_trials=tune, force=force, predictor=predictor,
                       profile_networks=profile_networks, allow_emulated=allow_emulated,
                       contended_margin=CONTENDED_MARGIN if contended_margin is None
                       else contended_margin)
    cfg.validate()
    with _claim(cfg.out, "bundle", force):       # held until the bundle is in place
        cfg = replace(cfg, runtime=connect(tgt, rpc, tracker, key))
        try:
            return _deploy(cfg)
        finally:
            cfg.runtime.close()
