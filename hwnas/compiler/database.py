"""MetaSchedule tuning databases on disk: one folder per device.

A folder holds MetaSchedule's own ``database_workload.json`` and ``database_tuning_record.json``
and hwnas's ``tuning.json`` manifest (what target it was tuned for, with which module equality,
and how many trials each workload received). The database is keyed by the kernels' structural
hash and ignores the target, so one folder must only ever serve one device.
"""
from __future__ import annotations

import os
from pathlib import Path

from hwnas._io import read_json
from hwnas.errors import ExportError

__all__ = ["MANIFEST", "DB_FILES", "has_database", "load_database", "last_line"]

MANIFEST = "tuning.json"
DB_FILES = ("database_workload.json", "database_tuning_record.json")


def last_line(exc: Exception) -> str:
    """TVM errors carry a long traceback; the last line names the problem."""
    lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
    return lines[-1] if lines else type(exc).__name__


def has_database(work_dir: str | os.PathLike) -> bool:
    """Whether ``work_dir`` holds both (non-empty) MetaSchedule database files."""
    d = Path(work_dir)
    return all((d / f).is_file() and (d / f).stat().st_size for f in DB_FILES)


def load_database(work_dir: str | os.PathLike | None, required: bool = False):
    """The ``JSONDatabase`` in ``work_dir``; None when nothing was tuned there yet (an error
    naming the folder with ``required``)."""
    from tvm.s_tir import meta_schedule as ms

    if work_dir is None:
        return None
    work_dir = Path(work_dir)
    if not has_database(work_dir):
        if required:
            raise ExportError(f"tuning directory {work_dir} has no MetaSchedule database "
                              f"({', '.join(DB_FILES)})")
        return None
    equality = "structural"
    if (work_dir / MANIFEST).exists():
        equality = read_json(work_dir / MANIFEST, "tuning manifest", ExportError).get(
            "module_equality", "structural")
    try:
        return ms.database.JSONDatabase(work_dir=str(work_dir), module_equality=equality)
    except Exception as exc:
        raise ExportError(f"corrupt tuning database in {work_dir}: {last_line(exc)}") from None
