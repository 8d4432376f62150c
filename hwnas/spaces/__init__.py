"""Search spaces, one plugin each: ``get_space("ofa-mbv3", resolutions=[...])``.

A space is registered by one ``SpacePlugin`` (``hwnas.spaces._plugin``) at the end of its own
module; ``SPACES`` maps names to plugins. ``get_space`` takes a plugin name (the class defaults),
or a plugin name joined to one of its configurations (``"ofa-mbv3-fmnist"``); keyword options
override either.
"""
from __future__ import annotations

from hwnas.spaces._base import OP_BUILDERS, OpSpec, SearchSpace
from hwnas.spaces._layers import LayerView
from hwnas.spaces._plugin import (DEFAULT_SPACE, CheckpointFormat, PublishedLatency, SpaceConfig,
                                  SpacePlugin, checkpoint_format, register_space,
                                  resolve_space_name, space_plugin)
from hwnas.spaces._registry import SPACES
from hwnas.spaces.ofa_mbv3 import OFAArch, OFAMobileNetV3Space
from hwnas.spaces import nb201  # noqa: F401  (registers the nb201 space)
from hwnas.spaces import fbnet  # noqa: F401  (registers the fbnet space)
from hwnas.spaces import proxyless  # noqa: F401  (registers the proxyless space)

__all__ = ["SPACES", "OP_BUILDERS", "OpSpec", "SearchSpace", "OFAArch", "OFAMobileNetV3Space",
           "LayerView", "SpacePlugin", "SpaceConfig", "PublishedLatency", "CheckpointFormat",
           "checkpoint_format", "register_space",
           "space_plugin", "resolve_space_name", "DEFAULT_SPACE", "get_space",
           "space_from_config", "default_checkpoint", "space_names"]


def get_space(name: str, **config) -> SearchSpace:
    """Instantiate a registered space; an unknown name or option gives a one-line error that
    lists the valid ones."""
    import inspect

    from hwnas.errors import SpaceError

    plugin, cfg_name = resolve_space_name(name)
    base = dict(plugin.config(cfg_name).options) if cfg_name is not None else {}
    allowed = [p for p in inspect.signature(plugin.space.__init__).parameters if p != "self"]
    unknown = sorted(set(config) - set(allowed))
    if unknown:
        raise SpaceError(f"space '{name}' has no option '{unknown[0]}'; options: "
                         f"{', '.join(allowed)}")
    return plugin.space(**{**base, **config})


def space_from_config(config: dict) -> SearchSpace:
    """Rebuild a space from ``space.config()`` (as stored in checkpoints and tables)."""
    from hwnas.errors import SpaceError

    if not isinstance(config, dict) or not isinstance(config.get("name"), str):
        raise SpaceError(f"a space configuration must be an object with a 'name', got "
                         f"{str(config)[:80]}")
    cfg = dict(config)
    return get_space(cfg.pop("name"), **cfg)


def default_checkpoint(space: str | SearchSpace | None = None) -> str | None:
    """The supernet checkpoint a space uses when none is named (None: the default space's);
    None when the space ships no checkpoint."""
    return space_plugin(DEFAULT_SPACE if space is None else space).default_checkpoint


def space_names(configurations: bool = False) -> list[str]:
    """Registered space names; with ``configurations``, also each ``<space>-<configuration>``."""
    names = SPACES.names()
    if not configurations:
        return names
    return [n for b in names for n in [b] + [f"{b}-{c}" for c in SPACES.get(b).configs]]
