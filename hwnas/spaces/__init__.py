"""Search spaces, by short name: ``get_space("ofa-mbv3", resolutions=[...])``."""
from __future__ import annotations

from hwnas.spaces._base import OP_BUILDERS, OpSpec, SearchSpace
from hwnas.spaces._registry import SPACES
from hwnas.spaces.ofa_mbv3 import OFAArch, OFAMobileNetV3Space
from hwnas.spaces import nb201  # noqa: F401  (registers the nb201 space)
from hwnas.spaces import fbnet  # noqa: F401  (registers the fbnet space)
from hwnas.spaces import proxyless  # noqa: F401  (registers the proxyless space)

__all__ = ["SPACES", "OP_BUILDERS", "OpSpec", "SearchSpace", "OFAArch", "OFAMobileNetV3Space",
           "get_space", "space_from_config"]


def get_space(name: str, **config) -> SearchSpace:
    """Instantiate a registered space; unknown names give a one-line error listing the valid ones."""
    return SPACES.create(name, **config)


def space_from_config(config: dict) -> SearchSpace:
    """Rebuild a space from ``space.config()`` (as stored in checkpoints and tables)."""
    cfg = dict(config)
    return get_space(cfg.pop("name"), **cfg)
