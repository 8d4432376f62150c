"""MetaSchedule tuning databases on disk: one per device.

Two forms of the same database:

* a **work folder** (``~/.cache/hwnas/tuning/<target>/`` unless given), where tuning runs:
  MetaSchedule's own ``database_workload.json`` and ``database_tuning_record.json`` with every
  trial, and hwnas's ``tuning.json`` (the target, the module equality, the trials each workload
  received, the runs);
* a **published folder** (``latency_tables/<target>/tuning/``), what ships and what compiles
  use by default: the best record of each workload only, the two files compressed with xz
  (``*.json.xz``), and a ``tuning.json`` that names the target it was tuned for, the LLVM CPU,
  the TVM version, the trials and the wall time.

A device's published database holds every configuration tuned on it: the default one (the
configuration deploy searches without options) in the folder itself, each other in a
subfolder named by the configuration (``tuning-znver4/ofa-mbv3-imagenet/``), each with its own
manifest, so that tuning one configuration, resumed over days, never rewrites another's. A
compile opens the union of them all (kernels are looked up by structural hash, and the
configurations' kernels differ in shape).

MetaSchedule looks kernels up by structural hash and ignores the target, so a database must
never serve another device: loading one for a target it was not tuned for is refused, and one
tuned on another CPU or with another TVM version is used with a one-line warning.
"""
from __future__ import annotations

import hashlib
import json
import logging
import lzma
import os
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path

from hwnas._io import atomic_write_bytes, atomic_write_json, read_json
from hwnas.errors import ExportError

__all__ = ["MANIFEST", "DB_FILES", "PUBLISHED_FORMAT", "has_database", "load_database",
           "last_line", "database_dir", "work_dir", "target_identity", "publish",
           "read_manifest", "cache_root", "unpacked", "database_digest", "describe_database",
           "resolve_database", "repair_work_dir", "check_records", "check_device",
           "configuration_folder", "database_parts"]

log = logging.getLogger("hwnas.compiler")

MANIFEST = "tuning.json"
DB_FILES = ("database_workload.json", "database_tuning_record.json")
PUBLISHED_FORMAT = "hwnas-tuning-db/1"
_XZ = ".xz"


def last_line(exc: Exception) -> str:
    """TVM errors carry a long traceback; the last line names the problem."""
    lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
    return lines[-1] if lines else type(exc).__name__


def cache_root() -> Path:
    """``$HWNAS_CACHE``, else ``~/.cache/hwnas``."""
    return Path(os.environ.get("HWNAS_CACHE") or Path.home() / ".cache" / "hwnas")


def database_dir(target, for_writing: bool = False, space=None) -> Path | None:
    """The target's published database: ``latency_tables/<target>/tuning-<cpu>/`` when one was
    tuned on this CPU model (a target such as ``x86-host`` runs on whichever CPU the machine
    has, and schedules tuned for one CPU are rarely the fastest on another), else
    ``latency_tables/<target>/tuning/``. None when there is none and ``for_writing`` is false.

    ``for_writing`` (``hwnas tune``) returns where this CPU's records belong: ``tuning/`` unless
    that holds a database tuned on another CPU, which is then left as it is, and this CPU's
    database goes beside it in ``tuning-<cpu>/``. With ``space``, the folder of that space's
    configuration inside it (``configuration_folder``).
    """
    from hwnas import _data

    if for_writing and space is not None:
        sub = configuration_folder(space)
        top = database_dir(target, True)
        return top if sub is None else top / sub

    cpu = _cpu_folder(target)
    own = found = None
    for d in _data.search_dirs("latency_tables"):   # the user's folder hides the shipped one
        if cpu and (d / target.name / cpu).exists():
            own = d / target.name / cpu
            if _is_database(own):
                return own
        if (d / target.name / "tuning").exists():
            found = d / target.name / "tuning"
            break
    published = found is not None and _is_database(found)
    if published and not (for_writing and cpu and _tuned_elsewhere(found, target)):
        return found
    if not for_writing:
        return None
    base = _data.write_dir("latency_tables") / target.name
    if published:                        # another CPU's: this one's goes beside it
        return own or base / cpu
    return found or base / "tuning"


def _cpu_folder(target) -> str | None:
    """``tuning-<mcpu>``, or None for a target without a CPU model (a GPU's arch is fixed by
    its target) or with a name unfit for a folder."""
    slug = target.cpu_slug
    return f"tuning-{slug}" if slug else None


def _tuned_elsewhere(path: Path, target) -> bool:
    """Whether the published database in ``path`` was tuned on another CPU model."""
    have = read_manifest(path).get("target")
    return isinstance(have, dict) and bool(have.get("mcpu")) \
        and have.get("mcpu") != target.mcpu


def work_dir(target, space=None) -> Path:
    """Where ``hwnas tune`` keeps every trial for ``target``: ``<cache>/tuning/<target>``, or
    ``<target>-<configuration>`` beside it for a configuration other than the default one."""
    sub = None if space is None else configuration_folder(space)
    return cache_root() / "tuning" / (target.name if sub is None else f"{target.name}-{sub}")


def configuration_folder(space) -> str | None:
    """The subfolder of a device's database that holds ``space``'s configuration: None for
    the default configuration (the folder itself), else the configuration's name
    (``ofa-mbv3-imagenet``; a space without named configurations: its name), or the space's
    name and a digest of its options when it is none of the named configurations."""
    from hwnas.spaces import DEFAULT_SPACE, space_plugin

    plugin = space_plugin(space)
    if not plugin.configs:
        return plugin.name
    name = plugin.config_of(space)
    options = plugin.configs[name].options if name is not None else {}
    have = space.config()
    exact = name is not None and all(have.get(k) == (list(v) if isinstance(v, tuple) else v)
                                     for k, v in options.items())
    if exact and plugin.name == DEFAULT_SPACE and name == plugin.default_config:
        return None
    if exact:
        return f"{plugin.name}-{name}"
    digest = hashlib.sha256(json.dumps(have, sort_keys=True).encode()).hexdigest()[:10]
    return f"{plugin.name}-{digest}"


def _packed(d: Path) -> bool:
    return all((d / f"{f}{_XZ}").is_file() for f in DB_FILES)


def has_database(path: str | os.PathLike) -> bool:
    """Whether ``path`` holds both (non-empty) MetaSchedule database files."""
    d = Path(path)
    return all((d / f).is_file() and (d / f).stat().st_size for f in DB_FILES)


def _own_database(d: Path) -> bool:
    return has_database(d) or _packed(d)


def database_parts(path: str | os.PathLike) -> list[Path]:
    """The folders whose records make up the database in ``path``: the folder itself when it
    holds a database, then each configuration subfolder that holds a published one."""
    d = Path(path)
    parts = [d] if _own_database(d) else []
    if d.is_dir():
        parts += [s for s in sorted(d.iterdir()) if s.is_dir() and (s / MANIFEST).is_file()
                  and _own_database(s)]
    return parts


def _is_database(d: Path) -> bool:
    return bool(database_parts(d))


def _is_record(line: bytes, name: str) -> bool:
    """Whether ``line`` is one line of MetaSchedule's database file ``name``: a workload
    ``[structural_hash, b64 PrimFunc]`` or a record ``[workload index, [trace, ...]]``."""
    try:
        rec = json.loads(line)
    except ValueError:
        return False
    if not (isinstance(rec, list) and len(rec) == 2):
        return False
    if name == DB_FILES[1]:
        return isinstance(rec[0], int) and not isinstance(rec[0], bool) \
            and isinstance(rec[1], list)
    return isinstance(rec[1], str)


def check_records(data: bytes, name: str, shown: str | os.PathLike) -> None:
    """Every line of the database file ``name`` is a record; the first that is not is named
    by ``shown`` (the user's file) and its line number. Garbage is never dropped."""
    for n, line in enumerate(data.splitlines(), 1):
        if line.strip() and not _is_record(line, name):
            raise ExportError(f"corrupt tuning database {shown}: line {n} is not a "
                              f"MetaSchedule {'record' if name == DB_FILES[1] else 'workload'}; "
                              f"nothing was changed")


def repair_work_dir(path: str | os.PathLike) -> int:
    """Drop the last line of a database file of a work folder when a killed run cut it short
    (MetaSchedule appends one line per measured candidate, each ending in a newline, and
    cannot load a truncated one). Any other line that is not a record is an error that names
    the file and line, and nothing is written. Returns how many lines were dropped."""
    dropped = 0
    for name in DB_FILES:
        f = Path(path) / name
        if not f.is_file():
            continue
        data = f.read_bytes()
        keep = data
        if data and not data.endswith(b"\n"):
            tail = data[data.rfind(b"\n") + 1:]
            keep = data + b"\n" if _is_record(tail, name) else data[:len(data) - len(tail)]
        check_records(keep, name, f)
        if keep != data:
            atomic_write_bytes(f, keep)
        if len(keep) < len(data):
            dropped += 1
            log.warning("%s: dropped the last record, which an interrupted run had cut short", f)
    return dropped


def target_identity(target) -> dict:
    """What a database is only valid for: the device's target (name, kind, CPU or GPU arch,
    triple) and the TVM version whose schedules and hashes it holds."""
    import tvm

    t = target.resolved
    return {"name": target.name, "kind": t.get("kind"), "mcpu": t.get("mcpu"),
            "arch": t.get("arch"), "mtriple": t.get("mtriple"),
            "tvm": tvm.__version__, "str": str(target.tvm())}


def read_manifest(path: str | os.PathLike) -> dict:
    """The ``tuning.json`` of a database folder ({} when it has none)."""
    p = Path(path) / MANIFEST
    if not p.exists():
        return {}
    man = read_json(p, "tuning manifest", ExportError)
    if not isinstance(man, dict):
        raise ExportError(f"corrupt tuning manifest {p}: not a JSON object")
    return man


def _check_target(path: Path, man: dict, target) -> None:
    """Refuse a database of another device; warn once for another CPU or TVM version."""
    have = man.get("target")
    if not isinstance(have, dict):
        return                                   # a work folder: checked by the tuner itself
    check_device(path, have, target)
    want = target_identity(target)
    for key, what in (("mcpu", "CPU"), ("tvm", "TVM version")):
        if have.get(key) != want.get(key):
            _warn_once(f"tuning database {path} was tuned on {what} {have.get(key)}, this is "
                       f"{want.get(key)}: its schedules apply but may not be the fastest here "
                       "(retune it with hwnas tune)")


def check_device(path: Path, have: dict, target) -> None:
    """Refuse the database in ``path``, whose manifest names the target ``have``, when it was
    tuned for another device than ``target`` (another CPU model of it is no other device)."""
    want = target_identity(target)
    for key in ("name", "kind", "arch", "mtriple"):
        if have.get(key) != want.get(key):
            raise ExportError(f"tuning database {path} was tuned for target '{have.get('name')}' "
                              f"({have.get('kind')} {have.get(key) or ''}), not "
                              f"'{want['name']}'; it cannot serve this device")


@lru_cache(maxsize=None)
def _warn_once(message: str) -> None:
    log.warning("%s", message)


def _plain_files(path: Path) -> tuple[bytes, bytes]:
    """The two database files of one folder, decompressed and checked."""
    if has_database(path):
        return tuple((path / f).read_bytes() for f in DB_FILES)
    out = []
    for f in DB_FILES:
        try:
            data = lzma.decompress((path / f"{f}{_XZ}").read_bytes())
        except lzma.LZMAError as exc:
            raise ExportError(f"corrupt tuning database file {path / (f + _XZ)}: {exc}") \
                from None
        check_records(data, f, path / f"{f}{_XZ}")
        out.append(data)
    return tuple(out)


def _union(parts: list[Path]) -> tuple[bytes, bytes]:
    """One database of several folders' records: workloads met twice (by structural hash)
    kept once, each record re-indexed to its workload's line."""
    workloads: list[bytes] = []
    index: dict[str, int] = {}
    records: list[bytes] = []
    for part in parts:
        w_data, r_data = _plain_files(part)
        local: list[int] = []
        for line in w_data.splitlines():
            if not line.strip():
                continue
            key = str(json.loads(line)[0])
            if key not in index:
                index[key] = len(workloads)
                workloads.append(line)
            local.append(index[key])
        for line in r_data.splitlines():
            if line.strip():
                i, rec = json.loads(line)
                records.append(json.dumps([local[i], rec], separators=(",", ":")).encode())
    return b"\n".join(workloads) + b"\n", b"\n".join(records) + b"\n"


def unpacked(path: Path, union: bool = True) -> Path:
    """A plain copy of a published (xz) database in the cache, keyed by its content: the
    union of its configuration folders' records (``database_parts``), or with ``union=False``
    the folder's own records only."""
    parts = (database_parts(path) if union else []) or [path]
    digest = hashlib.sha256()
    for part in parts:
        for f in DB_FILES:
            plain = part / f
            digest.update((plain if has_database(part) else part / f"{f}{_XZ}").read_bytes())
    dest = cache_root() / "tuning-db" / digest.hexdigest()[:16]
    if has_database(dest):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".unpack-", dir=dest.parent))
    try:
        files = _plain_files(parts[0]) if len(parts) == 1 else _union(parts)
        for f, data in zip(DB_FILES, files):
            (stage / f).write_bytes(data)
        try:
            os.replace(stage, dest)
        except OSError:                  # another process unpacked it first
            pass
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return dest


@lru_cache(maxsize=8)
def _open(path: str, stamp: tuple, equality: str, shown: str):
    from hwnas.compiler._metaschedule import meta_schedule
    ms = meta_schedule()
    try:
        return ms.database.JSONDatabase(work_dir=path, module_equality=equality)
    except Exception as exc:  # noqa: BLE001  (TVM raises its own errors for a bad file)
        raise ExportError(f"corrupt tuning database in {shown}: {last_line(exc)}") from None


def load_database(path: str | os.PathLike | None, required: bool = False, target=None):
    """The MetaSchedule database in ``path`` (a work or a published folder).

    None when the folder holds none, or an error naming it with ``required``. With ``target``,
    a database tuned for another device is refused and one tuned on another CPU or TVM version
    is used with a warning. A process opens each database once.
    """
    if path is None:
        return None
    path = Path(path)
    if not _is_database(path):
        if required:
            raise ExportError(f"tuning directory {path} has no MetaSchedule database "
                              f"({', '.join(DB_FILES)})")
        return None
    parts = database_parts(path)
    man = read_manifest(parts[0])
    if target is not None:
        for part in parts:
            _check_target(part, read_manifest(part), target)
    plain = path if parts == [path] and has_database(path) else unpacked(path)
    stamp = tuple((plain / f).stat().st_mtime_ns for f in DB_FILES)
    return _open(str(plain), stamp, man.get("module_equality", "structural"), str(path))


def _best_records(src: Path) -> tuple[list[str], list[str], dict[str, float]]:
    """(workload lines, record lines, best seconds per workload hash) keeping only each
    workload's fastest record, re-indexed. Lines are MetaSchedule's JSONDatabase format:
    ``[structural_hash, b64 PrimFunc]`` and ``[workload index, [trace, run_secs, target,
    args_info]]``."""
    workloads = (src / DB_FILES[0]).read_text(encoding="utf-8").splitlines()
    best: dict[int, tuple[float, str]] = {}
    with open(src / DB_FILES[1], encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                index, rec = json.loads(line)
                secs = [float(s) for s in rec[1]]
            except (ValueError, TypeError, IndexError):
                raise ExportError(f"corrupt tuning record at {src / DB_FILES[1]} line {n}") \
                    from None
            mean = sum(secs) / len(secs) if secs else float("inf")
            if mean < 1e9 and (index not in best or mean < best[index][0]):
                best[index] = (mean, json.dumps(rec, separators=(",", ":")))
    out_w, out_r, seconds = [], [], {}
    for old in sorted(best):
        w = json.loads(workloads[old])
        out_r.append(json.dumps([len(out_w), json.loads(best[old][1])], separators=(",", ":")))
        out_w.append(json.dumps(w, separators=(",", ":")))
        seconds[str(w[0])] = best[old][0]
    return out_w, out_r, seconds


def publish(src: str | os.PathLike, dest: str | os.PathLike, manifest: dict) -> dict:
    """Write the best record of each workload of the database in ``src`` to ``dest``,
    compressed, with ``manifest`` (plus the counts) as its ``tuning.json``; atomic per file,
    manifest last. Returns the manifest written."""
    src, dest = Path(src), Path(dest)
    if not has_database(src):
        raise ExportError(f"nothing to publish: {src} holds no tuning database")
    workloads, records, seconds = _best_records(src)
    dest.mkdir(parents=True, exist_ok=True)
    for name, lines in zip(DB_FILES, (workloads, records)):
        data = ("\n".join(lines) + "\n").encode("utf-8")
        atomic_write_bytes(dest / f"{name}{_XZ}", lzma.compress(data, preset=9))
        (dest / name).unlink(missing_ok=True)        # a plain copy would shadow the new one
    man = {"format": PUBLISHED_FORMAT, **manifest, "workloads": len(workloads),
           "best_seconds": seconds}
    atomic_write_json(dest / MANIFEST, man)
    return man


def database_digest(path: str | os.PathLike, space=None) -> str:
    """A short digest of a database's records (plain or published): its identity. With
    ``space``, of the part that holds ``space``'s configuration (its folder, or the folder
    itself for the default configuration) when the database has that part, so that tuning
    another configuration leaves the digest of this one as it was; else of every part."""
    return _digest(_digested_parts(path, space))


def _digest(parts: list[Path]) -> str:
    h = hashlib.sha256()
    for d in parts:
        name = DB_FILES[1] if has_database(d) else f"{DB_FILES[1]}{_XZ}"
        with open(d / name, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()[:16]


def _digested_parts(path: str | os.PathLike, space=None) -> list[Path]:
    parts = database_parts(path) or [Path(path)]
    if space is not None:
        sub = configuration_folder(space)
        own = Path(path) if sub is None else Path(path) / sub
        if own in parts:
            return [own]
    return parts


def describe_database(path: str | os.PathLike | None, space=None) -> dict:
    """What a table or bundle records about the database it was compiled with; the digest is
    ``space``'s configuration's (``database_digest``)."""
    if path is None:
        return {"database": None}
    parts = database_parts(path) or [Path(path)]
    mans = [read_manifest(p) for p in parts]
    man = mans[0]
    tgt = man.get("target") if isinstance(man.get("target"), dict) else {}
    digested = _digested_parts(path, space)
    out = {"database": str(path), "digest": _digest(digested),
           "tuned_on": tgt.get("mcpu"), "tvm": tgt.get("tvm"),
           "trials_total": man.get("trials_total"), "tuning_wall_s": man.get("wall_s")}
    if len(parts) > 1 or parts[0] != Path(path):
        out["digest_of"] = [("(default)" if p == Path(path) else p.name) for p in digested]
        out["configurations"] = {
            ("(default)" if p == Path(path) else p.name): {
                "trials_total": m.get("trials_total"), "tuning_wall_s": m.get("wall_s"),
                "finished": m.get("finished")} for p, m in zip(parts, mans)}
    return out


def resolve_database(target, choice: str | os.PathLike | None = "auto") -> Path | None:
    """The database folder a compile for ``target`` uses: ``"auto"`` its published one (None
    when it has none), None no database, else the folder given."""
    if choice is None:
        return None
    if isinstance(choice, str) and choice == "auto":
        return database_dir(target)
    return Path(choice)
