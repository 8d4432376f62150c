"""The journeys that ship: export an arch as a bundle, and deploy (the closed loop)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hwnas.api._arguments import (_arch_of, _budget_ms, _check_numbers, _check_target_name,
                                  _claim, _database_dir)
from hwnas.api.lookup import connect, load_supernet, load_target
from hwnas.errors import BudgetError


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
    arch_json, text = _arch_of(arch)
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
                                       database=database, database_info=describe_database(db_dir, sp),
                                       runtime=runtime, force=force,
                                       extra={"accuracy": manifest_accuracy(weights, searched)}))


def deploy(target: str, latency_ms: float, out: str | os.PathLike = "bundle", *,
           checkpoint: str | os.PathLike | None = None, space: str | None = None,
           rpc: str | None = None,
           tracker: str | None = None, key: str | None = None, max_rounds: int = 4,
           slack: float = 0.10, agree: float = 0.10, strategy: str = "evolution",
           margin: float | None = None,
           tune: int = 0, tuning_dir: str | os.PathLike | None = "auto", seed: int = 0,
           force: bool = False, predictor: str = "auto", profile_networks: int = 20,
           allow_emulated: bool = False, contended_margin: float | None = None) -> dict:
    """Search, export, compile and measure on the device until a bundle meets ``latency_ms``
    (the closed loop); returns the bundle's manifest. The device is this machine, or an RPC
    server (``rpc="host:port"``) or tracker (``tracker``, ``key``) for remote targets.

    ``space`` (a space name such as ``ofa-mbv3-imagenet``, instead of a ``checkpoint``)
    deploys a subnet of that configuration with random weights, said so in the manifest and
    report; its accuracy sources (``hwnas import-accuracy``) score the search, else MACs.

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
                       space=space,
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
