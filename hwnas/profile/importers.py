"""Published lookup tables → ``LatencyTable``: search for devices we do not own.

Two formats are known, by the repositories that published them:

* ``ofa-lut``: Once-for-All's ``<r>_lookup_table.yaml`` files (one per input resolution), values
  ``{count, mean, std}`` in ms; the Samsung Note10 tables are for the Once-for-All MobileNetV3
  space at width 1.2 (its ``imagenet`` configuration, at the resolutions of the files).
* ``proxyless-lut``: ProxylessNAS's ``mobile_trim.yaml``, values ``{count, mean, var}`` in ms,
  Pixel 1, 224×224 input, for the ProxylessNAS space.

The tables publish a mean and a spread, not a median: ``median_ms`` holds the published mean and
``p90_ms`` is mean + 1.2816·std (a normal approximation). The metadata says so, and marks the
table as imported rather than measured here.

Files named by their resolution keep one part each (``LatencyTable.by_resolution``): the same
key (the head of the network, a late stage whose feature size two resolutions share) was timed
separately in several files, and Once-for-All prices a subnet from the file of its resolution
only. ``entries`` pools each key over the files, weighted by count.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from hwnas._registry import Registry
from hwnas.errors import TableError
from hwnas.profile.meta import now_iso, update_coverage
from hwnas.profile.table import LatencyTable
from hwnas.spaces.ofa_mbv3 import PLUGIN as OFA
from hwnas.spaces.proxyless import PLUGIN as PROXYLESS

__all__ = ["IMPORTERS", "Importer", "import_table", "read_published_yaml", "detect_format"]

IMPORTERS: Registry = Registry("table format")
_Z90 = 1.2815515655446004
#: a published table must price at least this share of its space's operators: a table of
#: another space or width shares almost no operator key with it
MIN_COVERAGE = 0.5
_OFA_FILE = re.compile(r"^(\d+)_lookup_table\.ya?ml$")


@dataclass(frozen=True)
class Importer:
    space: str
    space_config: dict              # defaults; resolutions may come from the files
    origin: str
    device: str


IMPORTERS.register("ofa-lut")(Importer(
    OFA.name, {k: v for k, v in OFA.config("imagenet").options.items() if k != "resolutions"},
    "mit-han-lab/once-for-all @ tutorial/checkpoints/latency_table@note10",
    "Samsung Galaxy Note10 (published Once-for-All lookup table, measured by its authors)"))
IMPORTERS.register("proxyless-lut")(Importer(
    PROXYLESS.name, {"resolutions": [224], "num_classes": 1000, "in_chans": 3},
    "han-cai/files @ proxylessnas/mobile_trim.yaml",
    "Google Pixel 1 (published ProxylessNAS lookup table, measured by its authors)"))


def read_published_yaml(path: Path) -> dict[str, tuple[float, float, int]]:
    """``key → (mean_ms, std_ms, count)``; ``var`` is turned into a standard deviation."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TableError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise TableError(f"{path} is not a text (YAML) file") from None
    except yaml.YAMLError as exc:
        raise TableError(f"malformed YAML in {path}: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict) or not data:
        raise TableError(f"{path} is not a lookup table (expected a mapping of operator keys)")
    out = {}
    for key, v in data.items():
        try:
            mean = float(v["mean"])
            std = float(v["std"]) if "std" in v else math.sqrt(float(v["var"]))
            count = v.get("count", 1)
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError):
            raise TableError(f"{path}: entry '{key}' lacks a numeric mean and std/var") from None
        if not (math.isfinite(mean) and mean >= 0 and math.isfinite(std) and std >= 0):
            raise TableError(f"{path}: entry '{key}' has a negative or non-finite value")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise TableError(f"{path}: entry '{key}' has a count that is not a positive "
                             f"integer ({count!r})")
        out[str(key)] = (mean, std, count)
    return out


def _pool(a: tuple[float, float, int], b: tuple[float, float, int]) -> tuple[float, float, int]:
    """One entry from two measurements of the same key (same operator in two files)."""
    (m1, s1, n1), (m2, s2, n2) = a, b
    n = n1 + n2
    m = (n1 * m1 + n2 * m2) / n
    var = (n1 * (s1 ** 2 + m1 ** 2) + n2 * (s2 ** 2 + m2 ** 2)) / n - m ** 2
    return m, math.sqrt(max(var, 0.0)), n


def _files(source: Path) -> list[Path]:
    if source.is_dir():
        files = sorted((p for p in source.iterdir() if _OFA_FILE.match(p.name)),
                       key=lambda p: int(_OFA_FILE.match(p.name)[1]))
        if not files:
            raise TableError(f"{source} holds no <resolution>_lookup_table.yaml files")
        return files
    if not source.is_file():
        raise TableError(f"table source not found: {source}")
    return [source]


def detect_format(source: Path) -> str:
    files = _files(source)
    if len(files) > 1 or _OFA_FILE.match(files[0].name):
        return "ofa-lut"
    first = next(iter(read_published_yaml(files[0])))
    import yaml

    sample = yaml.safe_load(files[0].read_text(encoding="utf-8"))[first]
    return "proxyless-lut" if "var" in sample else "ofa-lut"


def _space_config(imp: Importer, files: list[Path], space: str, overrides: dict) -> dict:
    cfg = {"name": space, **(imp.space_config if space == imp.space else {})}
    res = [int(m[1]) for m in (_OFA_FILE.match(p.name) for p in files) if m]
    if res:
        cfg["resolutions"] = res
    return {**cfg, **overrides}


def import_table(source: str | Path, target: str, space: str | None = None,
                 fmt: str | None = None, overrides: dict | None = None) -> LatencyTable:
    """Convert a published table (a file or a folder of per-resolution files)."""
    from hwnas.spaces import resolve_space_name, space_from_config

    source = Path(source)
    fmt = fmt or detect_format(source)
    imp: Importer = IMPORTERS.get(fmt)
    # an unknown space lists the known ones; a named configuration gives its options
    plugin, config = resolve_space_name(space or imp.space)
    named = {k: v for k, v in plugin.config(config).options.items()
             if k != "resolutions"} if config is not None else {}
    files = _files(source)
    merged: dict[str, tuple[float, float, int]] = {}
    by_res: dict[int, dict[str, dict]] = {}
    for f in files:
        values = read_published_yaml(f)
        for key, val in values.items():
            merged[key] = _pool(merged[key], val) if key in merged else val
        by_name = _OFA_FILE.match(f.name)
        if by_name:
            by_res[int(by_name[1])] = {k: _entry(*v) for k, v in values.items()}
    space = plugin.name
    cfg = _space_config(imp, files, space, {**named, **(overrides or {})})
    meta = {"target": target, "space": space, "runtime": "published", "device": imp.device,
            "measured_here": False, "created": now_iso(), "updated": now_iso(),
            "imported": {"format": fmt, "source": str(source.resolve()), "origin": imp.origin,
                         "files": [f.name for f in files],
                         "statistic": "median_ms holds the published mean; p90_ms = mean + "
                                      "1.2816*std (normal approximation); n is the published "
                                      "count",
                         "lookup": ("per resolution: an arch is priced from the file of its "
                                    "input resolution (by_resolution); entries pool the keys "
                                    "seen in several files" if by_res else
                                    "one file: each key once")},
            "spaces": [], "networks": [], "validation": {"n": 0, "within10": None, "mape": None}}
    table = LatencyTable(meta, {key: _entry(*v) for key, v in merged.items()}, by_res)
    space_from_config(cfg)                  # a bad config fails here, naming the field
    table.meta["spaces"] = [cfg]
    cov = update_coverage(table)
    if cov["n_measured"] < MIN_COVERAGE * cov["n_ops"]:
        raise TableError(f"{source} covers {cov['n_measured']} of the {cov['n_ops']} operators "
                         f"of {space} {_short(cfg)} as format '{fmt}': not a table of this "
                         "space (check its format, space and width multiplier)")
    return table


def _entry(mean: float, std: float, count: int) -> dict:
    return {"median_ms": mean, "p90_ms": mean + _Z90 * std, "std_ms": std, "n": count,
            "mean_ms": mean}


def _short(cfg: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in cfg.items() if k not in ("name", "resolutions"))
