"""What a search optimises and measures: latency predictors per target, and the objective.

* ``load_latency_predictor(target, space)`` reads ``latency_tables/<target>/<space>.json``; the
  space configuration comes from the table's metadata. With ``kind="auto"`` it uses the
  ``calibrated`` predictor when its JSON model lies next to the table, else the table sum.
* Objectives are vectorised ``predict_genomes(G) -> score`` callables, higher is better:
  ``accuracy`` (the supernet's accuracy predictor) and ``mflops`` (a size proxy for spaces
  with no accuracy predictor).
* ``GenomeRemap`` carries genomes from the search space into another configuration of the
  same space (another width or resolution list): every gene but the resolution is kept; the
  resolution maps by value (latency tables) or by its relative place in the range (accuracy
  predictor trained at other resolutions, a documented proxy).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

import numpy as np

from hwnas._io import read_json
from hwnas.errors import SpaceError, TableError
from hwnas.predict import PREDICTORS, LatencyPredictor
from hwnas.profile.table import LatencyTable, table_path
from hwnas.spaces import get_space, space_from_config

__all__ = ["Objective", "GenomeRemap", "load_latency_predictor", "space_of_table",
           "calibrated_model_path", "load_objective", "AccuracyObjective", "MflopsObjective",
           "DEFAULT_CHECKPOINT"]

log = logging.getLogger("hwnas.search")

DEFAULT_CHECKPOINT = Path(__file__).resolve().parents[2] / "checkpoints" / "ofa-mbv3-fmnist"


class Objective(Protocol):
    name: str
    note: str

    def predict_genomes(self, genomes: np.ndarray) -> np.ndarray: ...


# ---------------------------------------------------------------------------- spaces and remaps
def space_of_table(table: LatencyTable, index: int = 0):
    """The space a table was profiled for: ``meta["spaces"][index]`` (tables may cover several
    configurations of one space), else ``meta["space_config"]``, else the space's defaults."""
    spaces = table.meta.get("spaces")
    if isinstance(spaces, list) and spaces:
        if not 0 <= index < len(spaces):
            raise TableError(f"latency table for '{table.target}' holds {len(spaces)} space "
                             f"configurations; --table-config {index} is out of range")
        return space_from_config(spaces[index])
    cfg = table.meta.get("space_config")
    if cfg is None and isinstance(table.meta.get("space"), dict):
        cfg = table.meta["space"]
    if isinstance(cfg, dict):
        cfg = dict(cfg)
        cfg.setdefault("name", table.meta["space"] if isinstance(table.meta["space"], str) else None)
        return space_from_config(cfg)
    return get_space(str(table.meta["space"]))


class GenomeRemap:
    """Map genome rows of ``src`` onto ``dst`` (same space family, resolution in the last gene)."""

    def __init__(self, src, dst, by: str = "value") -> None:
        self.identity = src.config() == dst.config()
        if self.identity:
            return
        if src.name != dst.name or len(src.choice_sizes()) != len(dst.choice_sizes()):
            raise SpaceError(f"cannot map '{src.name}' genomes onto '{dst.name}'")
        if by == "value":
            missing = [r for r in src.resolutions if r not in dst.resolutions]
            if missing:
                raise SpaceError(f"resolution {missing[0]} of the search space is not in "
                                 f"{dst.name} {list(dst.resolutions)}")
            self._r = np.array([dst.resolutions.index(r) for r in src.resolutions], np.int16)
        else:  # relative place of r in each range, nearest neighbour
            s, d = np.asarray(src.resolutions, float), np.asarray(dst.resolutions, float)
            rel_s = (s - s[0]) / max(s[-1] - s[0], 1)
            rel_d = (d - d[0]) / max(d[-1] - d[0], 1)
            self._r = np.abs(rel_s[:, None] - rel_d[None, :]).argmin(1).astype(np.int16)

    def __call__(self, genomes: np.ndarray) -> np.ndarray:
        if self.identity:
            return genomes
        g = genomes.copy()
        g[:, -1] = self._r[genomes[:, -1]]
        return g


# ---------------------------------------------------------------------------- latency
def calibrated_model_path(target: str, space_name: str, config_index: int = 0) -> Path:
    from hwnas.predict import calibrated_path

    return calibrated_path(table_path(target, space_name), config_index)


def load_latency_predictor(target: str, space_name: str, kind: str = "auto",
                           config_index: int = 0) -> LatencyPredictor:
    """The predictor of ``target`` for ``space_name``; its ``.space`` is the table's space."""
    path = table_path(target, space_name)
    if not path.exists():
        have = sorted(p.parent.name for p in path.parents[1].glob(f"*/{space_name}.json"))
        raise TableError(f"no latency table {path} for target '{target}' and space "
                         f"'{space_name}'; targets with one: {', '.join(have) or 'none'} "
                         f"(profile it with `hwnas profile --target {target}`)")
    table = LatencyTable.load(path)
    space = space_of_table(table, config_index)
    model = calibrated_model_path(target, space_name, config_index)
    if kind == "auto":
        kind = "calibrated" if model.exists() and "calibrated" in PREDICTORS else "table"
    if kind == "table":
        return PREDICTORS.get("table")(space, table)
    cls = PREDICTORS.get(kind)
    if not hasattr(cls, "load"):
        raise TableError(f"latency predictor '{kind}' cannot be loaded from a file")
    return cls.load(model, space=space, table=table)


# ---------------------------------------------------------------------------- objectives
class MflopsObjective:
    """Millions of multiply-adds: bigger networks as a stand-in for accuracy."""

    name = "mflops"
    note = "proxy objective: MACs (no accuracy predictor used)"

    def __init__(self, space) -> None:
        self.space = space

    def predict_genomes(self, genomes: np.ndarray) -> np.ndarray:
        return self.space.flops_genomes(genomes) / 1e6


class AccuracyObjective:
    """The supernet's accuracy predictor, applied through a genome remap when the spaces differ."""

    name = "accuracy"

    def __init__(self, predictor, predictor_space, search_space, source: str = "") -> None:
        self.predictor = predictor
        self.remap = GenomeRemap(search_space, predictor_space, by="relative")
        self.note = f"accuracy predictor of {source or 'the supernet'}"
        if not self.remap.identity:
            self.note += (f" (proxy: predicted for the same kernels/expands/depths on the "
                          f"supernet's space {predictor_space.config()}, resolution mapped by its "
                          f"relative place in {list(search_space.resolutions)})")

    def predict_genomes(self, genomes: np.ndarray) -> np.ndarray:
        return np.asarray(self.predictor.predict_genomes(self.remap(genomes)), dtype=np.float64)


def load_objective(name: str, search_space, checkpoint: str | Path | None = None) -> Objective:
    """``accuracy`` (needs a supernet checkpoint with an accuracy predictor), ``mflops``, or
    ``auto``: accuracy when a checkpoint for this space exists, else mflops (logged, and named
    in the objective's note that ``arch.json`` carries)."""
    if name == "auto":
        ckpt = Path(checkpoint) if checkpoint else DEFAULT_CHECKPOINT
        meta = ckpt / "meta.json"
        name = "mflops"
        if meta.exists() and (ckpt / "accuracy_predictor.json").exists():
            cfg = read_json(meta, "checkpoint metadata", SpaceError).get("space", {})
            if cfg.get("name") == search_space.name:
                name = "accuracy"
        if name == "mflops":
            log.warning("no accuracy predictor for space '%s' in %s: objective is MACs (a proxy)",
                        search_space.name, ckpt)
    if name == "mflops":
        return MflopsObjective(search_space)
    if name != "accuracy":
        raise SpaceError(f"unknown objective '{name}'; choose from: accuracy, mflops")
    from hwnas.train.accuracy import load_accuracy_predictor

    ckpt = Path(checkpoint) if checkpoint else DEFAULT_CHECKPOINT
    meta = read_json(ckpt / "meta.json", "checkpoint metadata", SpaceError)
    acc_space = space_from_config(meta["space"])
    if acc_space.name != search_space.name:
        raise SpaceError(f"checkpoint {ckpt} is for space '{acc_space.name}', not "
                         f"'{search_space.name}'; use --objective mflops or a gradient strategy")
    predictor = load_accuracy_predictor(ckpt)
    return AccuracyObjective(predictor, acc_space, search_space, source=str(ckpt))
