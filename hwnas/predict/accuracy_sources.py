"""Accuracy sources by name: where a subnet's accuracy comes from (``ACCURACY_SOURCES``).

* ``supernet``: the accuracy predictor of a supernet trained here (its checkpoint);
* ``ofa-predictor``: Once-for-All's published ImageNet predictor, imported once from its
  ``.pth`` by ``hwnas import-accuracy``;
* ``measured``: measured top-1 from CSV files of arch → top-1 (DyNAS-T's), with a model fitted
  on them for the subnets not measured, imported by ``hwnas import-accuracy`` as well.

Each space configuration names the sources it accepts (``SpaceConfig.accuracy_sources``), in
the order a search tries them when none is named. A space that is no named configuration
accepts the sources of all its configurations.
"""
from __future__ import annotations

from pathlib import Path

from hwnas.errors import DataError, SpaceError
from hwnas.predict._accuracy_source import (ACCURACY_SOURCES, MEASURED, PREDICTED,
                                            AccuracySource, SourceSpec, accuracy_text)
from hwnas.predict import measured_accuracy  # noqa: F401  (registers measured)
from hwnas.predict import ofa_predictor  # noqa: F401  (registers ofa-predictor)
from hwnas.predict import supernet_accuracy  # noqa: F401  (registers supernet)

__all__ = ["ACCURACY_SOURCES", "MEASURED", "PREDICTED", "SUPERNET", "AccuracySource",
           "SourceSpec", "accuracy_text", "configuration_name", "accepted_sources",
           "load_accuracy_source", "find_accuracy_source"]

#: the source that a named supernet checkpoint brings
SUPERNET = supernet_accuracy.SOURCE


def configuration_name(space) -> str:
    """``<space>-<configuration>`` of a space instance, or its bare name when it is none."""
    from hwnas.spaces import space_plugin

    plugin = space_plugin(space)
    cfg = plugin.config_of(space)
    return f"{plugin.name}-{cfg}" if cfg else plugin.name


def accepted_sources(space) -> tuple[str, ...]:
    """The sources ``space``'s configuration accepts, in the order they are tried."""
    from hwnas.spaces import space_plugin

    plugin = space_plugin(space)
    cfg = plugin.config_of(space)
    if cfg is not None:
        return tuple(plugin.config(cfg).accuracy_sources)
    order = [plugin.default_config] + [c for c in plugin.configs if c != plugin.default_config]
    out: list[str] = []
    for c in order:
        if c is not None:
            out += [s for s in plugin.config(c).accuracy_sources if s not in out]
    return tuple(out)


def _check_accepted(name: str, space) -> SourceSpec:
    spec = ACCURACY_SOURCES.get(name)
    accepted = accepted_sources(space)
    if name not in accepted:
        raise SpaceError(f"accuracy source '{name}' is not one that {configuration_name(space)} "
                         f"accepts; it accepts: {', '.join(accepted) or 'none'}")
    return spec


def load_accuracy_source(name: str, space, path: str | Path | None = None,
                         checkpoint: str | Path | None = None) -> AccuracySource:
    """The source ``name`` scoring ``space``: from ``path`` when given, else from where it was
    imported (``checkpoint``: the supernet's). A source the space's configuration does not
    accept, or one not imported yet, is a one-line error that says how to get it."""
    spec = _check_accepted(name, space)
    found = Path(path) if path is not None else spec.locate(space, checkpoint)
    if found is None or not found.exists():
        raise DataError(f"no '{name}' accuracy data for {configuration_name(space)}"
                        f"{f' at {found}' if found is not None else ''}; {spec.how}")
    return spec.load(space, found)


def find_accuracy_source(space, checkpoint: str | Path | None = None) -> AccuracySource | None:
    """The first source the space's configuration accepts that has data (a named
    ``checkpoint`` puts ``supernet`` first); None when none has."""
    names = list(accepted_sources(space))
    if checkpoint is not None and SUPERNET in names:
        names.remove(SUPERNET)
        names.insert(0, SUPERNET)
    for name in names:
        spec = ACCURACY_SOURCES.get(name)
        found = spec.locate(space, checkpoint)
        if found is not None:
            return spec.load(space, found)
    return None
