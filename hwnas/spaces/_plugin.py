"""One registration per search space: ``SpacePlugin``.

A plugin holds everything hwnas needs to know about a space, so that adding a space is one new
file that ends in ``register_space(SpacePlugin(...))``:

* ``space``: the ``SearchSpace`` class (``get_space`` instantiates it);
* ``configs``: named configurations (the options passed to the class), each naming where its
  accuracy may come from (registered accuracy-source names; the sources themselves live in a
  higher layer) and its default supernet checkpoint;
* ``supernet``: a factory ``space -> torch.nn.Module`` of the weight-sharing supernet, or None
  when the space has none (training refuses it);
* ``layer_view``: ``(space, r_index) -> LayerView``, the space as a chain of layers (gradient
  strategies, exact latency bounds), or None;
* ``published_latency``: the file of published per-device latencies of this space in the
  shared external data, with the column where its devices start, or None;
* ``checkpoint_formats``: published supernet file formats (not hwnas's own checkpoint folders)
  that load into this space's supernet, each recognised by the names of its keys
  (``checkpoint_format`` picks the one of a file's state dict).

A space is named by its plugin name (``"ofa-mbv3"``), or by a plugin name and one of its
configurations joined by ``-`` (``"ofa-mbv3-fmnist"``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping

from hwnas.errors import DataError, SpaceError
from hwnas.spaces._registry import SPACES

if TYPE_CHECKING:
    from hwnas.spaces._base import SearchSpace
    from hwnas.spaces._layers import LayerView

__all__ = ["SpaceConfig", "SpacePlugin", "PublishedLatency", "CheckpointFormat",
           "register_space", "space_plugin", "resolve_space_name", "checkpoint_format",
           "DEFAULT_SPACE"]

#: the space a verb uses when none is named
DEFAULT_SPACE = "ofa-mbv3"


@dataclass(frozen=True)
class SpaceConfig:
    """A named configuration of a space: the class options and where its accuracy comes from."""

    options: Mapping[str, Any]
    accuracy_sources: tuple[str, ...] = ()
    default_checkpoint: str | None = None
    description: str = ""


@dataclass(frozen=True)
class PublishedLatency:
    """Published latencies of the space's archs on several devices (a CSV file of the shared
    external data: one row an arch, its arch in column 1, the device columns from
    ``first_device_column`` on). ``genomes(space, texts)`` turns column 1 into genome rows."""

    file: str
    first_device_column: int
    genomes: Callable[["SearchSpace", list[str]], Any]


@dataclass(frozen=True)
class CheckpointFormat:
    """A published supernet file format that loads into a space's supernet.

    ``recognises(state)``: whether a state dict read from a file is of this format (by its key
    names); ``load(plugin, state, where)``: ``(space, supernet, configuration name)``, the
    configuration the shapes show and its supernet holding the file's weights (eval mode), or
    one ``DataError`` line that names ``where`` and the first key or shape that does not fit;
    ``label``: how manifests name weights of this format."""

    name: str
    label: str
    recognises: Callable[[Mapping[str, Any]], bool]
    load: Callable[["SpacePlugin", Mapping[str, Any], str], tuple]


@dataclass(frozen=True)
class SpacePlugin:
    name: str
    space: type
    configs: Mapping[str, SpaceConfig] = field(default_factory=dict)
    default_config: str | None = None
    supernet: Callable[["SearchSpace"], Any] | None = None
    layer_view: Callable[["SearchSpace", int], "LayerView"] | None = None
    published_latency: PublishedLatency | None = None
    checkpoint_formats: tuple[CheckpointFormat, ...] = ()

    def __post_init__(self) -> None:
        if self.default_config is not None and self.default_config not in self.configs:
            raise SpaceError(f"space '{self.name}': default configuration "
                             f"'{self.default_config}' is not one of its configurations")

    def config(self, name: str | None = None) -> SpaceConfig:
        """A named configuration (None: the default one); an unknown name lists the known."""
        key = self.default_config if name is None else name
        if key is None or key not in self.configs:
            have = ", ".join(sorted(self.configs)) or "none"
            raise SpaceError(f"space '{self.name}' has no configuration '{key}'; have: {have}")
        return self.configs[key]

    def config_of(self, space: "SearchSpace") -> str | None:
        """The name of the configuration ``space`` is an instance of: the one whose options
        (resolutions aside) it has, preferring one whose resolutions hold all of the space's;
        None when no configuration fits."""
        have = space.config()
        same = [n for n, c in self.configs.items()
                if all(k in have and have[k] == v for k, v in c.options.items()
                       if k != "resolutions")]
        within = [n for n in same if set(getattr(space, "resolutions", ())) <=
                  set(self.configs[n].options.get("resolutions", ()))]
        return (within or same or [None])[0]

    @property
    def default_checkpoint(self) -> str | None:
        """The checkpoint of the default configuration (None: the space ships none)."""
        return None if self.default_config is None else self.config().default_checkpoint

    def check_supernet(self) -> None:
        """Refuse a space without a weight-sharing supernet, naming those that have one."""
        if self.supernet is None:
            raise SpaceError(f"space '{self.name}' has no weight-sharing supernet; spaces with "
                             f"one: {', '.join(n for n in SPACES.names() if SPACES.get(n).supernet)}")

    def build_supernet(self, space: "SearchSpace"):
        """The weight-sharing supernet of ``space`` (a torch module)."""
        self.check_supernet()
        return self.supernet(space)

    def view(self, space: "SearchSpace", r_index: int) -> "LayerView":
        """``space`` as a chain of layers at resolution index ``r_index``."""
        if self.layer_view is None:
            raise SpaceError(f"space '{self.name}' has no layer view (it is not a chain of "
                             "layers): gradient strategies and exact latency bounds need one")
        if not 0 <= r_index < len(space.resolutions):
            raise SpaceError(f"resolution index {r_index} outside {list(space.resolutions)}")
        return self.layer_view(space, r_index)


def register_space(plugin: SpacePlugin) -> SpacePlugin:
    """Register ``plugin`` under its name (a name registered twice is an error)."""
    if not isinstance(plugin, SpacePlugin):
        raise SpaceError(f"register_space takes a SpacePlugin, got {type(plugin).__name__}")
    SPACES.register(plugin.name)(plugin)
    return plugin


def resolve_space_name(name: str) -> tuple[SpacePlugin, str | None]:
    """``(plugin, configuration name or None)`` of a space name such as ``"ofa-mbv3"`` or
    ``"ofa-mbv3-fmnist"``; an unknown name lists the known ones, configurations included."""
    if not isinstance(name, str):
        raise SpaceError(f"a space name must be a string, got {name!r}")
    if name in SPACES:
        return SPACES.get(name), None
    for base in sorted(SPACES.names(), key=len, reverse=True):
        plugin = SPACES.get(base)
        if name.startswith(base + "-") and name[len(base) + 1:] in plugin.configs:
            return plugin, name[len(base) + 1:]
    known = [n for b in SPACES.names() for n in [b] + [f"{b}-{c}" for c in SPACES.get(b).configs]]
    raise SpaceError(f"unknown search space '{name}'; choose from: {', '.join(known)}")


def space_plugin(space: "str | SearchSpace") -> SpacePlugin:
    """The plugin of a space name or of a space instance."""
    return resolve_space_name(space if isinstance(space, str) else space.name)[0]


def checkpoint_format(state: Mapping[str, Any], where: str) -> tuple[SpacePlugin, CheckpointFormat]:
    """``(plugin, format)`` of a state dict read from the file ``where``: the first registered
    format that recognises it; when none does, the first registered one, whose loader then
    names the first key that does not fit."""
    formats = [(SPACES.get(n), f) for n in SPACES.names() for f in SPACES.get(n).checkpoint_formats]
    if not formats:
        raise DataError(f"{where}: no space reads supernet files of a published format")
    return next(((p, f) for p, f in formats if f.recognises(state)), formats[0])
