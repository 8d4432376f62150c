"""What a search optimises: the objective.

Objectives are vectorised ``predict_genomes(G) -> score`` callables, higher is better:

* ``accuracy``: top-1 from an accuracy source (``hwnas.predict.accuracy_sources``): the
  supernet's predictor, OFA's published predictor or measured top-1. Each result names the
  source, says whether its figure is measured or predicted, and labels a figure scored
  outside the source's domain (another width or resolution) as an extrapolation;
* ``mflops``: a size proxy for spaces with no accuracy source.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

import numpy as np

from hwnas._data import checkpoint_dir, is_checkpoint_file
from hwnas.errors import SpaceError

__all__ = ["Objective", "load_objective", "AccuracyObjective", "MflopsObjective"]

log = logging.getLogger("hwnas.search")


class Objective(Protocol):
    name: str
    note: str

    def predict_genomes(self, genomes: np.ndarray) -> np.ndarray: ...

    def label(self, genome: np.ndarray) -> dict: ...


class MflopsObjective:
    """Millions of multiply-adds: bigger networks as a stand-in for accuracy."""

    name = "mflops"
    note = "proxy objective: MACs (no accuracy predictor used)"

    def __init__(self, space) -> None:
        self.space = space

    def predict_genomes(self, genomes: np.ndarray) -> np.ndarray:
        return self.space.flops_genomes(genomes) / 1e6

    def label(self, genome: np.ndarray) -> dict:
        """No accuracy: the result says so."""
        return {"source": None, "kind": None, "top1": None,
                "note": "no accuracy source: the objective is MACs, a proxy"}


class AccuracyObjective:
    """Top-1 from an accuracy source (``hwnas.predict.accuracy_sources``)."""

    name = "accuracy"

    def __init__(self, source) -> None:
        self.source = source
        self.note = f"top-1 from accuracy source '{source.name}' ({source.kind}): {source.note}"
        if source.extrapolation:
            self.note += f" [{source.extrapolation}]"

    def predict_genomes(self, genomes: np.ndarray) -> np.ndarray:
        return np.asarray(self.source.predict_genomes(genomes), dtype=np.float64)

    def label(self, genome: np.ndarray) -> dict:
        return self.source.label(genome)


def load_objective(name: str, search_space, checkpoint: str | Path | None = None,
                   accuracy=None) -> Objective:
    """``accuracy``, ``mflops`` or ``auto``.

    ``accuracy`` names the accuracy source (a registered name or an ``AccuracySource``);
    None: the first source the space's configuration accepts that has data (a named
    ``checkpoint`` tries its supernet's predictor first; a published supernet file, weights
    only, leaves the configuration's other sources). ``auto`` falls back to MACs (logged,
    and named in the note that ``arch.json`` carries) when no source has data; a source or a
    checkpoint that was named but cannot be loaded is an error, never a silent switch."""
    from hwnas.predict.accuracy_sources import (SUPERNET, AccuracySource, configuration_name,
                                                accepted_sources, find_accuracy_source,
                                                load_accuracy_source)

    if name not in ("auto", "accuracy", "mflops"):
        raise SpaceError(f"unknown objective '{name}'; choose from: auto, accuracy, mflops")
    if name == "mflops":
        if accuracy is not None:
            raise SpaceError("an accuracy source was named, but the objective is mflops")
        return MflopsObjective(search_space)
    if isinstance(accuracy, AccuracySource):
        return AccuracyObjective(accuracy)
    if accuracy is not None:
        return AccuracyObjective(load_accuracy_source(accuracy, search_space,
                                                      checkpoint=checkpoint))
    if checkpoint is not None and name == "accuracy" and not is_checkpoint_file(checkpoint):
        return AccuracyObjective(load_accuracy_source(SUPERNET, search_space,
                                                      path=checkpoint_dir(checkpoint)))
    found = find_accuracy_source(search_space, checkpoint)
    if found is not None:
        return AccuracyObjective(found)
    accepted = ", ".join(accepted_sources(search_space)) or "none"
    if name == "accuracy":
        raise SpaceError(f"no accuracy source has data for {configuration_name(search_space)} "
                         f"(it accepts: {accepted}); import one (hwnas import-accuracy), name "
                         "a checkpoint, or use the mflops objective")
    log.warning("no accuracy source has data for %s (it accepts: %s): objective is MACs "
                "(a proxy)", configuration_name(search_space), accepted)
    return MflopsObjective(search_space)
