"""Each space is one plugin: its configurations, supernet, layer view and default checkpoint
come from that one registration, and no other module names a space."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from hwnas._data import checkpoint_dir
from hwnas.errors import SpaceError
from hwnas.search.layers import layer_view, min_over_view
from hwnas.spaces import (DEFAULT_SPACE, SPACES, SpacePlugin, get_space, resolve_space_name,
                          space_from_config, space_names, space_plugin)

HWNAS = Path(__file__).resolve().parents[1] / "hwnas"
NAMES = SPACES.names()
CONFIGURED = [(n, c) for n in NAMES for c in SPACES.get(n).configs]


@pytest.mark.parametrize("name", NAMES)
def test_a_space_is_one_plugin_registered_under_its_name(name):
    plugin = SPACES.get(name)
    assert isinstance(plugin, SpacePlugin) and plugin.name == name
    assert get_space(name).name == name
    assert space_plugin(get_space(name)) is plugin


@pytest.mark.parametrize("name,config", CONFIGURED)
def test_every_configuration_is_a_space_name_and_round_trips(name, config):
    space = get_space(f"{name}-{config}")
    assert resolve_space_name(f"{name}-{config}") == (SPACES.get(name), config)
    options = SPACES.get(name).config(config).options
    for key, value in options.items():
        got = space.config()[key]
        assert (list(got) if isinstance(got, (list, tuple)) else got) == \
            (list(value) if isinstance(value, (list, tuple)) else value)
    assert space_from_config(space.config()).config() == space.config()
    # keywords still override a configuration
    assert get_space(f"{name}-{config}", num_classes=7).num_classes == 7


@pytest.mark.parametrize("name,config", CONFIGURED)
def test_a_configurations_checkpoint_is_of_that_configuration(name, config):
    ckpt = SPACES.get(name).config(config).default_checkpoint
    if ckpt is None:
        pytest.skip(f"{name}-{config} ships no checkpoint")
    meta = json.loads((checkpoint_dir(ckpt) / "meta.json").read_text())
    assert meta["space"] == get_space(f"{name}-{config}").config()


def test_the_default_space_has_the_shipped_checkpoint():
    from hwnas.spaces import default_checkpoint

    assert default_checkpoint() == SPACES.get(DEFAULT_SPACE).default_checkpoint is not None
    assert checkpoint_dir(default_checkpoint()).is_dir()


def test_unknown_space_and_configuration_names_list_the_known_ones():
    with pytest.raises(SpaceError, match="unknown search space 'nope'.*ofa-mbv3-fmnist"):
        get_space("nope")
    with pytest.raises(SpaceError, match="unknown search space 'ofa-mbv3-tiny'"):
        get_space("ofa-mbv3-tiny")
    with pytest.raises(SpaceError, match="has no configuration 'tiny'; have: fmnist, imagenet"):
        SPACES.get("ofa-mbv3").config("tiny")
    assert set(NAMES) < set(space_names(configurations=True))


@pytest.mark.parametrize("name", NAMES)
def test_the_layer_view_is_the_plugins_or_a_clear_refusal(name):
    space = get_space(name)
    if SPACES.get(name).layer_view is None:
        with pytest.raises(SpaceError, match=f"space '{name}' has no layer view"):
            layer_view(space, 0)
        return
    view = layer_view(space, 0)
    n_ops = len(space.op_list)
    ids = view.prefix + view.suffix + [i for c in view.candidates for i in c]
    assert all(0 <= i < n_ops or i == space.null_op for i in ids)
    # the cheapest choice by MACs is a genome of the space whose operators sum to that cost
    macs = np.append(space.cost_vectors()["macs"], 0.0)
    low, choice = min_over_view(view, macs)
    genome = view.genome(choice)[None, :]
    assert np.isclose(space.flops_genomes(space.canonical_genomes(genome))[0], low)
    with pytest.raises(SpaceError, match="resolution index"):
        layer_view(space, len(space.resolutions))


@pytest.mark.parametrize("name", NAMES)
def test_a_supernet_comes_from_the_plugin_or_is_refused(name):
    plugin = SPACES.get(name)
    if plugin.supernet is None:
        with pytest.raises(SpaceError, match=f"space '{name}' has no weight-sharing supernet"):
            plugin.check_supernet()
        return
    space = get_space(f"{name}-{plugin.default_config}") if plugin.default_config else \
        get_space(name)
    net = plugin.build_supernet(space)
    arch = space.largest()
    sub = net.get_active_subnet(arch)
    assert set(sub.state_dict()) == set(space.build(arch).state_dict())


def test_no_module_outside_its_plugin_names_a_space():
    """A space's name is written in its own plugin module and nowhere else in the library,
    but for the one default constant (``hwnas.spaces._plugin.DEFAULT_SPACE``). ``proxyless`` is
    also the name of a search strategy, registered as such; format names such as
    ``proxyless-lut`` are not space names."""
    strategy = {"hwnas/search/proxyless.py", "hwnas/search/__init__.py", "hwnas/search/_gradient.py"}
    allowed = {(f, "proxyless") for f in strategy}
    found = []
    for path in sorted(HWNAS.rglob("*.py")):
        rel = path.relative_to(HWNAS.parent).as_posix()
        if rel.startswith("hwnas/spaces/"):
            continue
        text = path.read_text(encoding="utf-8")
        for name in NAMES:
            for m in re.finditer(rf"(?<![\w.-]){re.escape(name)}(?![\w-])", text):
                if (rel, name) not in allowed:
                    line = text.count("\n", 0, m.start()) + 1
                    found.append(f"{rel}:{line}: {name}")
    assert found == []
