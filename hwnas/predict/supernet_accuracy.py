"""The ``supernet`` source: the accuracy predictor of a supernet trained here.

A checkpoint folder holds ``accuracy_predictor.json``, fitted on subnets whose accuracy was
measured with the supernet's inherited weights. Its figures are predictions for the
checkpoint's own space configuration; in another configuration of the same space the genes
are kept and the resolution is mapped by its relative place in each range, an extrapolation
that the source names.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hwnas._io import read_json
from hwnas.errors import DataError, SpaceError
from hwnas.predict._accuracy_source import (PREDICTED, AccuracySource, SourceSpec, domain_of,
                                            register_source)
from hwnas.predict.accuracy import PREDICTOR_FILE, load_accuracy_predictor

__all__ = ["SupernetAccuracy", "SOURCE", "checkpoint_space"]

SOURCE = "supernet"


def checkpoint_space(ckpt: Path):
    """The space configuration a checkpoint folder was trained in."""
    from hwnas.spaces import space_from_config

    meta = read_json(ckpt / "meta.json", "checkpoint metadata", DataError)
    if not isinstance(meta, dict) or not isinstance(meta.get("space"), dict):
        raise DataError(f"{ckpt / 'meta.json'}: no 'space' object")
    return space_from_config(meta["space"])


class SupernetAccuracy(AccuracySource):
    """A checkpoint's accuracy predictor scoring genome rows of ``space``."""

    name, kind = SOURCE, PREDICTED

    def __init__(self, space, ckpt: Path) -> None:
        from hwnas.spaces._remap import GenomeRemap

        trained = checkpoint_space(ckpt)
        if trained.name != space.name:
            raise SpaceError(f"checkpoint {ckpt} is for space '{trained.name}', not "
                             f"'{space.name}'; use the mflops objective or a gradient strategy")
        self.predictor = load_accuracy_predictor(ckpt)
        self.remap = GenomeRemap(space, trained, by="relative")
        note = f"accuracy predictor of the supernet {ckpt}, fitted on subnets measured here"
        if not self.remap.identity:
            note += (f"; kernels, expands and depths kept, resolution mapped by its relative "
                     f"place in {list(space.resolutions)} onto {list(trained.resolutions)}")
        super().__init__(space, str(ckpt), domain_of(trained.config()), note)

    def predict_genomes(self, genomes: np.ndarray) -> np.ndarray:
        return np.asarray(self.predictor.predict_genomes(self.remap(genomes)), np.float64)


def _checkpoint_for(space, checkpoint) -> str | Path | None:
    from hwnas.spaces import space_plugin

    if checkpoint is not None:
        return checkpoint
    plugin = space_plugin(space)
    cfg = plugin.config_of(space)
    return plugin.config(cfg).default_checkpoint if cfg else plugin.default_checkpoint


def _locate(space, checkpoint=None) -> Path | None:
    """The checkpoint folder (named, else the configuration's default) when it holds an
    accuracy predictor for this space; a named checkpoint that does not exist is an error. A
    published supernet file (Once-for-All's) holds weights only, no predictor."""
    from hwnas._data import checkpoint_dir, is_checkpoint_file

    named = _checkpoint_for(space, checkpoint)
    if named is None or is_checkpoint_file(named):
        return None
    try:
        ckpt = checkpoint_dir(named)
    except DataError:
        if checkpoint is not None:
            raise
        return None
    if not (ckpt / PREDICTOR_FILE).exists():
        return None
    meta = read_json(ckpt / "meta.json", "checkpoint metadata", DataError)
    same = isinstance(meta, dict) and (meta.get("space") or {}).get("name") == space.name
    return ckpt if same else None


register_source(SourceSpec(
    SOURCE, "the accuracy predictor of a supernet trained here (its checkpoint)",
    _locate, SupernetAccuracy,
    "train a supernet (hwnas train-supernet), or name a checkpoint with an accuracy predictor"))
