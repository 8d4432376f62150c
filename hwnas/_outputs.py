"""Output folders that never lose a user's files.

A command writes a *kind* of output (a bundle, a search result) into a folder. The folder may
be new, empty, or an earlier output of the same kind that holds only files hwnas wrote; the
new output is assembled beside it and swapped in as a whole. A folder that also holds files
hwnas did not write (the user's notes, a ``calib/`` folder, a ``train.py`` beside a copied
``arch.json``) is refused with the first such file named, unless ``force``; with ``force``
those files are *kept*: they are carried into the new output, and only a file whose name
the new output itself uses is replaced. A file where a folder is expected is refused in any
case.

Which files hwnas wrote is recorded in the output itself (``.hwnas-output.json``); an output
written before that record existed is judged by the names its kind writes.

``claim_output`` holds a lock beside the folder (``.<name>.lock``) for the whole run, so that
two runs into the same folder cannot both report success: the second is refused at once.
"""
from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from hwnas.errors import OutputError

__all__ = ["KINDS", "RECORD", "check_output_dir", "claim_output", "foreign_files", "stage_dir",
           "replace_dir"]

#: kind → (the file that marks a folder as such an output, the key/prefix it must hold)
KINDS = {"bundle": ("manifest.json", "hwnas-bundle/"),
         "search": ("arch.json", "strategy"),
         "tuning": ("tuning.json", "hwnas-tuning-db/")}
#: the names an output of each kind held before the record existed (top-level files only)
_LEGACY_NAMES = {
    "bundle": ("manifest.json", "arch.json", "model.*", "kernels.fatbin", "pareto.json",
               "pareto.png", "history.json", "run.py", "sample_input.npy",
               "predicted_vs_measured.png", "report.md"),
    "search": ("arch.json", "pareto.json", "pareto.png", "history.json"),
}
RECORD = ".hwnas-output.json"          # the files hwnas wrote into an output, by kind
_HELD: dict[Path, int] = {}            # output locks this process holds → the holding thread


def _is_output(path: Path, kind: str) -> bool:
    if _record(path, kind) is not None:
        return True
    marker, needle = KINDS[kind]
    try:
        data = json.loads((path / marker).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(data, dict):
        return False
    return str(data.get("format", "")).startswith(needle) if needle.endswith("/") \
        else needle in data


def _record(path: Path, kind: str) -> set[str] | None:
    """The files the record of ``path`` says hwnas wrote there, or None without a record."""
    try:
        data = json.loads((path / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not (isinstance(data, dict) and data.get("kind") == kind
            and isinstance(data.get("files"), list)):
        return None
    return {f for f in data["files"] if isinstance(f, str)}


def _entries(path: Path) -> list[str]:
    """Every file, link and empty folder under ``path``, as sorted relative POSIX paths."""
    out = []
    for root, dirs, files in os.walk(path):
        rel = Path(root).relative_to(path)
        for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            out.append((rel / name).as_posix())
        if not dirs and not files and root != str(path):
            out.append(rel.as_posix() + "/")
    return sorted(out)


def foreign_files(path: str | os.PathLike, kind: str) -> list[str]:
    """The entries of the output folder ``path`` that hwnas did not write (relative paths,
    sorted; a folder ends with ``/``). Every entry, when ``path`` is no output of ``kind``."""
    path = Path(path)
    if not path.is_dir():
        return []
    if not _is_output(path, kind):
        return _entries(path)
    own = _record(path, kind)
    if own is not None:
        return [e for e in _entries(path) if e not in own and e != RECORD]
    names = _LEGACY_NAMES.get(kind, ())
    return [e for e in _entries(path)
            if "/" in e or not any(fnmatch.fnmatchcase(e, n) for n in names)]


def _check_writable(folder: Path, out: Path) -> None:
    """Write and remove a probe file in ``folder``: a read-only place fails now, not after
    the expensive part."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".hwnas-probe-", dir=folder)
    except OSError as exc:
        raise OutputError(f"cannot write output {out}: {exc.strerror or exc} "
                          f"({folder})") from None
    os.close(fd)
    os.unlink(probe)


def check_output_dir(path: str | os.PathLike, kind: str, force: bool = False) -> Path:
    """Refuse ``path`` unless it is new, empty, or an earlier ``kind`` output that holds only
    files hwnas wrote (``force``: any folder; its other files are kept), and unless it can
    be written."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"output {path} is a file, not a folder; choose another path")
    if path.is_dir() and any(path.iterdir()) and not force:
        if kind == "tuning":           # published in place: nothing in it is removed
            if not _is_output(path, kind):
                raise OutputError(f"output folder {path} exists and is not an earlier hwnas "
                                  f"{kind}; choose another path, or force its use")
        else:
            foreign = foreign_files(path, kind)
            if foreign:
                what = (f"is an earlier hwnas {kind}, but it also holds"
                        if _is_output(path, kind) else "holds")
                more = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
                raise OutputError(f"output folder {path} {what} files hwnas did not write "
                                  f"({foreign[0]}{more}); choose another folder, or force "
                                  f"the output in beside them (they are kept)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create output {path}: {exc.strerror or exc}") from None
    _check_writable(path.parent, path)
    if path.is_dir():
        _check_writable(path, path)
    return path


def _lock_path(out: Path) -> Path:
    return out.parent / f".{out.name}.lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:                    # another user's process
        return True
    return True


def _take_lock(lock: Path, out: Path) -> None:
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                pid = int(lock.read_text(encoding="utf-8").strip() or 0)
            except (OSError, ValueError):
                pid = 0
            if pid and (pid == os.getpid() or _alive(pid)):    # ours: another thread's
                raise OutputError(f"output {out} is being written by another hwnas run "
                                  f"(process {pid}); wait for it to finish, or choose "
                                  f"another path") from None
            lock.unlink(missing_ok=True)          # left by a run that was killed
            continue
        except OSError as exc:
            raise OutputError(f"cannot write output {out}: {exc.strerror or exc}") from None
        with os.fdopen(fd, "w") as fh:
            fh.write(f"{os.getpid()}\n")
        return
    raise OutputError(f"output {out} is being claimed by another hwnas run; try again")


@contextlib.contextmanager
def claim_output(path: str | os.PathLike) -> Iterator[Path]:
    """Hold the lock of the output ``path`` (its parent must exist) for the ``with`` block;
    re-entrant within a thread. Another run (or thread) that holds it is refused with one
    line; a lock left by a run that was killed is taken over."""
    import threading

    out = Path(path)
    lock = _lock_path(out).absolute()
    me = threading.get_ident()
    if _HELD.get(lock) == me:
        yield out
        return
    _take_lock(lock, out)
    _HELD[lock] = me
    try:
        yield out
    finally:
        del _HELD[lock]
        lock.unlink(missing_ok=True)


def stage_dir(out: str | os.PathLike) -> Path:
    """A new, empty folder beside ``out`` to assemble the output in; errors name ``out``."""
    out = Path(out)
    stage = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(stage, ignore_errors=True)
    try:
        stage.mkdir(parents=True)
    except OSError as exc:
        raise OutputError(f"cannot write output {out}: {exc.strerror or exc}") from None
    return stage


def _carry(old: Path, stage: Path, foreign: list[str], force: bool, out: Path) -> None:
    """Hard-link (else copy) the user's entries of ``old`` into ``stage``; one that the new
    output also writes is replaced only with ``force``."""
    for rel in foreign:
        src, dst = old / rel.rstrip("/"), stage / rel.rstrip("/")
        if os.path.lexists(dst) and not rel.endswith("/"):
            if not force:
                raise OutputError(f"output {out} gained the file {rel} while this run "
                                  f"wrote the same name; it was left as it is")
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        if rel.endswith("/"):
            dst.mkdir(exist_ok=True)
        elif src.is_symlink():
            os.symlink(os.readlink(src), dst)
        else:
            try:
                os.link(src, dst)
            except OSError:
                shutil.copy2(src, dst)


def replace_dir(stage: str | os.PathLike, out: str | os.PathLike, kind: str = "bundle",
                force: bool = False) -> None:
    """Swap the finished ``stage`` folder into ``out`` so that ``out`` is never half-written.
    The files of ``stage`` are recorded as hwnas's own; the entries of an earlier ``out``
    that hwnas did not write are carried into the new output first (see the module
    docstring), and the earlier output is moved aside and removed last."""
    stage, out = Path(stage), Path(out)
    own = [e for e in _entries(stage) if e != RECORD]
    (stage / RECORD).write_text(json.dumps({"format": "hwnas-output/1", "kind": kind,
                                            "files": own}, indent=1) + "\n", encoding="utf-8")
    if out.is_dir():
        _carry(out, stage, foreign_files(out, kind), force, out)
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.exists():
        os.replace(out, old)
    try:
        os.replace(stage, out)
    except OSError:
        if old.exists() and not out.exists():
            os.replace(old, out)             # put the earlier output back
        raise
    shutil.rmtree(old, ignore_errors=True)
