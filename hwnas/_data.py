"""Where hwnas finds its data: device targets, latency tables (with tuning databases) and
supernet checkpoints.

Each kind of data is looked up in up to two places, in this order:

1. the user's folder: ``$HWNAS_TARGETS``, ``$HWNAS_TABLES`` or ``$HWNAS_CHECKPOINTS`` when set,
   else ``$HWNAS_DATA/targets``, ``$HWNAS_DATA/latency_tables`` or ``$HWNAS_DATA/checkpoints``
   when ``$HWNAS_DATA`` is set;
2. the data shipped with hwnas: ``hwnas/data/<kind>`` inside an installed wheel, or the
   ``targets/``, ``latency_tables/`` and ``checkpoints/`` folders of the source checkout the
   package runs from (an editable install, ``pip install -e``).

A file found in the user's folder hides the shipped one of the same name. New files (a profiled
table, a tuning database) are written to the user's folder when one is set, else beside the
shipped data.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

__all__ = ["KINDS", "search_dirs", "find", "write_dir", "shipped_dir",
           "list_checkpoints", "checkpoint_dir", "is_checkpoint_file"]

KINDS = {"targets": "HWNAS_TARGETS", "latency_tables": "HWNAS_TABLES",
         "checkpoints": "HWNAS_CHECKPOINTS"}


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown data kind '{kind}'; one of {', '.join(KINDS)}")


@lru_cache(maxsize=1)
def _shipped_root() -> Path | None:
    """The folder holding the shipped ``targets/``, ``latency_tables/`` and ``checkpoints/``:
    ``hwnas/data`` in an installed wheel, else the source checkout the package is imported from
    (the folder beside ``hwnas/`` whose ``pyproject.toml`` names this project)."""
    from importlib import resources

    package = Path(str(resources.files("hwnas")))
    if (package / "data").is_dir():
        return package / "data"
    checkout = package.parent
    try:
        meta = (checkout / "pyproject.toml").read_text(encoding="utf-8")
    except OSError:
        return None
    return checkout if 'name = "hwnas"' in meta else None


def shipped_dir(kind: str) -> Path | None:
    """The shipped folder of ``kind``, or None when hwnas was installed without its data."""
    _check_kind(kind)
    root = _shipped_root()
    return root / kind if root is not None and (root / kind).is_dir() else None


def _user_dir(kind: str) -> Path | None:
    env = os.environ.get(KINDS[kind])
    if env:
        return Path(env)
    root = os.environ.get("HWNAS_DATA")
    return Path(root) / kind if root else None


def search_dirs(kind: str) -> list[Path]:
    """The folders searched for ``kind``, the user's first."""
    _check_kind(kind)
    return [d for d in (_user_dir(kind), shipped_dir(kind)) if d is not None]


def find(kind: str, *parts: str) -> Path | None:
    """The first existing ``<dir>/<parts...>`` over ``search_dirs(kind)``, or None."""
    for d in search_dirs(kind):
        p = d.joinpath(*parts)
        if p.exists():
            return p
    return None


def write_dir(kind: str) -> Path:
    """Where new data of ``kind`` is written: the user's folder, else the shipped one."""
    _check_kind(kind)
    user = _user_dir(kind)
    if user is not None:
        return user
    shipped = shipped_dir(kind)
    if shipped is None:
        root = _shipped_root()
        if root is None:
            from hwnas.errors import HwnasError

            raise HwnasError(f"no folder for {kind}: set HWNAS_DATA to a writable folder")
        return root / kind
    return shipped


def list_checkpoints() -> list[str]:
    """Names of the checkpoint folders (with a ``meta.json``) in the data folders."""
    return sorted({p.parent.name for d in search_dirs("checkpoints") if d.is_dir()
                   for p in d.glob("*/meta.json")})


def is_checkpoint_file(name_or_path: object) -> bool:
    """Whether a checkpoint argument names a file (Once-for-All's published format, read by
    ``hwnas.train.ofa_checkpoint``) rather than a checkpoint folder or shipped name."""
    return isinstance(name_or_path, (str, os.PathLike)) and Path(name_or_path).is_file()


def checkpoint_dir(name_or_path: str | os.PathLike) -> Path:
    """A supernet checkpoint folder: an existing path, or a name under the data folders (a
    space's default checkpoint is its plugin's: ``hwnas.spaces.default_checkpoint``). An
    unknown name lists the known ones."""
    from hwnas.errors import DataError

    name = name_or_path
    if name is None:
        raise DataError("no supernet checkpoint named")
    p = Path(name)
    if p.is_dir():
        return p
    if isinstance(name, str) and "/" not in name:
        found = find("checkpoints", name)
        if found is not None and found.is_dir():
            return found
    have = ", ".join(list_checkpoints()) or "none"
    raise DataError(f"no supernet checkpoint '{name}' (not a folder, nor a shipped name); "
                    f"available: {have}")
