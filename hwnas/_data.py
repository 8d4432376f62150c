"""Where hwnas finds its data: device targets, latency tables (with tuning databases),
supernet checkpoints and imported accuracy data (``hwnas import-accuracy``).

Each kind of data is looked up in up to two places, in this order:

1. the user's folder: ``$HWNAS_TARGETS``, ``$HWNAS_TABLES``, ``$HWNAS_CHECKPOINTS`` or
   ``$HWNAS_ACCURACY`` when set, else ``$HWNAS_DATA/<kind>`` when ``$HWNAS_DATA`` is set, else
   ``<kind>`` in the default user data folder, ``$XDG_DATA_HOME/hwnas`` (``~/.local/share/hwnas``
   when ``XDG_DATA_HOME`` is unset);
2. the data shipped with hwnas: ``hwnas/data/<kind>`` inside an installed wheel, or the
   ``targets/``, ``latency_tables/`` and ``checkpoints/`` folders of the source checkout the
   package runs from (an editable install, ``pip install -e``).

A file found in the user's folder hides the shipped one of the same name. New files (an
imported table or accuracy predictor, a profiled table, a few-shot predictor, a tuning
database) are written to the user's folder, never into the shipped data: what the user imported
or measured does not change what the shipped data says (nor the results of the project's tests,
which point ``HWNAS_DATA`` at an empty folder). A verb that extends or resumes an existing file
updates it where it is found, a shipped one included: that is how the shipped data are
refreshed (re-profiling a shipped target on the CPU model it was measured on, tuning further).

A folder named by one of these variables is never silently ignored: one that is a file is an
error, and one that does not exist is an error when it is read (``search_dirs``), and is
created when a verb is about to write into it (``write_dir``). A missing ``kind`` subfolder
of an existing ``$HWNAS_DATA`` is no error: it simply holds nothing yet.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

__all__ = ["KINDS", "search_dirs", "find", "write_dir", "shipped_dir", "default_user_root",
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


def default_user_root() -> Path | None:
    """The user data folder used when no variable names one: ``$XDG_DATA_HOME/hwnas``, else
    ``~/.local/share/hwnas`` (None when there is no home folder to put it in)."""
    xdg = os.environ.get("XDG_DATA_HOME")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "hwnas"
    try:
        return Path.home() / ".local" / "share" / "hwnas"
    except RuntimeError:
        return None


def _user_dir(kind: str, missing_ok: bool = True) -> Path | None:
    """The user's folder of ``kind``: the one a variable names, else the default user data
    folder's (None without a home folder). Unless ``missing_ok``, a folder that a variable
    names and that does not exist is an error (the default one simply holds nothing yet)."""
    from hwnas.errors import DataError

    var, path = KINDS[kind], _env_folder(KINDS[kind])
    if path is None:
        var, root = "HWNAS_DATA", _env_folder("HWNAS_DATA")
        if root is None:
            root = default_user_root()
            return None if root is None else root / kind
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
    user, shipped = _user_dir(kind, missing_ok=False), shipped_dir(kind)
    if user is not None and shipped is not None and _same(user, shipped):
        return [shipped]
    return [d for d in (user, shipped) if d is not None]


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def find(kind: str, *parts: str) -> Path | None:
    """The first existing ``<dir>/<parts...>`` over ``search_dirs(kind)``, or None."""
    for d in search_dirs(kind):
        p = d.joinpath(*parts)
        if p.exists():
            return p
    return None


def write_dir(kind: str) -> Path:
    """Where new data of ``kind`` is written: the user's folder, created when it does not
    exist yet (the shipped folder only when a variable names it). A verb that writes calls it
    before it reads."""
    from hwnas.errors import DataError

    _check_kind(kind)
    user = _user_dir(kind)
    if user is None:
        raise DataError(f"no folder for {kind}: there is no home folder; set HWNAS_DATA to a "
                        "writable folder")
    try:
        user.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create the {kind} folder {user}: "
                        f"{exc.strerror or exc}") from None
    return user


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
