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
    """Instantiate a registered space; an unknown name or option gives a one-line error that
    lists the valid ones."""
    import inspect

    from hwnas.errors import SpaceError

    cls = SPACES.get(name)
    allowed = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(config) - set(allowed))
    if unknown:
        raise SpaceError(f"space '{name}' has no option '{unknown[0]}'; options: "
                         f"{', '.join(allowed)}")
    return cls(**config)


def space_from_config(config: dict) -> SearchSpace:
    """Rebuild a space from ``space.config()`` (as stored in checkpoints and tables)."""
    from hwnas.errors import SpaceError

    if not isinstance(config, dict) or not isinstance(config.get("name"), str):
        raise SpaceError(f"a space configuration must be an object with a 'name', got "
                         f"{str(config)[:80]}")
    cfg = dict(config)
    return get_space(cfg.pop("name"), **cfg)
