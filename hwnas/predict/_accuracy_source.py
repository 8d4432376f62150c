"""What an accuracy source is: the registry, the base class and the label each result carries.

An accuracy source says where a subnet's accuracy comes from. It scores genome rows of one
space (top-1 as a fraction, vectorised) and labels each figure:

* ``kind``: ``measured`` (the figure is a measurement of that very subnet) or ``predicted``
  (a model's estimate);
* ``domain``: the configuration its figures hold for (width, classes, channels, resolutions);
  scored in another configuration, the figure is an ``extrapolation`` and says why.

Sources register a ``SourceSpec`` under a short name in ``ACCURACY_SOURCES``; each space
configuration names the sources it accepts (``SpaceConfig.accuracy_sources``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from hwnas._registry import Registry

__all__ = ["MEASURED", "PREDICTED", "ACCURACY_FORMAT", "ACCURACY_SOURCES", "SourceSpec",
           "AccuracySource", "register_source", "domain_of", "extrapolation_note",
           "accuracy_file", "imported_locator", "accuracy_write_path", "accuracy_text"]

MEASURED, PREDICTED = "measured", "predicted"
#: the format of imported accuracy data (``hwnas import-accuracy``)
ACCURACY_FORMAT = "hwnas-accuracy/1"
ACCURACY_SOURCES: Registry = Registry("accuracy source")
_DOMAIN_KEYS = ("width_mult", "num_classes", "in_chans")


@dataclass(frozen=True)
class SourceSpec:
    """A registered accuracy source.

    ``locate(space, checkpoint)`` is the file (or folder) it would load for ``space``, None
    when there is none yet; ``load(space, path)`` builds the source on it; ``how`` says how to
    obtain one (shown when none is found)."""

    name: str
    summary: str
    locate: Callable[[Any, Any], Path | None]
    load: Callable[[Any, Path], "AccuracySource"]
    how: str


def register_source(spec: SourceSpec) -> SourceSpec:
    ACCURACY_SOURCES.register(spec.name)(spec)
    return spec


def domain_of(config: dict) -> dict:
    """The domain of figures obtained in the space configuration ``config``."""
    out = {k: config[k] for k in _DOMAIN_KEYS if k in config}
    out["resolutions"] = [int(r) for r in config.get("resolutions", [])]
    return out


def extrapolation_note(domain: dict, space, resolutions=None) -> str | None:
    """Why ``space`` (at ``resolutions``, None: all of its own) lies outside ``domain``
    (None: inside). A domain gives its input sizes as ``resolutions`` (a list) or
    ``resolution_range`` (``[lo, hi]``)."""
    have = space.config()
    why = [f"{k} {have[k]} (source: {domain[k]})" for k in _DOMAIN_KEYS
           if k in domain and k in have and have[k] != domain[k]]
    res = list(getattr(space, "resolutions", ()) if resolutions is None else resolutions)
    if "resolution_range" in domain:
        lo, hi = domain["resolution_range"]
        out = [r for r in res if not lo <= r <= hi]
        where = f"{lo}-{hi} px"
    else:
        out = [r for r in res if r not in domain.get("resolutions", res)]
        where = ", ".join(str(r) for r in domain.get("resolutions", [])) + " px"
    if out:
        why.append(f"resolution {', '.join(map(str, out))} (source: {where})")
    return ("extrapolation: " + "; ".join(why)) if why else None


class AccuracySource:
    """Top-1 (a fraction) of genome rows of ``space``, labelled. Subclasses set ``name`` and
    ``kind`` and implement ``predict_genomes``."""

    name = ""
    kind = PREDICTED

    def __init__(self, space, origin: str, domain: dict, note: str = "") -> None:
        self.space, self.origin, self.domain = space, origin, domain
        self.extrapolation = extrapolation_note(domain, space)
        self.note = note

    def predict_genomes(self, genomes: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def kind_genomes(self, genomes: np.ndarray) -> np.ndarray:
        """``measured`` or ``predicted`` for each row."""
        return np.full(len(genomes), self.kind, dtype=object)

    def describe(self) -> dict:
        """The source as every result names it."""
        return {"source": self.name, "kind": self.kind, "origin": self.origin,
                "domain": self.domain, "extrapolation": self.extrapolation,
                "note": self.note}

    def label(self, genome: np.ndarray) -> dict:
        """The accuracy of one genome row as ``arch.json`` and manifests carry it."""
        g = np.asarray(genome)[None, :]
        res = getattr(self.space, "resolutions", None)
        at = None if res is None else [res[int(g[0, -1])]]
        return {**self.describe(), "kind": str(self.kind_genomes(g)[0]),
                "top1": float(self.predict_genomes(g)[0]),
                "extrapolation": extrapolation_note(self.domain, self.space, at)}


def accuracy_file(plugin_name: str, source: str, suffix: str) -> Path | None:
    """The imported file of ``source`` for a space family, over the data folders, or None."""
    from hwnas import _data

    return _data.find("accuracy", plugin_name, f"{source}{suffix}")


def imported_locator(source: str, suffix: str) -> Callable[[Any, Any], Path | None]:
    """``SourceSpec.locate`` of a source that ``hwnas import-accuracy`` writes: its file for
    the space's family, when imported."""
    def locate(space, checkpoint=None) -> Path | None:
        from hwnas.spaces import space_plugin

        return accuracy_file(space_plugin(space).name, source, suffix)

    return locate


def accuracy_write_path(plugin_name: str, source: str, suffix: str) -> Path:
    """Where ``hwnas import-accuracy`` writes ``source``'s file for a space family."""
    from hwnas import _data

    return _data.write_dir("accuracy") / plugin_name / f"{source}{suffix}"


def accuracy_text(record: dict | None) -> str:
    """An ``accuracy`` record (``arch.json``, a manifest) as one line: the figure, measured or
    predicted, its source, and whether it is an extrapolation."""
    if not record or record.get("top1") is None:
        return (record or {}).get("note") or "none"
    line = (f"top-1 {100 * record['top1']:.2f}% {record.get('kind')} "
            f"(source {record.get('source')})")
    return line + (f" [{record['extrapolation']}]" if record.get("extrapolation") else "")
