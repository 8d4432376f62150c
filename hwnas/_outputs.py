"""Output folders that never clobber a user's files.

A command writes a *kind* of output (a bundle, a search result) into a folder. The folder may
be new, empty, or an earlier output of the same kind, which is then replaced as a whole and
atomically (the new one is assembled beside it and swapped in); anything else is refused,
unless ``force``. A file where a folder is expected is refused in any case.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from hwnas.errors import OutputError

__all__ = ["KINDS", "check_output_dir", "replace_dir"]

#: kind → (the file that marks a folder as such an output, the key/prefix it must hold)
KINDS = {"bundle": ("manifest.json", "hwnas-bundle/"),
         "search": ("arch.json", "strategy"),
         "tuning": ("tuning.json", "hwnas-tuning-db/")}


def _is_output(path: Path, kind: str) -> bool:
    marker, needle = KINDS[kind]
    try:
        data = json.loads((path / marker).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(data, dict):
        return False
    return str(data.get("format", "")).startswith(needle) if needle.endswith("/") \
        else needle in data


def check_output_dir(path: str | os.PathLike, kind: str, force: bool = False) -> Path:
    """Refuse ``path`` unless it is new, empty, or an earlier ``kind`` output (or ``force``)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"output {path} is a file, not a folder; choose another path")
    if path.is_dir() and any(path.iterdir()) and not _is_output(path, kind) and not force:
        raise OutputError(f"output folder {path} exists and is not an earlier hwnas {kind}; "
                          f"choose another path, or force its replacement")
    if not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    return path


def replace_dir(stage: str | os.PathLike, out: str | os.PathLike) -> None:
    """Swap the finished ``stage`` folder into ``out`` (an earlier output is moved aside first
    and removed last), so that ``out`` is never half-written."""
    stage, out = Path(stage), Path(out)
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
