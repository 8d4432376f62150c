"""Published multi-device latencies (``../shared/data/external``) as ``SourceMatrix`` objects.

The files are read in place and never copied: NAS-Bench-201 (all 15,625 cells) and FBNet
(5,000 sampled networks), each on 27 device/batch settings (see that folder's README).
"""
from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from hwnas.errors import DataError
from hwnas.predict.fewshot import SourceMatrix

__all__ = ["EXTERNAL_FILES", "external_dir", "load_external", "same_device"]

EXTERNAL_FILES = {"nb201": "nb201_latency_ms.csv", "fbnet": "fbnet_latency_ms.csv"}
_FIRST_DEVICE_COLUMN = {"nb201": 2, "fbnet": 3}


def external_dir() -> Path:
    """``$HWNAS_EXTERNAL`` if set, else ``../shared/data/external`` beside the repository."""
    env = os.environ.get("HWNAS_EXTERNAL")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "data" / "external"


def same_device(a: str, b: str) -> bool:
    """``titan_rtx_1`` and ``titan_rtx_256`` are one device at two batch sizes."""
    def base(d: str) -> str:
        head, _, tail = d.rpartition("_")
        return head if tail.isdigit() and head else d

    return base(a) == base(b)


def _genomes(space, name: str, rows: list[list[str]]) -> np.ndarray:
    if name == "nb201":
        return space.to_genomes([space.parse(r[1]) for r in rows])
    # fbnet: the candidate indices, then the (single) resolution index
    genes = np.array([[int(v) for v in r[1].split()] for r in rows], np.int16)
    return np.concatenate([genes, np.zeros((len(genes), 1), np.int16)], 1)


def load_external(space_name: str, directory: str | Path | None = None) -> SourceMatrix:
    """Every device column of the published file for ``space_name`` (``nb201`` or ``fbnet``)."""
    from hwnas.spaces import get_space

    if space_name not in EXTERNAL_FILES:
        raise DataError(f"no published latencies for space '{space_name}'; have: "
                        f"{', '.join(EXTERNAL_FILES)}")
    path = Path(directory or external_dir()) / EXTERNAL_FILES[space_name]
    try:
        with open(path, newline="") as fh:
            rows = list(csv.reader(fh))
    except OSError as exc:
        raise DataError(f"cannot read published latencies {path}: {exc.strerror}") from None
    first = _FIRST_DEVICE_COLUMN[space_name]
    header, body = rows[0], rows[1:]
    try:
        ms = np.array([[float(v) for v in r[first:]] for r in body])
    except ValueError as exc:
        raise DataError(f"{path}: non-numeric latency ({exc})") from None
    return SourceMatrix(_genomes(get_space(space_name), space_name, body),
                        tuple(header[first:]), ms)
