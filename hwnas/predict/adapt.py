"""A new device in minutes: fit a few-shot predictor from its measured networks and save it.

The measurements come from ``hwnas.profile.samples`` (k informative networks compiled and
timed on the device) or from the user's own CSV (``read_measurements``). The sources are other
devices: the published multi-device latencies of the space, where its plugin names a file of
them (NAS-Bench-201, FBNet), else the other targets' latency tables of the space. The target itself is never a source: its own values would
leak into the predictor that is meant to be judged on it.

The result is ``latency_tables/<target>/<space>.fewshot.json`` (JSON, written atomically): the
sources, k, the samples, the fitted weights and a leave-one-out error estimate.
"""
from __future__ import annotations

import csv
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from hwnas.errors import DataError, HwnasError, TableError
from hwnas.predict._costs import CostFeatures
from hwnas.predict._sources import MIN_SAMPLES, SourceFactors, SourceMatrix, TargetSamples
from hwnas.predict.fewshot import FewShotPredictor

__all__ = ["Measurements", "read_measurements", "SourceSet", "default_sources",
           "resolve_sources", "fit_fewshot", "leave_one_out", "fewshot_file", "POOR_LOO",
           "MIN_SAMPLES", "DUPLICATE_TOLERANCE", "LATENCY_RANGE_MS"]

log = logging.getLogger("hwnas.predict")

POOR_LOO = 0.10            # mean |relative error| above which an estimate is called poor
TABLE_MATRIX_ARCHS = 2048  # archs whose table sums make the source matrix of table sources


def fewshot_file(target: str, space_name: str, for_writing: bool = False) -> Path:
    """``latency_tables/<target>/<space>.fewshot.json``, or ``cpu-<mcpu>/`` beside it for a
    target with a CPU model (``x86-host``): a few-shot predictor is fitted on one CPU
    model's networks and must not serve another."""
    from hwnas.profile.table import cpu_file

    return cpu_file(target, space_name, ".fewshot", for_writing)


# ---------------------------------------------------------------------------- measurements
#: repeated rows of one arch are averaged only when they spread less than this fraction of
#: their mean; wider ones are refused (two different measurements, not one repeated)
DUPLICATE_TOLERANCE = 0.10
#: a latency outside this range (ms) is no measurement of a network: a unit or typing error
LATENCY_RANGE_MS = (1e-6, 1e7)
_COLUMNS = ("arch", "latency_ms", "batch")


@dataclass
class Measurements:
    """Distinct archs (strings of the space) and their latency; repeats averaged."""

    archs: list[str]
    latency_ms: np.ndarray
    duplicates: dict[str, int] = field(default_factory=dict)    # arch → rows averaged
    batch: int | None = None
    origin: str = ""
    tuning_dir: str | None = None         # the database measured networks were compiled with

    @classmethod
    def from_pairs(cls, pairs: Sequence[tuple[str, float]], origin: str = "",
                   batch: int | None = None, tuning_dir: str | None = None) -> "Measurements":
        sums: dict[str, list[float]] = {}
        for arch, ms in pairs:
            sums.setdefault(arch, []).append(float(ms))
        return cls(list(sums), np.array([np.mean(v) for v in sums.values()]),
                   {a: len(v) for a, v in sums.items() if len(v) > 1}, batch, origin,
                   tuning_dir)


def _row_error(path, line: int, text: str) -> DataError:
    return DataError(f"{path}:{line}: {text}")


def read_measurements(path: str | Path, space) -> Measurements:
    """Rows ``arch,latency_ms[,batch]``. A header row names the columns, in any order (other
    columns are ignored); without one the columns are in that order. A UTF-8 byte-order mark
    and CRLF line ends are accepted. Bad rows raise a ``DataError`` naming the file and line;
    an arch given more than once is averaged only when its rows agree within
    ``DUPLICATE_TOLERANCE`` of their mean, and refused otherwise."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except OSError as exc:
        raise DataError(f"cannot read measurements {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise DataError(f"{path} is not a UTF-8 text file") from None
    except csv.Error as exc:
        raise DataError(f"{path} is not a CSV file: {exc}") from None
    pairs, batches, errors, lines = [], set(), [], {}
    columns = None
    for line, row in enumerate(rows, 1):
        cells = [c.strip() for c in row]
        if not cells or not any(cells) or cells[0].startswith("#"):
            continue
        if columns is None and not pairs and not errors and _is_header(cells):
            columns = _header(cells, path, line)
            continue
        try:
            arch, ms, batch = _parse_row(_pick(cells, columns), space)
            pairs.append((arch, ms))
            lines.setdefault(arch, []).append((line, ms))
            if batch is not None:
                batches.add(batch)
        except ValueError as exc:
            errors.append(_row_error(path, line, str(exc)))
    if errors:
        more = f" (and {len(errors) - 1} more bad rows)" if len(errors) > 1 else ""
        raise DataError(f"{errors[0]}{more}")
    if len(batches) > 1:
        raise DataError(f"{path}: rows measured at several batch sizes "
                        f"({', '.join(map(str, sorted(batches)))}); give one batch size a file")
    _check_repeats(path, lines)
    m = Measurements.from_pairs(pairs, str(path), batches.pop() if batches else None)
    if len(m.archs) < MIN_SAMPLES:
        raise DataError(f"{path}: {len(m.archs)} distinct archs; few-shot adaptation needs "
                        f"at least {MIN_SAMPLES}")
    return m


def _is_header(cells: list[str]) -> bool:
    """A first row that names an ``arch`` column, or that holds no number at all."""
    def number(text: str) -> bool:
        try:
            float(text)
        except ValueError:
            return False
        return True

    return "arch" in (c.lower() for c in cells) or not any(number(c) for c in cells)


def _header(cells: list[str], path: Path, line: int) -> dict[str, int]:
    """Column name → index of a header row; ``arch`` and ``latency_ms`` must be there."""
    names = [c.lower() for c in cells]
    columns = {n: names.index(n) for n in _COLUMNS if n in names}
    missing = [n for n in _COLUMNS[:2] if n not in columns]
    if missing:
        raise _row_error(path, line, f"expected arch,latency_ms[,batch]: the header row "
                         f"names no '{missing[0]}' column (it names {', '.join(cells)})")
    return columns


def _pick(cells: list[str], columns: dict[str, int] | None) -> list[str]:
    """The row's arch, latency and (optional) batch cells, by header or by position."""
    if columns is None:
        if len(cells) < 2 or len(cells) > 3:
            raise ValueError(f"expected arch,latency_ms[,batch], got {len(cells)} fields")
        return cells
    need = max(columns["arch"], columns["latency_ms"]) + 1
    if len(cells) < need:
        raise ValueError(f"{len(cells)} fields, but the header puts arch and latency_ms in "
                         f"the first {need}")
    return [cells[columns[n]] if n in columns and columns[n] < len(cells) else ""
            for n in _COLUMNS]


def _check_repeats(path: Path, lines: dict[str, list[tuple[int, float]]]) -> None:
    """Rows of one arch that disagree are two measurements, not a repeat: refused."""
    for arch, rows in lines.items():
        values = [ms for _, ms in rows]
        if len(values) > 1 and (max(values) - min(values)) > DUPLICATE_TOLERANCE * np.mean(values):
            where = ", ".join(f"line {n}: {ms:g} ms" for n, ms in rows)
            raise DataError(f"{path}: arch {arch} is given {len(rows)} latencies that disagree "
                            f"by more than {DUPLICATE_TOLERANCE:.0%} of their mean ({where}); "
                            f"keep the right one")


def _batch(text: str) -> int:
    try:
        b = int(text)
    except ValueError:
        raise ValueError(f"batch '{text}' is not a whole number") from None
    if b < 1:
        raise ValueError(f"batch must be at least 1, got {b}")
    return b


def _parse_row(cells: list[str], space) -> tuple[str, float, int | None]:
    try:
        arch = space.parse(cells[0])
    except (HwnasError, ValueError, KeyError, IndexError) as exc:
        raise ValueError(f"'{cells[0]}' is not an arch of space '{space.name}': {exc}") from None
    try:
        ms = float(cells[1])
    except ValueError:
        raise ValueError(f"latency '{cells[1]}' is not a number") from None
    if not math.isfinite(ms) or ms <= 0:
        raise ValueError(f"latency must be a positive, finite number of ms, got {cells[1]}")
    lo, hi = LATENCY_RANGE_MS
    if not lo <= ms <= hi:
        raise ValueError(f"latency {cells[1]} ms is outside {lo:g}–{hi:g} ms, no measurement "
                         f"of one network (a unit or typing error?)")
    batch = _batch(cells[2]) if len(cells) > 2 and cells[2] else None
    return str(arch), ms, batch


# ---------------------------------------------------------------------------- sources
@dataclass
class SourceSet:
    """What a few-shot predictor of ``target`` learns from besides its samples."""

    target: str
    factors: SourceFactors | None = None
    tables: dict[str, np.ndarray] = field(default_factory=dict)
    used: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)     # source → why not used
    kind: str = "none"                       # "published", "tables" or "none"

    def costs(self, space) -> CostFeatures | None:
        """Cost features for a table source set (None: the predictor builds its own)."""
        if self.kind != "tables":
            return None
        return CostFeatures.build(space, self.tables)


#: a source that is another CPU model's table of the same target: ``<target>@<mcpu>``
CPU_SEP = "@"


def default_sources(target: str, space) -> list[str]:
    """The devices of the space's published latencies, where its plugin names a file of
    them; otherwise every other target with a latency table for the space, and the tables
    of ``target`` measured on other CPU models (``x86-host@znver5``: a target such as
    ``x86-host`` runs on whatever CPU the machine has, and each CPU model is a device)."""
    from hwnas.predict.external import has_published, load_external
    from hwnas.profile.table import tables_by_cpu, targets_with_table

    if has_published(space.name):
        return [d for d in load_external(space.name).devices if d != target]
    here = _this_cpu(target)
    others = [t for t in targets_with_table(space.name) if t != target]
    return others + [f"{target}{CPU_SEP}{cpu}" for cpu in tables_by_cpu(target, space.name)
                     if here and cpu != here]


def _this_cpu(target: str) -> str | None:
    from hwnas.targets import load_target

    try:
        return load_target(target).mcpu or None
    except HwnasError:
        return None


def resolve_sources(target: str, space, names: Sequence[str] | None = None) -> SourceSet:
    """Load the sources (``names``, or ``default_sources``); the target among them is refused."""
    from hwnas.predict.external import has_published

    names = list(dict.fromkeys(names)) if names is not None else default_sources(target, space)
    if target in names:
        raise HwnasError(f"the sources include the target '{target}' itself: its own "
                         "measurements would leak into its predictor")
    if has_published(space.name):
        return _published_sources(target, space, names)
    return _table_sources(target, space, names)


def _published_sources(target: str, space, names: list[str]) -> SourceSet:
    from hwnas.predict.external import load_external

    matrix = load_external(space.name)
    unknown = [n for n in names if n not in matrix.devices]
    if unknown:
        raise DataError(f"no published latencies of '{unknown[0]}' for space '{space.name}'; "
                        f"have: {', '.join(matrix.devices)}")
    out = SourceSet(target, kind="published", used=list(names))
    if len(names) >= 2:
        out.factors = SourceFactors(space, matrix.without(
            [d for d in matrix.devices if d not in names]))
    elif names:
        out.skipped[names[0]] = "latency factors need at least 2 source devices"
        out.used = []
    return out


def _configured_table(target: str, space) -> Path:
    """``target``'s table of ``space`` (``table_path``), or, where that one records another
    configuration only (a CPU folder may hold the ImageNet one), the first of ``target``'s
    tables that records ``space``'s configuration."""
    from hwnas.profile.table import LatencyTable, table_path, tables_by_cpu

    first = table_path(target, space)
    for path in [first, *tables_by_cpu(target, space.name).values()]:
        try:
            if path.exists() and LatencyTable.load(path).config_index(space) is not None:
                return path
        except TableError:
            continue
    return first


def _table_sources(target: str, space, names: list[str]) -> SourceSet:
    from hwnas.profile.table import LatencyTable, tables_by_cpu

    out = SourceSet(target, kind="tables")
    for name in names:
        dev, _, cpu = name.partition(CPU_SEP)
        path = tables_by_cpu(dev, space.name).get(cpu) if cpu else _configured_table(name, space)
        if path is None or not path.exists():
            raise TableError(f"source '{name}' has no latency table for space '{space.name}' "
                             f"(looked for {path or f'a table of {dev} measured on {cpu}'})")
        table = LatencyTable.load(path)
        if table.target == target and not (cpu and cpu != _this_cpu(target)):
            raise HwnasError(f"{path} was measured for the target '{target}' itself: its "
                             "values would leak into its predictor")
        missing = table.missing(space.op_list)
        if missing:
            out.skipped[name] = (f"its table lacks {len(missing)} of the space's "
                                 f"{len(space.op_list)} operators, e.g. {missing[0].key}")
            log.info("source %s not used: %s", name, out.skipped[name])
            continue
        out.tables[name] = table.vector(space.op_list)
        out.used.append(name)
    if len(out.tables) >= 2:
        genomes = space.sample_genomes(np.random.default_rng(0), TABLE_MATRIX_ARCHS)
        ids = space.op_indices(genomes)
        ms = np.stack([v[ids].sum(1) for v in out.tables.values()], 1)
        out.factors = SourceFactors(space, SourceMatrix(genomes, tuple(out.tables), ms))
    return out


# ---------------------------------------------------------------------------- fitting
def fit_fewshot(space, target: str, measurements: Measurements,
                sources: SourceSet) -> FewShotPredictor:
    """The few-shot predictor of ``target`` from its measurements and ``sources``."""
    if len(measurements.archs) < MIN_SAMPLES:
        raise HwnasError(f"few-shot adaptation needs at least {MIN_SAMPLES} measured networks "
                         f"of '{target}', got {len(measurements.archs)}")
    genomes = space.to_genomes([space.parse(a) for a in measurements.archs])
    samples = TargetSamples(target, genomes, np.asarray(measurements.latency_ms, float))
    return FewShotPredictor(space, sources.factors, samples, costs=sources.costs(space),
                            tables=sources.tables or None)


def leave_one_out(pred: FewShotPredictor) -> dict:
    """Each sample predicted by the model refitted without it: the relative errors' mean,
    median and share within ±10%."""
    s = pred.samples
    errs = []
    for i in range(len(s.genomes)):
        keep = np.arange(len(s.genomes)) != i
        sub = TargetSamples(s.device, s.genomes[keep], s.latency_ms[keep])
        fit = FewShotPredictor(pred.space, pred.source, sub, costs=pred.costs,
                               families=pred.families)
        errs.append(float(fit.predict_genomes(s.genomes[i:i + 1])[0] / s.latency_ms[i] - 1))
    e = np.abs(np.asarray(errs))
    return {"n": len(errs), "mean_abs_rel_error": float(e.mean()),
            "median_abs_rel_error": float(np.median(e)), "within10": float(np.mean(e <= 0.10)),
            "relative_errors": [round(v, 5) for v in errs]}
