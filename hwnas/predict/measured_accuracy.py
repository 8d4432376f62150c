"""The ``measured`` source: measured top-1 of subnets, and a model fitted on them.

``hwnas import-accuracy`` reads CSV files of arch → top-1 (``measured_csv``), fits the model
of ``measured_model`` on them, cross-validates it, and writes one JSON file (no pickle): the
measured subnets, the model, its cross-validated ranking and where the data came from.

Scoring a subnet, the source gives its measured top-1 when that very subnet was measured in
this configuration (labelled ``measured``), else the model's estimate (``predicted``). In
another configuration (another width, resolution, class count) nothing was measured: every
figure is the model's, and the source names it an extrapolation; the model's size features
are computed in the scored configuration, so a wider or larger-input subnet scores higher.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hwnas._io import atomic_write_json, read_json
from hwnas.errors import DataError
from hwnas.predict._accuracy_source import (ACCURACY_FORMAT, MEASURED, PREDICTED,
                                            AccuracySource, SourceSpec, domain_of,
                                            imported_locator, register_source)
from hwnas.predict.measured_csv import MeasuredTable
from hwnas.predict.measured_model import (SizeAwareRidge, cross_validate, fit_measured_model,
                                          front_analysis)

__all__ = ["MeasuredData", "MeasuredAccuracy", "build_measured_data", "SOURCE", "SUFFIX"]

SOURCE, SUFFIX = "measured", ".json"


@dataclass
class MeasuredData:
    """What the ``measured`` file holds: the space configuration of the measurements, the
    measured subnets (top-1 in %), the fitted model and the rest of the record."""

    space_config: dict
    rows: list[dict]
    model: dict
    meta: dict = field(default_factory=dict)

    def save(self, path: str | Path) -> Path:
        return atomic_write_json(path, {**self.meta, "format": ACCURACY_FORMAT,
                                        "source": SOURCE, "space": self.space_config,
                                        "model": self.model, "rows": self.rows}, indent=None)

    @classmethod
    def load(cls, path: str | Path) -> "MeasuredData":
        obj = read_json(path, "measured accuracy file", DataError)
        if not isinstance(obj, dict) or obj.get("format") != ACCURACY_FORMAT \
                or obj.get("source") != SOURCE:
            raise DataError(f"{path} is not an imported measured-accuracy file (format "
                            f"'{ACCURACY_FORMAT}', source '{SOURCE}')")
        rows, model, space = obj.get("rows"), obj.get("model"), obj.get("space")
        if not (isinstance(rows, list) and isinstance(model, dict) and isinstance(space, dict)
                and all(isinstance(r, dict) and isinstance(r.get("arch"), str)
                        and isinstance(r.get("top1"), (int, float)) for r in rows)):
            raise DataError(f"corrupt measured-accuracy file {path}: 'space', 'model' and "
                            "'rows' (arch, top1) are needed")
        meta = {k: v for k, v in obj.items() if k not in ("rows", "model", "space")}
        return cls(space, rows, model, meta)


def build_measured_data(table: MeasuredTable, space, folds: int = 5,
                        seed: int = 0) -> MeasuredData:
    """Fit and cross-validate the model on ``table`` (subnets of ``space``)."""
    if len(table.rows) < 3 * folds:
        raise DataError(f"{len(table.rows)} measured subnets are too few to fit and "
                        f"cross-validate a model ({3 * folds} at least)")
    genomes = space.to_genomes(table.archs(space))
    top1 = table.top1 / 100.0
    cv = cross_validate(space, genomes, top1, folds, seed)
    front = front_analysis(space, genomes, cv)
    model = fit_measured_model(space, genomes, top1, {"cv": cv.summary()})
    res = sorted({space.parse(r.arch).r for r in table.rows})
    meta = {"kind": MEASURED, "domain": {**domain_of(space.config()), "resolutions": res},
            "files": table.files, "summary": table.summary(), "cv": cv.summary(),
            "front": front,
            "model_note": "ridge (penalty by cross-validated Kendall tau) on one-hot kernel "
                          "and expand per block slot, one-hot depth per stage, log MACs and "
                          "log parameters; predicts top-1 as a fraction"}
    return MeasuredData(space.config(), [r.to_json() for r in table.rows], model.to_json(),
                        meta)


def _keys(space, genomes: np.ndarray) -> list[bytes]:
    """A subnet's identity: its active choices and its input size in pixels."""
    g = space.canonical_genomes(np.asarray(genomes)).astype(np.int32)
    g[:, -1] = np.asarray(space.resolutions, np.int32)[g[:, -1]]
    return [row.tobytes() for row in np.ascontiguousarray(g)]


class MeasuredAccuracy(AccuracySource):
    """Measured top-1 where measured, the model elsewhere."""

    name, kind = SOURCE, MEASURED

    def __init__(self, space, data: MeasuredData, origin: str) -> None:
        from hwnas.spaces import space_from_config

        measured_in = space_from_config(data.space_config)
        if measured_in.name != space.name:
            raise DataError(f"{origin} holds measurements of space '{measured_in.name}', "
                            f"not '{space.name}'")
        self.model = SizeAwareRidge.from_json(data.model, space, origin)
        probe = space.sample_genomes(np.random.default_rng(0), 1)
        if len(self.model.mean) != self.model.features(probe).shape[1]:
            raise DataError(f"the model in {origin} does not fit the space's encoding")
        cv = data.meta.get("cv") or {}
        super().__init__(space, origin, data.meta.get("domain") or domain_of(data.space_config),
                         f"top-1 measured on {len(data.rows)} subnets where measured, else a "
                         f"model fitted on them ({cv.get('folds', '?')}-fold "
                         f"cross-validated Kendall tau {cv.get('kendall_tau', float('nan')):.3f})")
        self._measured: dict[bytes, float] = {}
        same = all(space.config().get(k) == v for k, v in self.domain.items()
                   if k != "resolutions")
        if same:                        # measured subnets exist in this configuration only
            archs = [measured_in.parse(r["arch"]) for r in data.rows]
            keys = _keys(measured_in, measured_in.to_genomes(archs))
            self._measured = {k: r["top1"] / 100.0 for k, r in zip(keys, data.rows)}

    def _lookup(self, genomes: np.ndarray) -> np.ndarray:
        if not self._measured:
            return np.full(len(genomes), np.nan)
        return np.array([self._measured.get(k, np.nan) for k in _keys(self.space, genomes)])

    def predict_genomes(self, genomes: np.ndarray) -> np.ndarray:
        pred = np.asarray(self.model.predict_genomes(genomes), np.float64)
        found = self._lookup(genomes)
        return np.where(np.isnan(found), pred, found)

    def kind_genomes(self, genomes: np.ndarray) -> np.ndarray:
        found = ~np.isnan(self._lookup(genomes))
        return np.where(found, MEASURED, PREDICTED).astype(object)


def _load(space, path: Path) -> MeasuredAccuracy:
    return MeasuredAccuracy(space, MeasuredData.load(path), str(path))


register_source(SourceSpec(
    SOURCE, "measured top-1 from a CSV of arch -> top-1 (e.g. DyNAS-T's), and a model fitted "
            "on it for the subnets not measured",
    imported_locator(SOURCE, SUFFIX), _load,
    "hwnas import-accuracy --source .../ofa_imagenet/dynast_top1/ (CSV files of arch, top-1)"))
