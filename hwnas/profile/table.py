"""``LatencyTable``: op key → measured latency, plus the metadata that makes it trustworthy."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from hwnas._io import atomic_write_json, read_json
from hwnas.errors import TableError

__all__ = ["Latency", "LatencyTable", "table_path", "tables_dir"]

FORMAT = "hwnas-latency-table/1"


def tables_dir() -> Path:
    import os

    env = os.environ.get("HWNAS_TABLES")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "latency_tables"


def table_path(target: str, space: str) -> Path:
    return tables_dir() / target / f"{space}.json"


@dataclass(frozen=True)
class Latency:
    """A latency with its spread. Adding two adds medians and variances."""

    median_ms: float
    p90_ms: float
    std_ms: float
    n: int

    def __add__(self, other: "Latency") -> "Latency":
        return Latency(self.median_ms + other.median_ms, self.p90_ms + other.p90_ms,
                       math.sqrt(self.std_ms ** 2 + other.std_ms ** 2), min(self.n, other.n))

    @property
    def cv(self) -> float:
        return self.std_ms / self.median_ms if self.median_ms > 0 else 0.0

    @classmethod
    def from_samples_ms(cls, samples_ms: Iterable[float]) -> "Latency":
        a = np.asarray(list(samples_ms), dtype=np.float64)
        if a.size == 0:
            raise ValueError("no samples")
        return cls(float(np.median(a)), float(np.percentile(a, 90)),
                   float(a.std(ddof=1)) if a.size > 1 else 0.0, int(a.size))

    def to_json(self) -> dict:
        return {"median_ms": self.median_ms, "p90_ms": self.p90_ms, "std_ms": self.std_ms,
                "n": self.n}


class LatencyTable:
    """Entries are ``key → {median_ms, p90_ms, std_ms, n, ...}``; ``meta`` says how and where.

    ``meta`` holds at least ``target`` and ``space``; profiling adds the device description,
    versions, protocol, date, coverage and whole-network measurements (``networks``).
    """

    def __init__(self, meta: dict, entries: dict[str, dict] | None = None) -> None:
        for k in ("target", "space"):
            if k not in meta:
                raise TableError(f"latency table metadata lacks '{k}'")
        self.meta = dict(meta)
        self.entries: dict[str, dict] = dict(entries or {})

    # ---- access
    @property
    def target(self) -> str:
        return self.meta["target"]

    def __contains__(self, key: str) -> bool:
        return key in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)

    def __getitem__(self, key: str) -> Latency:
        e = self.entries.get(key)
        if e is None:
            raise TableError(f"latency table for target '{self.target}' has no entry for "
                             f"operator '{key}'; profile it with `hwnas profile`")
        return Latency(e["median_ms"], e["p90_ms"], e["std_ms"], e["n"])

    def add(self, key: str, latency: Latency, **extra) -> None:
        self.entries[key] = {**latency.to_json(), **extra}

    def vector(self, op_list, field: str = "median_ms") -> np.ndarray:
        """Values for ``op_list`` in order plus a trailing 0 (the space's ``null_op``).

        Raises on the first missing key, naming it: a table never silently guesses.
        """
        out = np.zeros(len(op_list) + 1)
        missing = [op.key for op in op_list if op.key not in self.entries]
        if missing:
            raise TableError(f"latency table for target '{self.target}' lacks {len(missing)} of "
                             f"{len(op_list)} operators of the space, e.g. '{missing[0]}'")
        for i, op in enumerate(op_list):
            out[i] = self.entries[op.key][field]
        return out

    def missing(self, op_list) -> list:
        return [op for op in op_list if op.key not in self.entries]

    # ---- persistence
    def to_json(self) -> dict:
        return {"format": FORMAT, "meta": self.meta, "entries": self.entries}

    def save(self, path: str | Path) -> Path:
        return atomic_write_json(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> "LatencyTable":
        data = read_json(path, "latency table", TableError)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise TableError(f"{path} is not an hwnas latency table (format must be '{FORMAT}')")
        meta, entries = data.get("meta"), data.get("entries")
        if not isinstance(meta, dict) or not isinstance(entries, dict):
            raise TableError(f"corrupt latency table {path}: 'meta' and 'entries' must be objects")
        for key, e in entries.items():
            if not isinstance(e, dict) or any(
                    not isinstance(e.get(f), (int, float)) or not math.isfinite(e[f]) or e[f] < 0
                    for f in ("median_ms", "p90_ms", "std_ms", "n")):
                raise TableError(f"corrupt latency table {path}: bad entry for '{key}'")
        missing = [k for k in ("target", "space") if k not in meta]
        if missing:
            raise TableError(f"corrupt latency table {path}: metadata lacks '{missing[0]}'")
        return cls(meta, entries)
