"""The catalogues (``list_*``) and the nouns (``get_space``, ``load_*``, ``connect``)."""
from __future__ import annotations

import os
from typing import Any

from hwnas.api._arguments import _check_target_name


# ---------------------------------------------------------------------------- catalogues
def list_targets() -> list[str]:
    """Device targets (``targets/*.toml`` in the data folders)."""
    from hwnas.targets import list_targets as _list

    return _list()


def load_targets() -> dict:
    """Every target by name (``list_targets()``), loaded: its ``Target``, or the
    ``HwnasError`` that refused its file (a broken file hides no other target)."""
    from hwnas.errors import HwnasError
    from hwnas.targets import load_target as _load

    out: dict = {}
    for name in list_targets():
        try:
            out[name] = _load(name)
        except HwnasError as exc:
            out[name] = exc
    return out


def list_spaces(configurations: bool = False) -> list[str]:
    """Registered search spaces; with ``configurations``, also each named configuration
    (``<space>-<configuration>``), which every verb accepts as a space name too."""
    from hwnas.spaces import space_names

    return space_names(configurations)


def list_predictors() -> list[str]:
    """Registered latency predictors."""
    from hwnas.predict import PREDICTORS

    return PREDICTORS.names()


def list_strategies() -> list[str]:
    """Registered search strategies."""
    from hwnas.search import STRATEGIES

    return STRATEGIES.names()


def list_accuracy_sources() -> list[str]:
    """Registered accuracy sources (each space configuration names those it accepts)."""
    from hwnas.predict.accuracy_sources import ACCURACY_SOURCES

    return ACCURACY_SOURCES.names()


def list_checkpoints() -> list[str]:
    """Shipped (and ``$HWNAS_DATA``) supernet checkpoints."""
    from hwnas._data import list_checkpoints as _list

    return _list()


# ---------------------------------------------------------------------------- nouns
def get_space(name: str, **config):
    """A registered search space by name (``list_spaces(True)``), with its options as keywords,
    e.g. ``get_space(name, resolutions=[16, 20, 24, 28])``."""
    from hwnas.spaces import get_space as _get

    return _get(name, **config)


def _space(space: Any):
    """A ``SearchSpace`` from a name, None (the default space) or a space itself."""
    from hwnas.spaces import DEFAULT_SPACE

    return get_space(space or DEFAULT_SPACE) if space is None or isinstance(space, str) else space


def load_target(name_or_path: str | os.PathLike):
    """A device ``Target`` from ``targets/<name>.toml`` or a ``.toml`` path."""
    from hwnas.targets import load_target as _load

    _check_target_name(name_or_path)
    return _load(name_or_path)


def load_supernet(checkpoint: str | os.PathLike | None = None):
    """``(space, supernet, meta)`` of a checkpoint folder or shipped name (None: the default
    space's shipped checkpoint), or of a ``.pth`` file of Once-for-All's published format
    (its configuration inferred from its shapes)."""
    from hwnas.train.checkpoint import load_supernet as _load

    return _load(checkpoint)


def load_predictor(target: str, space: Any = None, kind: str = "auto", *,
                   allow_emulated: bool = False):
    """The latency predictor of ``target`` for ``space`` (a name or a ``SearchSpace``, such as
    ``load_supernet().space``; None: the default space); ``kind`` is ``auto``, ``table``, ``calibrated`` or
    ``fewshot``. Its ``selection`` says which one ``auto`` chose and why. A table measured
    on an emulated device is refused unless ``allow_emulated``."""
    from hwnas.predict import load_predictor as _load

    _check_target_name(target)
    return _load(target, space, kind, allow_emulated=allow_emulated)


def connect(target, rpc: str | None = None, tracker: str | None = None, key: str | None = None,
            runtime: str | None = None):
    """The runtime that measures on ``target``'s device: this machine, an RPC server
    (``rpc="host:port"``) or a tracker (``tracker="host:port"``, ``key``)."""
    from hwnas.runtime import connect as _connect

    _check_target_name(target)
    target = load_target(target) if isinstance(target, (str, os.PathLike)) else target
    return _connect(target, rpc, tracker, key, runtime)
