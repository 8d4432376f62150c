"""Measured top-1 from CSV files of arch → top-1, such as DyNAS-T's ``dynast_top1/*.csv``.

A file has a header row. Its arch column (``Sub-network`` or ``arch``) holds either an arch
string or OFA's dict form as a Python literal (``{'wid': None, 'ks': [...], 'e': [...],
'd': [...], 'r': [224]}``), read with ``ast.literal_eval``, never ``eval``. Its top-1 column
(``Top-1 Acc (%)`` or ``top1``) holds percent, 0-100.

The same subnet may be measured more than once (in one file or in several). Repeats that agree
within ``tolerance`` points are averaged; repeats that disagree by more are refused, naming
their lines, since a mean would hide a broken measurement. Every error is one line that names
the file and the line.
"""
from __future__ import annotations

import ast
import csv
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hwnas.errors import DataError, HwnasError

__all__ = ["MeasuredRow", "MeasuredTable", "read_measured_csv", "csv_files",
           "ARCH_COLUMNS", "TOP1_COLUMNS", "DEFAULT_TOLERANCE"]

ARCH_COLUMNS = ("Sub-network", "arch")
TOP1_COLUMNS = ("Top-1 Acc (%)", "top1")
#: repeats of one subnet further apart than this (top-1 points) are refused, not averaged;
#: DyNAS-T's own repeats lie at most 0.09 points apart
DEFAULT_TOLERANCE = 0.25
_MAX_FIELD = 10_000                        # an arch field longer than this is no arch


@dataclass(frozen=True)
class MeasuredRow:
    """One subnet: its arch string, mean top-1 (%) over its repeats and where they were."""

    arch: str
    top1: float
    n: int
    spread: float
    lines: tuple[str, ...]

    def to_json(self) -> dict:
        return {"arch": self.arch, "top1": self.top1, "n": self.n,
                "spread": round(self.spread, 6)}


@dataclass
class MeasuredTable:
    """Measured subnets of one space configuration, repeats averaged."""

    space_config: dict
    rows: list[MeasuredRow]
    tolerance: float
    files: list[dict] = field(default_factory=list)

    @property
    def top1(self) -> np.ndarray:
        return np.array([r.top1 for r in self.rows], np.float64)

    def archs(self, space) -> list:
        return [space.parse(r.arch) for r in self.rows]

    def summary(self) -> dict:
        rep = [r for r in self.rows if r.n > 1]
        return {"rows": sum(r.n for r in self.rows), "subnets": len(self.rows),
                "repeated": len(rep), "max_repeat_spread": max((r.spread for r in rep),
                                                               default=0.0),
                "top1_range": [float(self.top1.min()), float(self.top1.max())],
                "tolerance_points": self.tolerance}


def csv_files(source: str | Path) -> list[Path]:
    """``source`` itself, or the ``*.csv`` files of a folder, sorted."""
    p = Path(source)
    files = sorted(p.glob("*.csv")) if p.is_dir() else [p]
    if not files:
        raise DataError(f"no .csv files in {p}")
    return files


def _column(header: list[str], names: tuple[str, ...], what: str, path: Path) -> str:
    for name in names:
        if name in header:
            return name
    raise DataError(f"{path}:1: no {what} column (one of: {', '.join(names)}); header is "
                    f"{', '.join(header)[:120]}")


def _arch(text: str, space, where: str) -> str:
    text = (text or "").strip()
    if len(text) > _MAX_FIELD:
        raise DataError(f"{where}: the arch field is {len(text)} characters long")
    try:
        if text.startswith("{"):
            try:
                obj = ast.literal_eval(text)
            except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
                raise DataError(f"{where}: malformed arch dict {text[:60]!r}") from None
            if not isinstance(obj, dict):
                raise DataError(f"{where}: malformed arch dict {text[:60]!r}")
            return str(space.from_json(obj))
        return str(space.parse(text))
    except DataError:
        raise
    except HwnasError as exc:
        raise DataError(f"{where}: {exc}") from None


def _top1(text: str, where: str) -> float:
    try:
        v = float(text)
    except (TypeError, ValueError):
        raise DataError(f"{where}: top-1 {str(text)[:30]!r} is not a number") from None
    if not math.isfinite(v) or not 0.0 <= v <= 100.0:
        raise DataError(f"{where}: top-1 {v:g} outside 0-100 (percent)")
    return v


def _read_one(path: Path, space, seen: dict[str, list[tuple[float, str]]]) -> dict:
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8-sig")
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise DataError(f"{path} is not a text (CSV) file") from None
    reader = csv.DictReader(text.splitlines())
    header = list(reader.fieldnames or [])
    arch_col = _column(header, ARCH_COLUMNS, "arch", path)
    top1_col = _column(header, TOP1_COLUMNS, "top-1", path)
    n = 0
    try:
        for row in reader:
            where = f"{path}:{reader.line_num}"
            arch = _arch(row.get(arch_col), space, where)
            seen.setdefault(arch, []).append((_top1(row.get(top1_col), where), where))
            n += 1
    except csv.Error as exc:
        raise DataError(f"{path}:{reader.line_num}: malformed CSV: {exc}") from None
    if n == 0:
        raise DataError(f"{path}: no rows below the header")
    return {"file": str(path.resolve()), "sha256": hashlib.sha256(raw).hexdigest(), "rows": n}


def read_measured_csv(sources: Sequence[str | Path], space,
                      tolerance: float = DEFAULT_TOLERANCE) -> MeasuredTable:
    """The measured subnets of CSV files (or folders of them) as subnets of ``space``."""
    if not (isinstance(tolerance, (int, float)) and math.isfinite(tolerance) and tolerance >= 0):
        raise DataError(f"the repeat tolerance must be ≥ 0 top-1 points, got {tolerance!r}")
    seen: dict[str, list[tuple[float, str]]] = {}
    files = [_read_one(p, space, seen) for src in sources for p in csv_files(src)]
    rows = []
    for arch, reps in seen.items():
        vals = [v for v, _ in reps]
        spread = max(vals) - min(vals)
        if spread > tolerance + 1e-9:
            lo, hi = min(reps), max(reps)
            raise DataError(f"{arch} was measured {len(reps)} times {spread:.3g} points apart "
                            f"(more than the tolerance {tolerance:g}): {lo[1]} gives "
                            f"{lo[0]:g}, {hi[1]} gives {hi[0]:g}")
        rows.append(MeasuredRow(arch, float(np.mean(vals)), len(vals), float(spread),
                                tuple(w for _, w in reps)))
    return MeasuredTable(space.config(), rows, float(tolerance), files)
