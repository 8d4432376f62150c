"""Published multi-device latencies (``../shared/data/external``) as ``SourceMatrix`` objects.

The files are read in place and never copied; a space's plugin names its file (for example
all 15,625 NAS-Bench-201 cells and 5,000 sampled FBNet networks, each on 27 device/batch
settings: see that folder's README).
"""
from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from hwnas.errors import DataError
from hwnas.predict.fewshot import SourceMatrix

__all__ = ["has_published", "external_dir", "load_external", "same_device"]

def _published(space_name: str):
    """The space's published-latency record; a space without one lists those that have."""
    from hwnas.spaces import SPACES, space_plugin

    pub = space_plugin(space_name).published_latency
    if pub is None:
        have = [n for n in SPACES.names() if SPACES.get(n).published_latency is not None]
        raise DataError(f"no published latencies for space '{space_name}'; have: "
                        f"{', '.join(have)}")
    return pub


def has_published(space_name: str) -> bool:
    """Whether the space's plugin names a file of published multi-device latencies."""
    from hwnas.spaces import space_plugin

    return space_plugin(space_name).published_latency is not None


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


def load_external(space_name: str, directory: str | Path | None = None) -> SourceMatrix:
    """Every device column of the published file of ``space_name`` (its plugin names it)."""
    from hwnas.spaces import get_space

    pub = _published(space_name)
    path = Path(directory or external_dir()) / pub.file
    try:
        with open(path, newline="") as fh:
            rows = list(csv.reader(fh))
    except OSError as exc:
        raise DataError(f"cannot read published latencies {path}: {exc.strerror}") from None
    first = pub.first_device_column
    header, body = rows[0], rows[1:]
    try:
        ms = np.array([[float(v) for v in r[first:]] for r in body])
    except ValueError as exc:
        raise DataError(f"{path}: non-numeric latency ({exc})") from None
    return SourceMatrix(pub.genomes(get_space(space_name), [r[1] for r in body]),
                        tuple(header[first:]), ms)
