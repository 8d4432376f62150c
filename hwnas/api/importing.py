"""Published data made hwnas's own: latency lookup tables and accuracy data."""
from __future__ import annotations

import os
from pathlib import Path


def import_table(source: str | os.PathLike, target: str, space: str | None = None,
                 format: str | None = None, *, width_mult: float | None = None,
                 out: str | os.PathLike | None = None, force: bool = False):
    """Convert a published latency lookup table (``source``: a folder of
    ``<r>_lookup_table.yaml`` files or one YAML table; ``format`` None: detected) into an hwnas
    latency table filed under ``target``, for ``space`` (None: the format's) with its
    ``width_mult`` overridden when given; returns ``(path, table)``.

    ``out`` defaults to ``latency_tables/<target>/<space>.json`` in the user data folder, never
    the shipped data. An existing table is replaced only with ``force``; a file that is no
    hwnas table never is.
    """
    from hwnas import _data
    from hwnas.errors import TableError
    from hwnas.profile.importers import import_table as _import
    from hwnas.profile.table import is_table_file, table_path

    tables = None if out else _data.write_dir("latency_tables")   # created now if new
    overrides = {"width_mult": width_mult} if width_mult is not None else {}
    table = _import(source, target, space, format, overrides)
    # an imported table goes to the user's folder (hiding a shipped one of the same name)
    path = Path(out) if out else tables / target / table_path(target, table.meta["space"]).name
    if path.is_dir():
        raise TableError(f"{path} is a folder, not a latency table file; choose a file path")
    if path.exists() and not is_table_file(path):      # a user's file, even with force
        raise TableError(f"{path} exists and is not an hwnas latency table; choose another file")
    if path.exists() and not force:
        raise TableError(f"{path} exists; pass force=True to replace it")
    table.save(path)
    return path, table


def import_accuracy(source: str | os.PathLike, format: str | None = None,
                    space: str | None = None, out: str | os.PathLike | None = None,
                    force: bool = False, *, tolerance: float | None = None):
    """Read published accuracy data (OFA's accuracy predictor ``.pth``, or a CSV of arch ->
    top-1, or a folder of them; ``format`` None: by the suffix) once, for the space
    configuration ``space`` (None: the format's), and write it in hwnas's own format under
    ``accuracy/<space>/`` (or ``out``), where searches find it; returns what was written.
    ``tolerance`` (top-1 points; None: the default) bounds how far apart repeats of one subnet
    in a measured CSV may be to be averaged. An existing import is replaced only with
    ``force``."""
    from hwnas.predict.accuracy_import import import_accuracy as _import

    options = {} if tolerance is None else {"tolerance": tolerance}
    return _import(source, format, space, out, force, **options)
