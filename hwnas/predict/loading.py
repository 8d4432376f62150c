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

from hwnas.errors import HwnasError, TableError
from hwnas.predict._base import PREDICTORS, LatencyPredictor
from hwnas.profile.table import LatencyTable, table_path, targets_with_table

__all__ = ["load_predictor", "table_space", "calibrated_file", "refuse_emulated"]

log = logging.getLogger("hwnas.predict")


def table_space(table: LatencyTable, space=None):
    """``(index, space)``: the table's recorded configuration that covers ``space`` (a
    ``SearchSpace``, a space name, or None for the table's own space), as a space."""
    from hwnas.spaces import SearchSpace, get_space, space_from_config

    configs = table.meta.get("spaces") or []
    if not configs:
        return 0, get_space(str(table.meta["space"]))
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


def load_predictor(target: str, space="ofa-mbv3", kind: str = "auto",
                   allow_emulated: bool = False) -> LatencyPredictor:
    """The latency predictor of ``target`` for ``space`` (a name or a ``SearchSpace``).

    ``kind``: ``table`` (the operator sum), ``calibrated`` (fitted on whole networks measured
    on the device), or ``auto``: ``calibrated`` when its model lies beside the table, else
    ``table``. The predictor's ``.space`` is the table's configuration of the space. A table
    measured on an emulated device raises ``TableError`` unless ``allow_emulated``.
    """
    name = space if isinstance(space, str) else space.name
    path = table_path(target, name)
    if not path.exists():
        have = ", ".join(targets_with_table(name)) or "none"
        raise TableError(f"no latency table for target '{target}' and space '{name}' "
                         f"(looked for {path}); targets with one: {have}")
    table = LatencyTable.load(path)
    if table.meta.get("emulated"):
        refuse_emulated(table.meta.get("emulator") or "emulator unknown",
                        f"the latency table of '{target}' ({path}) was measured on an emulated "
                        "device", allow_emulated)
    index, table_sp = table_space(table, space)
    model = calibrated_file(path, index)
    if kind == "auto":
        kind = "calibrated" if model.exists() else "table"
    cls = PREDICTORS.get(kind)
    if kind == "table":
        return cls(table_sp, table)
    if not hasattr(cls, "load"):
        raise TableError(f"latency predictor '{kind}' cannot be loaded from a file")
    if not model.exists():
        raise TableError(f"no '{kind}' predictor fitted for target '{target}' ({model} is "
                         "missing); profile whole networks first")
    return cls.load(model, space=table_sp, table=table)
