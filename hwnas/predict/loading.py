"""Latency predictors of a target, loaded from ``latency_tables/<target>/``.

A table may record several configurations of one space (another resolution list, class count,
input channels): the predictor is built for the configuration that covers the space asked for.
Asked by name only, the space's default configuration is used when the table records it, else
the table's first one.

A table measured on an emulated device (``meta["emulated"]``, from what the device reported
while it was profiled) holds the emulator's timings, not the device's: it is refused unless
``allow_emulated`` is given, so that no budget is ever decided on it by accident.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from hwnas._io import read_json
from hwnas.errors import HwnasError, TableError
from hwnas.predict._base import PREDICTORS, LatencyPredictor
from hwnas.profile.table import LatencyTable, table_path, targets_with_table

__all__ = ["load_predictor", "table_space", "calibrated_file", "fewshot_beside",
           "fewshot_fits", "refuse_emulated"]

log = logging.getLogger("hwnas.predict")


def table_space(table: LatencyTable, space=None):
    """``(index, space)``: the table's recorded configuration that covers ``space`` (a
    ``SearchSpace``, a space name, or None for the table's own space), as a space."""
    from hwnas.spaces import SearchSpace, get_space, resolve_space_name, space_from_config

    configs = table.meta.get("spaces") or []
    if not configs:
        return 0, get_space(str(table.meta["space"]))
    if isinstance(space, str) and resolve_space_name(space)[1] is not None:
        space = get_space(space)                  # a named configuration: the one that covers it
    if isinstance(space, SearchSpace):
        index = table.config_index(space)
        if index is None:
            raise TableError(f"the latency table of '{table.target}' does not cover the space "
                             f"{space.config()}; it records {len(configs)} configuration(s): "
                             + "; ".join(str(c) for c in configs))
        return index, space_from_config(configs[index])
    name = space or table.meta["space"]
    if name != table.meta["space"]:
        raise TableError(f"the latency table of '{table.target}' is for space "
                         f"'{table.meta['space']}', not '{name}'")
    default = table.config_index(get_space(name))
    index = 0 if default is None else default
    return index, space_from_config(configs[index])


def calibrated_file(table_file: str | Path, index: int) -> Path:
    """``<space>.calibrated.json`` beside the table for its first configuration,
    ``<space>.calibrated-<i>.json`` for its i-th."""
    p = Path(table_file)
    return p.with_name(f"{p.stem}.calibrated{'' if index == 0 else f'-{index}'}.json")


def refuse_emulated(emulator: str | None, what: str, allow_emulated: bool,
                    error: type[HwnasError] = TableError) -> None:
    """Raise ``error`` when ``emulator`` is set (``what`` says what was emulated, e.g. "the
    latency table of 'rpi4' was measured on an emulated device") and emulated timings were
    not allowed; when they were, log that they are used."""
    if not emulator:
        return
    if not allow_emulated:
        raise error(f"{what} ({emulator}): its latencies are the emulator's, not the "
                         "device's, and decide no budget unless emulated timings are allowed "
                         "explicitly")
    log.warning("%s (%s): its latencies are the emulator's, not the device's", what, emulator)


def fewshot_beside(table_file: str | Path) -> Path:
    """``<space>.fewshot.json`` beside a table file; for a target's shared table
    (``latency_tables/<target>/<space>.json``) this machine's CPU model's own few-shot
    predictor in ``cpu-<mcpu>/`` when there is one (fitted on this CPU's networks)."""
    from hwnas.profile.table import cpu_file, cpu_folder

    p = Path(table_file)
    name = f"{p.stem}.fewshot.json"
    if not p.parent.name.startswith("cpu-"):
        cpu = cpu_folder(p.parent.name, always=False)
        if cpu and (p.parent / cpu / name).is_file():
            return p.parent / cpu / name
        if cpu:                 # this CPU's, in the user's folder or the shipped one
            own = cpu_file(p.parent.name, p.stem, ".fewshot")
            if own.is_file():
                return own
    return p.with_name(name)


def fewshot_fits(fewshot: Path, space) -> bool:
    """Whether the few-shot predictor in ``fewshot`` exists and was fitted for ``space``'s
    configuration (resolutions aside): one CPU's folder may hold a few-shot predictor of one
    configuration and a table of another. A file that cannot be read counts as fitting, so
    that loading it reports what is wrong with it."""
    from hwnas.predict._store import same_configuration
    from hwnas.spaces import SearchSpace

    if not Path(fewshot).is_file():
        return False
    if not isinstance(space, SearchSpace):
        return True
    try:
        stored = read_json(fewshot, "latency predictor", TableError).get("space")
    except (TableError, AttributeError):
        return True
    if not isinstance(stored, dict):
        return True
    return same_configuration(stored, space.config())


def _other_cpu(table: LatencyTable, target: str) -> str | None:
    """The table's CPU model when it is not this machine's (None for an unknown target)."""
    from hwnas.targets import load_target

    try:
        return table.other_cpu(load_target(target))
    except HwnasError:
        return None


def _table_error_on(table: LatencyTable, pred) -> float | None:
    """The table sum's mean |relative error| on the few-shot predictor's own samples (None
    when the table does not cover them)."""
    space = pred.space
    if table.missing(space.op_list):
        return None
    s = pred.samples
    total = space.op_values(s.genomes, table.space_values(space)).sum(1)
    return float(np.mean(np.abs(total / s.latency_ms - 1)))


def _choose(target: str, table_file: Path, fewshot: Path, space,
            table: LatencyTable | None = None) -> tuple[str, str]:
    """(kind, why) of ``auto``: ``calibrated`` when fitted; else the table or the few-shot
    predictor, whichever errs less on the device's own measured networks (the few-shot's
    leave-one-out error against the table sum's error on the same networks); else the one
    that exists."""
    name = space if isinstance(space, str) else space.name
    have_table, have_few = table is not None or table_file.exists(), fewshot_fits(fewshot, space)
    if have_table:
        table = table if table is not None else LatencyTable.load(table_file)
        try:
            index, _ = table_space(table, space)
        except TableError as exc:
            if not have_few:
                raise
            return "fewshot", f"the latency table does not serve this space ({exc})"
        other = _other_cpu(table, target)
        if other and have_few:
            return "fewshot", (f"the table was measured on CPU {other}, the few-shot predictor "
                               f"on this CPU's own networks")
        if calibrated_file(table_file, index).exists():
            return "calibrated", "fitted on whole networks measured on the device"
        if not have_few:
            return "table", "the device's operator table (no calibrated or few-shot predictor)"
    elif have_few:
        return "fewshot", f"no latency table for '{target}' and space '{name}'"
    else:
        have = ", ".join(targets_with_table(name)) or "none"
        raise TableError(f"no latency table or few-shot predictor for target '{target}' and "
                         f"space '{name}' (looked for {table_file} and {fewshot}); targets "
                         f"with a table: {have}")
    from hwnas.predict.fewshot import FewShotPredictor

    few = FewShotPredictor.load(fewshot, space)
    loo = (few.provenance.get("leave_one_out") or {}).get("mean_abs_rel_error")
    table_err = _table_error_on(table, few)
    if loo is None or table_err is None:
        return "table", "the device's operator table (the few-shot predictor cannot be compared)"
    if loo < table_err:
        return "fewshot", (f"its leave-one-out error {100 * loo:.1f}% is below the table sum's "
                           f"{100 * table_err:.1f}% on the same {len(few.samples.genomes)} networks")
    return "table", (f"the table sum errs {100 * table_err:.1f}% on the few-shot's "
                     f"{len(few.samples.genomes)} networks, the few-shot {100 * loo:.1f}%")


def load_predictor(target: str, space=None, kind: str = "auto",
                   path: str | Path | None = None, allow_foreign: bool = False,
                   allow_emulated: bool = False,
                   table: LatencyTable | None = None) -> LatencyPredictor:
    """The latency predictor of ``target`` for ``space`` (a space or configuration name, or a
    ``SearchSpace``; None: the default space).

    ``kind``: ``table`` (the operator sum), ``calibrated`` (fitted on whole networks measured
    on the device), ``fewshot`` (adapted from a few measured networks and other devices,
    ``<space>.fewshot.json``), or ``auto``: ``calibrated`` when its model lies beside the
    table; else, of the table and the few-shot predictor, the one with the smaller error on
    the device's own measured networks; else whichever exists. The returned predictor's
    ``selection`` says which was chosen and why. The predictor's ``.space`` is the
    configuration of the space it was measured or fitted in. ``path`` names the table file
    instead of ``latency_tables/<target>/<space>.json``; a table measured for another target
    is refused unless ``allow_foreign``, and a table measured on an emulated device raises
    ``TableError`` unless ``allow_emulated``. ``table``: the table at ``path``, when the caller
    has loaded it already.
    """
    from hwnas.spaces import DEFAULT_SPACE, get_space, resolve_space_name

    if space is None:
        space = DEFAULT_SPACE
    if isinstance(space, str) and resolve_space_name(space)[1] is not None:
        space = get_space(space)            # a named configuration: the table must cover it
    name = space if isinstance(space, str) else space.name
    path = Path(path) if path is not None else table_path(target, space)
    fewshot = fewshot_beside(path)
    if kind == "auto":
        kind, why = _choose(target, path, fewshot, space, table)
        why = f"{kind} (auto: {why})"
    else:
        why = f"{kind} (asked for)"
    PREDICTORS.get(kind)                      # an unknown name fails with the known ones
    if kind == "fewshot":
        pred = _load_fewshot(target, name, fewshot, space)
    else:
        pred = _load_table_kind(target, name, kind, path, space, allow_foreign, allow_emulated,
                                table)
    pred.selection = why
    return pred


def _load_fewshot(target: str, name: str, fewshot: Path, space) -> LatencyPredictor:
    from hwnas.predict.fewshot import FewShotPredictor

    if not fewshot.exists():
        raise TableError(f"no few-shot predictor for target '{target}' and space '{name}' "
                         f"(looked for {fewshot}); fit one from measured networks first "
                         "(hwnas adapt)")
    pred = FewShotPredictor.load(fewshot, space)
    if pred.device != target:
        raise TableError(f"{fewshot} was fitted for device '{pred.device}', not '{target}'")
    return pred


def _load_table_kind(target: str, name: str, kind: str, path: Path, space,
                     allow_foreign: bool, allow_emulated: bool,
                     table: LatencyTable | None = None) -> LatencyPredictor:
    if table is None and not path.exists():
        have = ", ".join(targets_with_table(name)) or "none"
        raise TableError(f"no latency table for target '{target}' and space '{name}' "
                         f"(looked for {path}); targets with one: {have}")
    table = table if table is not None else LatencyTable.load(path)
    if table.target != target and not allow_foreign:
        raise TableError(f"{path} was measured for target '{table.target}', not '{target}'; "
                         "a table only describes its own device")
    if table.meta.get("emulated"):
        refuse_emulated(table.meta.get("emulator") or "emulator unknown",
                        f"the latency table of '{target}' ({path}) was measured on an emulated "
                        "device", allow_emulated)
    index, table_sp = table_space(table, space)
    model = calibrated_file(path, index)
    cls = PREDICTORS.get(kind)
    if kind == "table":
        return cls(table_sp, table)
    if not hasattr(cls, "load"):
        raise TableError(f"latency predictor '{kind}' cannot be loaded from a file")
    if not model.exists():
        raise TableError(f"no '{kind}' predictor fitted for target '{target}' ({model} is "
                         "missing); profile whole networks first")
    return cls.load(model, space=table_sp, table=table)
