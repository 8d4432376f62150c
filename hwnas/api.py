"""The front door: the three journeys from Python, as the CLI runs them.

Deploy under 6 ms on this machine::

    import hwnas
    manifest = hwnas.deploy("x86-host", latency_ms=6, out="bundle")
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
           "list_checkpoints", "get_space", "load_target", "load_supernet", "load_predictor",
           "connect", "search", "export", "deploy"]


# ---------------------------------------------------------------------------- catalogues
def list_targets() -> list[str]:
    """Device targets (``targets/*.toml`` in the data folders)."""
    from hwnas.targets import list_targets as _list

    return _list()


def list_spaces() -> list[str]:
    """Registered search spaces."""
    from hwnas.spaces import SPACES

    return SPACES.names()


def list_predictors() -> list[str]:
    """Registered latency predictors."""
    from hwnas.predict import PREDICTORS

    return PREDICTORS.names()


def list_strategies() -> list[str]:
    """Registered search strategies."""
    from hwnas.search import STRATEGIES

    return STRATEGIES.names()


def list_checkpoints() -> list[str]:
    """Shipped (and ``$HWNAS_DATA``) supernet checkpoints."""
    from hwnas._data import list_checkpoints as _list

    return _list()


# ---------------------------------------------------------------------------- nouns
def get_space(name: str, **config):
    """A registered search space, e.g. ``get_space("ofa-mbv3", resolutions=[16, 20, 24, 28])``."""
    from hwnas.spaces import get_space as _get

    return _get(name, **config)


def load_target(name_or_path: str | os.PathLike):
    """A device ``Target`` from ``targets/<name>.toml`` or a ``.toml`` path."""
    from hwnas.targets import load_target as _load

    return _load(name_or_path)


def load_supernet(checkpoint: str | os.PathLike | None = None):
    """``(space, supernet, meta)`` of a checkpoint folder or shipped name (None: the shipped
    ``ofa-mbv3-fmnist``)."""
    from hwnas.train.checkpoint import load_supernet as _load

    return _load(checkpoint)


def load_predictor(target: str, space: Any = "ofa-mbv3", kind: str = "auto", *,
                   allow_emulated: bool = False):
    """The latency predictor of ``target`` for ``space`` (a name or a ``SearchSpace``, such as
    ``load_supernet().space``); ``kind`` is ``auto``, ``table`` or ``calibrated``. A table
    measured on an emulated device is refused unless ``allow_emulated``."""
    from hwnas.predict import load_predictor as _load

    return _load(target, space, kind, allow_emulated)


def connect(target, rpc: str | None = None, tracker: str | None = None, key: str | None = None,
            runtime: str | None = None):
    """The runtime that measures on ``target``'s device: this machine, an RPC server
    (``rpc="host:port"``) or a tracker (``tracker="host:port"``, ``key``)."""
    from hwnas.runtime import connect as _connect

    target = load_target(target) if isinstance(target, (str, os.PathLike)) else target
    return _connect(target, rpc, tracker, key, runtime)


# ---------------------------------------------------------------------------- journeys
def _budget_ms(value, what: str = "latency budget") -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise BudgetError(f"{what} must be a number of milliseconds, got {value!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise BudgetError(f"{what} must be a positive, finite number of ms, got {value!r}")
    return v


def search(target: str | None, latency_ms: float | str | dict[str, float], *,
           space: Any = "ofa-mbv3", checkpoint: str | os.PathLike | None = None,
           strategy: str = "evolution", objective: str = "auto", predictor: str = "auto",
           margin: float | None = None, quantile: float = 0.9, max_params: float | None = None,
           max_mflops: float | None = None, max_act_kb: float | None = None,
           report_targets=(), seed: int = 0, out: str | os.PathLike | None = None,
           allow_emulated: bool = False, **options) -> dict:
    """The best predicted architecture under the budgets; returns what ``arch.json`` holds.

    ``latency_ms`` is a number of ms on ``target``, a spec such as ``"x86-host=6,rpi4=40"``,
    or a ``{target: ms}`` dict. ``space`` is a name or a ``SearchSpace``; a ``checkpoint``
    selects its space configuration (and its accuracy predictor scores the archs). An
    impossible budget raises ``BudgetError`` at once, naming the fastest reachable latency.
    With ``out`` the arch, Pareto front, plot and history are written there. Latency tables
    measured on an emulated device are refused unless ``allow_emulated``.
    """
    from hwnas.search import (STRATEGIES, Constraints, LatencyBudget, build_problem,
                              parse_latency_spec, write_outputs)
    from hwnas.search import search as _search

    STRATEGIES.get(strategy)                     # an unknown name fails before anything loads
    if isinstance(latency_ms, dict):
        budgets = tuple(LatencyBudget(t, _budget_ms(v, f"latency budget of {t}"))
                        for t, v in latency_ms.items())
    elif isinstance(latency_ms, str):
        budgets = parse_latency_spec(latency_ms, target)
    else:
        if target is None:
            raise BudgetError("a latency budget in ms needs a target")
        budgets = (LatencyBudget(target, _budget_ms(latency_ms)),)
    cons = Constraints(budgets, max_params, max_mflops, max_act_kb, margin, quantile)
    if checkpoint is not None and isinstance(space, str):
        sp = load_supernet(checkpoint).space if space == "ofa-mbv3" else None
        if sp is None:
            raise HwnasError(f"checkpoint {checkpoint} is for space 'ofa-mbv3', not '{space}'")
        space = sp
    extra = [t for t in ([target] if target else []) + list(report_targets)]
    problem = build_problem(space, cons, extra, objective, checkpoint, predictor, allow_emulated)
    if checkpoint is not None and "checkpoint" in STRATEGIES.get(strategy).Options.__dataclass_fields__:
        options.setdefault("checkpoint", str(checkpoint))   # gradient strategies' supernet too
    result = _search(strategy, problem, seed=seed, **options)
    if out is not None:
        return write_outputs(out, problem, result, {"seed": seed})
    best = problem.describe(result.best)
    best.update({"strategy": result.strategy, "evaluations": result.n_evals,
                 "search_wall_s": round(result.wall_s, 3), "seed": seed})
    return best


def export(arch: str | dict, target: str, out: str | os.PathLike, *,
           checkpoint: str | os.PathLike | None = None, space: Any = None,
           tuning_db: str | os.PathLike | None = "auto", runtime=None) -> dict:
    """Export ``arch`` (its string, or an ``arch.json`` dict) as a checked, compiled bundle in
    ``out`` and return its manifest.

    The subnet inherits the ``checkpoint``'s weights (None: random weights, said so in the
    manifest); ``space`` defaults to the checkpoint's, else the arch.json's ``space_config``,
    else ``ofa-mbv3``'s defaults. ``tuning_db`` is ``"auto"`` (the target's own tuning
    database, ``latency_tables/<target>/tuning/``, when it has one), None (untuned code) or a
    database folder. With a ``runtime`` (``connect(...)``) the library is also measured on the
    device. The manifest says how many kernels run tuned schedules.
    """
    from hwnas.export.bundle import BundleRequest, export_bundle
    from hwnas.export.weights import subnet_with_weights
    from hwnas.compiler.database import describe_database, load_database, resolve_database
    from hwnas.spaces import SearchSpace, get_space as _get, space_from_config

    arch_json = arch if isinstance(arch, dict) else None
    text = arch_json.get("arch") if arch_json else arch
    if not isinstance(text, str):
        from hwnas.errors import ArchError

        raise ArchError("an arch is its string, or an arch.json object with an 'arch' string")
    loaded = load_supernet(checkpoint) if checkpoint is not None else None
    if isinstance(space, SearchSpace):
        sp = space
    elif loaded is not None:
        sp = loaded.space
    elif arch_json and isinstance(arch_json.get("space_config"), dict):
        sp = space_from_config(arch_json["space_config"])
    else:
        sp = _get(space or "ofa-mbv3")
    parsed = sp.parse(text)
    tgt = load_target(target) if isinstance(target, (str, os.PathLike)) else target
    model, weights = subnet_with_weights(sp, parsed, loaded)
    db_dir = resolve_database(tgt, tuning_db)
    database = load_database(db_dir, required=True, target=tgt) if db_dir else None
    return export_bundle(BundleRequest(sp, parsed, model, tgt, Path(out), weights,
                                       database=database, database_info=describe_database(db_dir),
                                       runtime=runtime))


def _database_dir(target, choice) -> str | None:
    from hwnas.compiler.database import resolve_database

    found = resolve_database(target, choice)
    return None if found is None else str(found)


def deploy(target: str, latency_ms: float, out: str | os.PathLike = "bundle", *,
           checkpoint: str | os.PathLike | None = None, rpc: str | None = None,
           tracker: str | None = None, key: str | None = None, max_rounds: int = 4,
           slack: float = 0.10, strategy: str = "evolution", margin: float | None = None,
           tune: int = 0, tuning_dir: str | os.PathLike | None = "auto", seed: int = 0,
           profile_networks: int = 20, allow_emulated: bool = False) -> dict:
    """Search, export, compile and measure on the device until a bundle meets ``latency_ms``
    (the closed loop); returns the bundle's manifest. The device is this machine, or an RPC
    server (``rpc="host:port"``) or tracker (``tracker``, ``key``) for remote targets.

    Code is compiled with the target's tuning database (``tuning_dir="auto"``; None compiles
    untuned code, and the table must describe the same code); ``tune`` trials per kernel top
    the database up with each round's subnet first. A target without a fitting latency table
    is profiled first, with ``profile_networks`` whole networks.

    An emulated device (one that reports an emulator, such as ``hwnas device emulate``) and
    tables measured on one are refused unless ``allow_emulated``; the bundle's report then
    says that its latencies are the emulator's."""
    from hwnas.deploy.loop import DeployConfig, deploy as _deploy

    budget = _budget_ms(latency_ms)
    tgt = load_target(target) if isinstance(target, (str, os.PathLike)) else target
    if tgt.is_cross and not (rpc or tracker or tgt.device.startswith(("rpc://", "tracker://"))):
        from hwnas.errors import DeviceError

        raise DeviceError(f"target '{tgt.name}' runs on a remote device: give an RPC server "
                          f"(HOST:PORT) or a tracker and device key to measure the bundle on")
    cfg = DeployConfig(target=tgt, budget_ms=budget, out=Path(out), checkpoint=checkpoint,
                       runtime=None, max_rounds=max_rounds, slack=slack, strategy=strategy,
                       margin=margin, seed=seed,
                       tuning_dir=_database_dir(tgt, tuning_dir),
                       tune_trials=tune, profile_networks=profile_networks,
                       allow_emulated=allow_emulated)
    cfg.validate()
    cfg.runtime = connect(tgt, rpc, tracker, key)
    try:
        return _deploy(cfg)
    finally:
        cfg.runtime.close()
