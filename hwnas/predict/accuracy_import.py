"""Published accuracy data → the project's own files (``hwnas import-accuracy``).

One importer per format, by name (``ACCURACY_IMPORTERS``):

* ``ofa-predictor``: Once-for-All's accuracy predictor ``.pth`` → ``ofa-predictor.npz``;
* ``measured-csv``: CSV files of arch → top-1 (a file or a folder of them, such as DyNAS-T's
  ``dynast_top1/``) → ``measured.json``, with the model fitted and cross-validated on them
  (``tolerance``: how far apart, in top-1 points, repeats of one subnet may lie).

The file is written to ``accuracy/<space>/<source><suffix>`` in the data folders (or
``out``), atomically, and only after the whole input was read and checked: a bad input leaves
whatever was imported before as it was. An existing file is replaced only with ``force``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from hwnas._registry import Registry
from hwnas.errors import DataError, OutputError
from hwnas.predict import measured_accuracy, ofa_predictor
from hwnas.predict._accuracy_source import accuracy_write_path
from hwnas.predict.measured_accuracy import build_measured_data
from hwnas.predict.measured_csv import DEFAULT_TOLERANCE, read_measured_csv
from hwnas.spaces.ofa_mbv3 import PLUGIN as OFA

__all__ = ["ACCURACY_IMPORTERS", "AccuracyImporter", "ImportedAccuracy", "import_accuracy",
           "detect_accuracy_format"]

ACCURACY_IMPORTERS: Registry = Registry("accuracy format")


@dataclass(frozen=True)
class AccuracyImporter:
    """``read(source, space, options) -> (object with save(path), summary dict)``; the
    space is the configuration named by ``default_space`` unless the caller names one."""

    source: str
    suffix: str
    default_space: Callable[[], str]
    read: Callable[..., tuple]
    suffixes: tuple[str, ...]


@dataclass
class ImportedAccuracy:
    """What an import wrote: the file, its source and format, and what it holds."""

    path: Path
    source: str
    format: str
    space: dict
    summary: dict = field(default_factory=dict)


def _ofa_space() -> str:
    return f"{OFA.name}-imagenet"


def _read_ofa(path: Path, space, options: dict):
    model = ofa_predictor.read_ofa_pth(path, space.config())
    hidden = [int(w.shape[0]) for w in model.weights[:-1]]
    return model, {"layers": f"128 → {' → '.join(map(str, hidden))} → 1",
                   "sha256": model.meta["imported"]["sha256"]}


def _dynast_space() -> str:
    return f"{OFA.name}-imagenet-w10"


def _read_measured(path: Path, space, options: dict):
    table = read_measured_csv([path], space, options.get("tolerance", DEFAULT_TOLERANCE))
    data = build_measured_data(table, space)
    cv = data.meta["cv"]
    return data, {**table.summary(),
                  "model": f"{cv['folds']}-fold cross-validated Kendall tau "
                           f"{cv['kendall_tau']:.3f}, Spearman {cv['spearman']:.3f}, MAE "
                           f"{cv['mae_points']:.3f} points"}


ACCURACY_IMPORTERS.register("ofa-predictor")(AccuracyImporter(
    ofa_predictor.SOURCE, ofa_predictor.SUFFIX, _ofa_space, _read_ofa, (".pth", ".pt")))
ACCURACY_IMPORTERS.register("measured-csv")(AccuracyImporter(
    measured_accuracy.SOURCE, measured_accuracy.SUFFIX, _dynast_space, _read_measured,
    (".csv",)))


def detect_accuracy_format(source: str | Path) -> str:
    """The format of ``source`` by its file suffix (a folder: the suffix of its files)."""
    p = Path(source)
    names = [q.suffix.lower() for q in p.iterdir()] if p.is_dir() else [p.suffix.lower()]
    for name in ACCURACY_IMPORTERS.names():
        if any(s in ACCURACY_IMPORTERS.get(name).suffixes for s in names):
            return name
    raise DataError(f"cannot tell the format of {p} from its suffix; give one of: "
                    f"{', '.join(ACCURACY_IMPORTERS.names())}")


def import_accuracy(source: str | Path, fmt: str | None = None, space: str | None = None,
                    out: str | Path | None = None, force: bool = False,
                    **options) -> ImportedAccuracy:
    """Read ``source`` as ``fmt`` (None: by its suffix) for the configuration ``space`` (None:
    the format's) and write it; returns what was written."""
    from hwnas.spaces import get_space, space_plugin

    src = Path(source)
    if not src.exists():
        raise DataError(f"accuracy data not found: {src}")
    fmt = fmt or detect_accuracy_format(src)
    imp = ACCURACY_IMPORTERS.get(fmt)
    sp = get_space(space or imp.default_space())
    dest = Path(out) if out is not None else accuracy_write_path(space_plugin(sp).name,
                                                                 imp.source, imp.suffix)
    if dest.exists() and not force:
        raise OutputError(f"{dest} exists; pass force=True to replace it")
    obj, summary = imp.read(src, sp, options)
    obj.save(dest)
    return ImportedAccuracy(dest, imp.source, fmt, sp.config(), summary)
