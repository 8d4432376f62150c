"""Compiled executables → library files for a target (``.so``, cross-linked, or ``.tar``)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from hwnas.errors import ExportError
from hwnas.targets import Target

__all__ = ["library_suffix", "export_library"]


def library_suffix(target: Target) -> str:
    """``.so`` when we can link for the target here, else a ``.tar`` of object files."""
    if target.export_format == "tar":
        return ".tar"
    if target.cross_compiler and not shutil.which(target.cross_compiler):
        return ".tar"
    return ".so"


def export_library(executable, path: str | os.PathLike, target: Target) -> Path:
    """Write the compiled library; cross targets use the target's cross compiler."""
    from tvm.support import cc

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    try:
        if path.suffix == ".so" and target.cross_compiler:
            executable.export_library(str(tmp), fcompile=cc.cross_compiler(target.cross_compiler))
        else:
            executable.export_library(str(tmp))
        os.replace(tmp, path)
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
        raise ExportError(f"exporting the library for '{target.name}' failed: {first}") from None
    return path
