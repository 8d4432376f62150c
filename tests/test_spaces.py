"""Every registered search space obeys the same contract (parametrised over the registry)."""
import json

import numpy as np
import pytest
import torch

from hwnas.errors import ArchError
from hwnas.spaces import SPACES, get_space

#: small configurations so that building and running stays fast
SMALL = {"ofa-mbv3": {"resolutions": [128, 160]}, "proxyless": {"resolutions": [128]},
         "nb201": {"cells": 1}, "fbnet": {}}

#: (space, malformed arch string, word the error must contain)
MALFORMED = [
    ("ofa-mbv3", "r128-k35.35.35.35-e33.33.33.33.33", "kernel"),
    ("ofa-mbv3", "r128-k39.35.35.35.35-e33.33.33.33.33", "kernel 9"),
    ("ofa-mbv3", "r129-k35.35.35.35.35-e33.33.33.33.33", "resolution 129"),
    ("nb201", "|nor_conv_3x3~0|+|none~0|conv_9x9~1|+|none~0|none~1|none~2|", "conv_9x9"),
    ("nb201", "|nor_conv_3x3~0|+|none~0|none~2|+|none~0|none~1|none~2|", "none~2"),
    ("nb201", "|nor_conv_3x3~0|+|none~0|+|none~0|none~1|none~2|", "node 2"),
    ("fbnet", "r32-k3_e1-k3_e1.k3_e1.k3_e1.k3_e1-k3_e1.k3_e1.k3_e1.k3_e1-k3_e1.k3_e1.k3_e1.k3_e1"
              "-k3_e1.k3_e1.k3_e1.k3_e1-k3_e1.k3_e1.k3_e1.k7_e9-k3_e1", "k7_e9"),
    ("fbnet", "r32-k3_e1-k3_e1.k3_e1.k3_e1-k3_e1.k3_e1.k3_e1.k3_e1-k3_e1.k3_e1.k3_e1.k3_e1"
              "-k3_e1.k3_e1.k3_e1.k3_e1-k3_e1.k3_e1.k3_e1.k3_e1-k3_e1", "stage 2"),
    ("fbnet", "r64-k3_e1-k3_e1.k3_e1.k3_e1.k3_e1-k3_e1.k3_e1.k3_e1.k3_e1-k3_e1.k3_e1.k3_e1.k3_e1"
              "-k3_e1.k3_e1.k3_e1.k3_e1-k3_e1.k3_e1.k3_e1.k3_e1-k3_e1", "resolution 64"),
]


@pytest.fixture(params=SPACES.names())
def space(request):
    return get_space(request.param, **SMALL.get(request.param, {}))


def test_registry_holds_the_known_spaces():
    assert {"ofa-mbv3", "nb201", "fbnet"} <= set(SPACES.names())


def test_string_and_json_round_trip(space):
    rng = np.random.default_rng(0)
    for arch in space.sample_many(rng, 20):
        assert space.parse(str(arch)) == arch
        assert space.from_json(json.loads(json.dumps(arch.to_json()))) == arch
        assert str(space.from_genome(space.to_genomes([arch])[0])) == str(arch)


def test_sample_mutate_crossover_stay_valid(space):
    rng = np.random.default_rng(1)
    a, b = space.sample(rng), space.sample(rng)
    for child in (space.mutate(a, rng), space.crossover(a, b, rng)):
        assert space.parse(str(child)) == child
    g = space.sample_genomes(rng, 64)
    sizes = space.choice_sizes()
    for h in (space.mutate_genomes(rng, g), space.crossover_genomes(rng, g, g[::-1])):
        assert h.shape == g.shape and (h >= 0).all() and (h < sizes).all()


def test_encode_shape_is_fixed(space):
    rng = np.random.default_rng(2)
    archs = space.sample_many(rng, 7)
    x = space.encode(archs)
    assert x.ndim == 2 and x.shape[0] == 7
    assert space.encode(archs[0]).shape == (x.shape[1],)
    assert np.isfinite(x).all()


def test_op_indices_cover_the_arch_ops(space):
    rng = np.random.default_rng(3)
    archs = space.sample_many(rng, 5)
    ids = space.op_indices(space.to_genomes(archs))
    for arch, row in zip(archs, ids):
        keys = sorted(space.op_list[i].key for i in row if i != space.null_op)
        assert keys == sorted(op.key for op in space.ops(arch))


def test_build_runs_a_forward_pass(space):
    arch = space.sample(np.random.default_rng(4))
    r = getattr(arch, "r", getattr(space, "resolution", 32))
    net = space.build(arch, num_classes=5).eval()
    with torch.no_grad():
        out = net(torch.randn(1, space.config().get("in_chans", 3), r, r))
    assert out.shape == (1, 5)


@pytest.mark.parametrize("name, text, word", MALFORMED)
def test_malformed_arch_names_the_field(name, text, word):
    with pytest.raises(ArchError, match=word.replace(".", r"\.")):
        get_space(name, **SMALL.get(name, {})).parse(text)


def test_nb201_reads_the_benchmark_strings(external_dir):
    space = get_space("nb201")
    with open(external_dir / "nb201_latency_ms.csv") as fh:
        next(fh)
        strings = [next(fh).split(",")[1] for _ in range(50)]
    assert [str(space.parse(s)) for s in strings] == strings


def test_fbnet_candidates_match_the_published_names(external_dir):
    space = get_space("fbnet")
    with open(external_dir / "fbnet_latency_ms.csv") as fh:
        next(fh)
        row = next(fh).split(",")
    genes = np.array([int(v) for v in row[1].split()] + [0], np.int16)
    assert list(space.from_genome(genes).ops) == row[2].split()
