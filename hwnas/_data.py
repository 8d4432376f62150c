"""Where hwnas finds its data: device targets, latency tables (with tuning databases),
supernet checkpoints and imported accuracy data (``hwnas import-accuracy``).

Each kind of data is looked up in up to two places, in this order:

1. the user's folder: ``$HWNAS_TARGETS``, ``$HWNAS_TABLES``, ``$HWNAS_CHECKPOINTS`` or
   ``$HWNAS_ACCURACY`` when set, else ``$HWNAS_DATA/<kind>`` when ``$HWNAS_DATA`` is set;
2. the data shipped with hwnas: ``hwnas/data/<kind>`` inside an installed wheel, or the
   ``targets/``, ``latency_tables/`` and ``checkpoints/`` folders of the source checkout the
   package runs from (an editable install, ``pip install -e``).

A file found in the user's folder hides the shipped one of the same name. New files (a profiled
table, a tuning database) are written to the user's folder when one is set, else beside the
shipped data.

A folder named by one of these variables is never silently ignored: one that is a file is an
error, and one that does not exist is an error when it is read (``search_dirs``), and is
created when a verb is about to write into it (``write_dir``). A missing ``kind`` subfolder
of an existing ``$HWNAS_DATA`` is no error: it simply holds nothing yet.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

__all__ = ["KINDS", "search_dirs", "find", "write_dir", "shipped_dir",
           "list_checkpoints", "checkpoint_dir", "is_checkpoint_file"]

KINDS = {"targets": "HWNAS_TARGETS", "latency_tables": "HWNAS_TABLES",
         "checkpoints": "HWNAS_CHECKPOINTS", "accuracy": "HWNAS_ACCURACY"}


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


def _env_folder(var: str) -> Path | None:
    """The folder ``$var`` names (None when unset); one that is a file is an error."""
    value = os.environ.get(var)
    if not value:
        return None
    path = Path(value)
    if path.exists() and not path.is_dir():
        from hwnas.errors import DataError

        raise DataError(f"{var} names {path}, a file, not a folder")
    return path


def _user_dir(kind: str, missing_ok: bool = True) -> Path | None:
    """The user's folder of ``kind`` (None when no variable names one). Unless
    ``missing_ok``, a folder that a variable names and that does not exist is an error."""
    from hwnas.errors import DataError

    var, path = KINDS[kind], _env_folder(KINDS[kind])
    if path is None:
        var, root = "HWNAS_DATA", _env_folder("HWNAS_DATA")
        if root is None:
            return None
        path = root / kind
        if path.exists() and not path.is_dir():
            raise DataError(f"HWNAS_DATA holds {path}, a file where the {kind} folder belongs")
        if not missing_ok and not root.is_dir():
            raise DataError(f"HWNAS_DATA names {root}, which does not exist; create it, or "
                            f"unset HWNAS_DATA")
        return path
    if not missing_ok and not path.is_dir():
        raise DataError(f"{var} names {path}, which does not exist; create it, or unset {var}")
    return path


def search_dirs(kind: str) -> list[Path]:
    """The folders searched for ``kind``, the user's first; one that a variable names and
    that does not exist is an error (``write_dir`` creates it for a verb that writes)."""
    _check_kind(kind)
    return [d for d in (_user_dir(kind, missing_ok=False), shipped_dir(kind)) if d is not None]


def find(kind: str, *parts: str) -> Path | None:
    """The first existing ``<dir>/<parts...>`` over ``search_dirs(kind)``, or None."""
    for d in search_dirs(kind):
        p = d.joinpath(*parts)
        if p.exists():
            return p
    return None


def write_dir(kind: str) -> Path:
    """Where new data of ``kind`` is written: the user's folder (created when it does not
    exist yet), else the shipped one. A verb that writes calls it before it reads."""
    _check_kind(kind)
    user = _user_dir(kind)
    if user is not None:
        try:
            user.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            from hwnas.errors import DataError

            raise DataError(f"cannot create the {kind} folder {user}: "
                            f"{exc.strerror or exc}") from None
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
    """Whether a checkpoint argument names a file (a published supernet format that a space's
    plugin reads, such as Once-for-All's) rather than a checkpoint folder or shipped name."""
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
