"""``LatencyTable``: op key → measured latency, plus the metadata that makes it trustworthy.

Format ``hwnas-latency-table/2`` (``/1`` is still read: it has no per-resolution part):

* ``entries``: op key → ``{median_ms, p90_ms, std_ms, n, ...}``, one value per key. Tables
  measured here have only these.
* ``by_resolution`` (optional): input resolution → op key → entry. Published tables that come
  as one file per input resolution (Once-for-All's) keep each file here, because the same key
  was timed differently in different files and their authors price a subnet from the file of
  its resolution only. When present, lookups for a space use it (``space_values``);
  ``entries`` then holds every key pooled over the files (coverage, tuning priorities and
  other tools that want one value per key).
"""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Iterator

import numpy as np

from hwnas._io import atomic_write_json, read_json
from hwnas.errors import TableError
from hwnas.runtime.latency import Latency

__all__ = ["LatencyTable", "table_path", "cpu_folder", "target_tables_dir", "targets_with_table",
           "at_resolution", "FORMAT", "READ_FORMATS", "is_table_file", "tables_by_cpu",
           "cpu_file"]

log = logging.getLogger("hwnas.profile")

FORMAT = "hwnas-latency-table/2"
#: formats ``LatencyTable.load`` reads (``/1``: no ``by_resolution`` part)
READ_FORMATS = ("hwnas-latency-table/1", FORMAT)
_FIELDS = ("median_ms", "p90_ms", "std_ms", "n")


def at_resolution(values: np.ndarray, r_index: int) -> np.ndarray:
    """The per-op row of ``values`` (``LatencyTable.space_values``) for resolution index
    ``r_index``: the vector itself when the table is not keyed per resolution."""
    return values if values.ndim == 1 else values[r_index]


def target_tables_dir(target: str) -> Path:
    """``latency_tables/<target>/`` in the first data folder that has it, else where a new one
    is written (``hwnas._data``)."""
    from hwnas import _data

    return _data.find("latency_tables", target) or _data.write_dir("latency_tables") / target


def table_path(target: str, space, suffix: str = "", for_writing: bool = False) -> Path:
    """``latency_tables/<target>/<space><suffix>.json``, or ``cpu-<mcpu>/<space><suffix>.json``
    beside it when one was measured on this machine's CPU model (a target such as ``x86-host``
    runs on whichever CPU the machine has, and a table describes the CPU it was measured on):
    the first existing one, else where a new one is written.

    ``space``: a space's name or a space (a configuration). Tables are filed by space, so this
    CPU model's table may record another configuration than the one asked for (the ImageNet
    one, say, where the shared table is the default's): a space, or the name of a named
    configuration, then skips it for a table that records that configuration, when there is
    one. A bare space name asks for the configuration deploy searches, the shipped
    checkpoint's; a table of another configuration still serves it where no table records
    that one (an imported phone table, say).

    ``for_writing`` (a new profile): this CPU model's folder when the target's shared table
    was measured on another CPU model, which is then left as it is.
    """
    from hwnas import _data

    name = f"{_file_stem(space if isinstance(space, str) else space.name)}{suffix}.json"
    want = None if for_writing else _configuration(space)
    cpu = cpu_folder(target, always=for_writing)
    other: Path | None = None                 # this CPU's table, of another configuration
    for d in _data.search_dirs("latency_tables"):    # the user's folder hides the shipped one
        own = d / target / cpu / name if cpu else None
        if own is not None and own.exists():
            if want is None or _records(own, want):
                return own
            other = other or own
        shared = d / target / name
        if shared.exists():
            if for_writing and cpu and _measured_elsewhere(shared, cpu):
                return _data.write_dir("latency_tables") / target / cpu / name
            if other is None or _records(shared, want):
                return shared
    return other or _data.write_dir("latency_tables") / target / name


def _configuration(space):
    """The configuration a lookup asks for: a space's; a named configuration's; for a bare
    space name, the one deploy searches (its shipped checkpoint's, when that names a
    configuration); else None."""
    if not isinstance(space, str):
        return space
    from hwnas.errors import SpaceError
    from hwnas.spaces import get_space, resolve_space_name

    try:
        plugin, config = resolve_space_name(space)
        if config is None:
            shipped = getattr(plugin, "default_checkpoint", None)
            if not shipped or resolve_space_name(shipped)[1] is None:
                return None
            space = shipped
        return get_space(space)
    except SpaceError:
        return None


_RECORDED: dict[tuple[str, int], list] = {}


def _records(path: Path, space) -> bool:
    """Whether the table at ``path`` records ``space``'s configuration (read once per file
    version; an unreadable file records nothing)."""
    try:
        key = (str(path), path.stat().st_mtime_ns)
        if key not in _RECORDED:
            data = read_json(path, "latency table", TableError)
            meta = data.get("meta", {}) if isinstance(data, dict) else {}
            _RECORDED[key] = list(meta.get("spaces", []))
    except (OSError, TableError):
        return False
    return _covering(_RECORDED[key], space) is not None


def _covering(recorded: list, space) -> int | None:
    """Index of the configuration in ``recorded`` that covers ``space`` (the same one, its
    resolutions included), or None."""
    want = {k: v for k, v in space.config().items() if k != "resolutions"}
    for i, cfg in enumerate(recorded):
        if isinstance(cfg, dict) and {k: v for k, v in cfg.items() if k != "resolutions"} \
                == want and set(getattr(space, "resolutions", ())) <= set(
                    cfg.get("resolutions", [])):
            return i
    return None


def _file_stem(space: str) -> str:
    """Tables are filed by space, not configuration: ``<space>-<configuration>`` → ``<space>``
    (a table records the configurations it covers); a name no space has is kept as it is."""
    from hwnas.errors import SpaceError
    from hwnas.spaces import resolve_space_name

    try:
        return resolve_space_name(space)[0].name
    except SpaceError:
        return space


def cpu_folder(target: str, always: bool = True) -> str | None:
    """``cpu-<mcpu>``: where ``target``'s tables measured on this machine's CPU model live, or
    None for a target without a CPU model, an unknown target, or an mcpu unfit for a folder.
    Unless ``always``, None too when the target has no ``cpu-*`` folder (resolving the host's
    CPU model imports TVM, which a lookup should not pay for without a reason)."""
    from hwnas import _data
    from hwnas.errors import HwnasError
    from hwnas.targets import load_target

    if not always and not any(d.is_dir() for base in _data.search_dirs("latency_tables")
                              for d in (base / target).glob("cpu-*")):
        return None
    try:
        slug = load_target(target).cpu_slug
    except HwnasError:
        return None
    return f"cpu-{slug}" if slug else None


def _measured_elsewhere(path: Path, cpu: str) -> bool:
    """Whether the table at ``path`` says it was measured on a CPU model other than ``cpu``'s
    (a table that cannot be read is not judged here: profiling it reports the problem)."""
    try:
        have = LatencyTable.load(path).mcpu
    except TableError:
        return False
    return bool(have) and f"cpu-{have}" != cpu


def is_table_file(path: str | Path) -> bool:
    """Whether ``path`` is a JSON file that says it is an hwnas latency table (readable or
    not): a file of the user's is never taken for one to resume or replace."""
    try:
        data = read_json(path, "latency table", TableError)
    except TableError:
        return False
    return isinstance(data, dict) and data.get("format") == FORMAT


def targets_with_table(space: str) -> list[str]:
    """Targets that have a ``<space>.json`` table in any data folder."""
    from hwnas import _data

    return sorted({p.parent.name for d in _data.search_dirs("latency_tables") if d.is_dir()
                   for p in d.glob(f"*/{_file_stem(space)}.json")})


def cpu_file(target: str, space: str, suffix: str, for_writing: bool = False) -> Path:
    """``cpu-<mcpu>/<space><suffix>.json`` of this machine's CPU model, for a target with one
    (``x86-host``): what was measured or fitted on one CPU model's networks must not serve
    another. Else ``table_path``'s file. The first existing one (the user's folder first),
    else, and always ``for_writing`` (a new fit), the one in the folder new data goes to."""
    from hwnas import _data

    cpu = cpu_folder(target)
    if cpu is None:
        return table_path(target, space, suffix, for_writing=for_writing)
    name = f"{_file_stem(space)}{suffix}.json"
    found = None if for_writing else _data.find("latency_tables", target, cpu, name)
    return found or _data.write_dir("latency_tables") / target / cpu / name


def tables_by_cpu(target: str, space: str) -> dict[str, Path]:
    """Every CPU model's table of ``target`` for ``space`` (the shared ``<space>.json`` and
    each ``cpu-<mcpu>/<space>.json``), by the CPU model the table says it was measured on;
    the user's folder hides the shipped one. Tables that cannot be read are left out."""
    from hwnas import _data

    out: dict[str, Path] = {}
    name = f"{_file_stem(space)}.json"
    for d in _data.search_dirs("latency_tables"):
        base = d / target
        for path in [base / name, *sorted(base.glob(f"cpu-*/{name}"))]:
            if not path.is_file():
                continue
            try:
                cpu = LatencyTable.load(path).mcpu
            except TableError:
                continue
            if cpu and cpu not in out:
                out[cpu] = path
    return out


def _positive(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0


def _check_meta(path, meta: dict) -> None:
    """The metadata fields the code reads, each of the right kind; the first wrong one is named
    (a table is data from disk: a hand-edited or foreign file must not fail deep inside)."""
    def bad(field: str, want: str):
        return TableError(f"corrupt latency table {path}: metadata field '{field}' must be {want}")

    for k in ("target", "space"):
        if k not in meta:
            raise TableError(f"corrupt latency table {path}: metadata lacks '{k}'")
        if not isinstance(meta[k], str) or not meta[k]:
            raise bad(k, "a name")
    spaces = meta.get("spaces", [])
    if not isinstance(spaces, list):
        raise bad("spaces", "a list of space configurations")
    for i, cfg in enumerate(spaces):
        if not isinstance(cfg, dict) or not isinstance(cfg.get("name"), str):
            raise bad(f"spaces[{i}]", "a space configuration (an object with a 'name')")
        if not isinstance(cfg.get("resolutions", []), list):
            raise bad(f"spaces[{i}].resolutions", "a list of input sizes")
    networks = meta.get("networks", [])
    if not isinstance(networks, list):
        raise bad("networks", "a list of measured networks")
    for i, rec in enumerate(networks):
        if not isinstance(rec, dict) or not isinstance(rec.get("arch"), str):
            raise bad(f"networks[{i}]", "a record with an 'arch' string")
        if not _positive(rec.get("median_ms")):
            raise bad(f"networks[{i}].median_ms", "a positive number of ms")
        if "space" in rec and not isinstance(rec["space"], dict):
            raise bad(f"networks[{i}].space", "a space configuration")
    ref = meta.get("reference")
    if ref is not None:
        if not isinstance(ref, dict) or not isinstance(ref.get("arch", ""), str):
            raise bad("reference", "an object with the reference network's 'arch'")
        if "quiet_ms" in ref and not _positive(ref["quiet_ms"]):
            raise bad("reference.quiet_ms", "a positive number of ms")
    for k in ("coverage", "validation", "compiler", "protocol", "imported"):
        if k in meta and not isinstance(meta[k], dict):
            raise bad(k, "an object")


class LatencyTable:
    """Entries are ``key → {median_ms, p90_ms, std_ms, n, ...}``; ``meta`` says how and where.

    ``meta`` holds at least ``target`` and ``space``; profiling adds the device description,
    versions, protocol, date, coverage and whole-network measurements (``networks``).
    """

    def __init__(self, meta: dict, entries: dict[str, dict] | None = None,
                 by_resolution: dict[int, dict[str, dict]] | None = None) -> None:
        for k in ("target", "space"):
            if k not in meta:
                raise TableError(f"latency table metadata lacks '{k}'")
        self.meta = dict(meta)
        self.entries: dict[str, dict] = dict(entries or {})
        self.by_resolution: dict[int, dict[str, dict]] = {
            int(r): dict(part) for r, part in (by_resolution or {}).items()}

    # ---- access
    @property
    def target(self) -> str:
        return self.meta["target"]

    @property
    def mcpu(self) -> str | None:
        """The LLVM CPU model the table was measured on (None when it does not say)."""
        return self.meta.get("target_config", {}).get("tvm", {}).get("mcpu") or None

    def other_cpu(self, target) -> str | None:
        """The table's CPU model when it is not the one ``target`` compiles for here (a
        target such as ``x86-host`` runs on whatever CPU the machine has); else None."""
        return self.mcpu if self.mcpu and target.mcpu and self.mcpu != target.mcpu else None

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

    @property
    def per_resolution(self) -> bool:
        """Whether lookups read the entries of the arch's input resolution."""
        return bool(self.by_resolution)

    def entry(self, key: str, resolution: int | None = None) -> dict | None:
        """The entry of ``key``: from ``resolution``'s part when the table is keyed per
        resolution and one is given, else the one value per key; None when absent."""
        if resolution is not None and self.by_resolution:
            return self.by_resolution.get(int(resolution), {}).get(key)
        return self.entries.get(key)

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

    def space_values(self, space, field: str = "median_ms") -> np.ndarray:
        """``vector(space.op_list, field)`` for a table with one value per key; for a table
        keyed per resolution, one such row per resolution of ``space`` (2-D), each filled from
        that resolution's entries for the operators it uses (NaN elsewhere: never read).
        ``space.op_values`` reads either. Raises on the first missing key or resolution."""
        if not self.by_resolution:
            return self.vector(space.op_list, field)
        out = np.full((len(space.resolutions), len(space.op_list) + 1), np.nan)
        out[:, -1] = 0.0
        for ri, r in enumerate(space.resolutions):
            part = self.by_resolution.get(int(r))
            if part is None:
                raise TableError(f"latency table for target '{self.target}' has no entries for "
                                 f"input resolution {r}; it has {sorted(self.by_resolution)}")
            for i in space.op_ids_at(ri):
                e = part.get(space.op_list[i].key)
                if e is None:
                    raise TableError(f"latency table for target '{self.target}' lacks operator "
                                     f"'{space.op_list[i].key}' at input resolution {r}")
                out[ri, i] = e[field]
        return out

    def config_index(self, space) -> int | None:
        """Index of the recorded space configuration that covers ``space`` (same configuration,
        its resolutions included), or None."""
        return _covering(self.meta.get("spaces", []), space)

    def missing(self, op_list) -> list:
        return [op for op in op_list if op.key not in self.entries]

    # ---- persistence
    def to_json(self) -> dict:
        out = {"format": FORMAT, "meta": self.meta, "entries": self.entries}
        if self.by_resolution:
            out["by_resolution"] = {str(r): part for r, part in sorted(self.by_resolution.items())}
        return out

    def save(self, path: str | Path) -> Path:
        return atomic_write_json(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> "LatencyTable":
        data = read_json(path, "latency table", TableError)
        if not isinstance(data, dict) or data.get("format") not in READ_FORMATS:
            raise TableError(f"{path} is not an hwnas latency table (format must be one of "
                             f"{', '.join(READ_FORMATS)})")
        meta, entries = data.get("meta"), data.get("entries")
        if not isinstance(meta, dict) or not isinstance(entries, dict):
            raise TableError(f"corrupt latency table {path}: 'meta' and 'entries' must be objects")
        _check_entries(path, entries, "")
        parts = data.get("by_resolution", {}) if data["format"] == FORMAT else {}
        if not isinstance(parts, dict):
            raise TableError(f"corrupt latency table {path}: 'by_resolution' must be an object")
        by_res = {}
        for r, part in parts.items():
            if not (isinstance(r, str) and r.isdigit() and int(r) > 0) or not isinstance(part, dict):
                raise TableError(f"corrupt latency table {path}: by_resolution '{r}' must be a "
                                 "positive input size holding an object of entries")
            _check_entries(path, part, f" at resolution {r}")
            by_res[int(r)] = part
        _check_meta(path, meta)
        if data["format"] != FORMAT and len(meta.get("imported", {}).get("files", [])) > 1:
            log.warning("%s was imported before tables kept one part per input resolution: its "
                        "keys are pooled over %d files; import it again to price each arch from "
                        "the file of its resolution", path, len(meta["imported"]["files"]))
        return cls(meta, entries, by_res)


def _check_entries(path, entries: dict, where: str) -> None:
    """Every entry an object of finite, non-negative statistics; the first bad key is named."""
    for key, e in entries.items():
        if not isinstance(e, dict) or any(
                not isinstance(e.get(f), (int, float)) or not math.isfinite(e[f]) or e[f] < 0
                for f in _FIELDS):
            raise TableError(f"corrupt latency table {path}: bad entry for '{key}'{where}")
