"""What a search optimises: the objective, and genome remaps between space configurations.

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

from hwnas._data import checkpoint_dir, is_checkpoint_file
from hwnas._io import read_json
from hwnas.errors import DataError, SpaceError
from hwnas.spaces import default_checkpoint, space_from_config

__all__ = ["Objective", "GenomeRemap", "load_objective", "AccuracyObjective", "MflopsObjective"]

log = logging.getLogger("hwnas.search")


class Objective(Protocol):
    name: str
    note: str

    def predict_genomes(self, genomes: np.ndarray) -> np.ndarray: ...


# ---------------------------------------------------------------------------- remaps
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
    ``auto``: accuracy when the checkpoint (``None``: the space's default one, where its
    plugin names one) is for this space, else
    mflops (logged, and named in the objective's note that ``arch.json`` carries). A checkpoint
    that was named but does not exist is an error, never a silent switch to MACs; a
    Once-for-All file (weights only) gives mflops under ``auto`` and is refused for
    ``accuracy``."""
    if name not in ("auto", "accuracy", "mflops"):
        raise SpaceError(f"unknown objective '{name}'; choose from: auto, accuracy, mflops")
    if name == "mflops":
        return MflopsObjective(search_space)
    named = checkpoint if checkpoint is not None else default_checkpoint(search_space)
    if is_checkpoint_file(named):                       # Once-for-All's file: weights only
        if name == "accuracy":
            raise SpaceError(f"checkpoint {named} holds weights only (Once-for-All's format), "
                             "no accuracy predictor; use the mflops objective")
        log.warning("checkpoint %s holds weights only (Once-for-All's format), no accuracy "
                    "predictor: objective is MACs (a proxy)", named)
        return MflopsObjective(search_space)
    if named is None and name == "accuracy":
        raise SpaceError(f"space '{search_space.name}' ships no supernet checkpoint with an "
                         "accuracy predictor; name one, or use the mflops objective")
    try:
        ckpt = checkpoint_dir(named) if named is not None else None
    except DataError:
        if checkpoint is not None or name == "accuracy":
            raise
        ckpt = None
    if name == "auto":
        usable = ckpt is not None and (ckpt / "accuracy_predictor.json").exists() and \
            read_json(ckpt / "meta.json", "checkpoint metadata", DataError).get(
                "space", {}).get("name") == search_space.name
        if not usable:
            log.warning("no accuracy predictor for space '%s'%s: objective is MACs (a proxy)",
                        search_space.name, f" in {ckpt}" if ckpt else "")
            return MflopsObjective(search_space)
    from hwnas.predict.accuracy import load_accuracy_predictor

    meta = read_json(ckpt / "meta.json", "checkpoint metadata", DataError)
    if not isinstance(meta.get("space"), dict):
        raise DataError(f"{ckpt / 'meta.json'}: no 'space' object")
    acc_space = space_from_config(meta["space"])
    if acc_space.name != search_space.name:
        raise SpaceError(f"checkpoint {ckpt} is for space '{acc_space.name}', not "
                         f"'{search_space.name}'; use the mflops objective or a gradient strategy")
    predictor = load_accuracy_predictor(ckpt)
    return AccuracyObjective(predictor, acc_space, search_space, source=str(ckpt))
