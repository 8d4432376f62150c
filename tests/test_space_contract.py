"""The contract every registered search space keeps, tested the same way for each (as timm
tests every registered model): a space registered tomorrow gets these tests for free.

Spaces are built in a small configuration (``SMALL``) so that the TVM part stays quick; a space
missing from it is tested with its defaults.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from hwnas.errors import ArchError
from hwnas.spaces import SPACES, get_space

#: the configurations the malformed strings are checked against
SMALL_PARSE = {"ofa-mbv3": {"resolutions": [128, 160]}, "proxyless": {"resolutions": [128]}}

SMALL = {
    "ofa-mbv3": {"resolutions": [32, 40], "num_classes": 10},
    "proxyless": {"resolutions": [32], "num_classes": 10},
    "fbnet": {"resolutions": [32], "num_classes": 10},
    "nb201": {"channels": 8, "cells": 1, "num_classes": 10},
}
NAMES = SPACES.names()

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


@pytest.fixture(params=NAMES, scope="module")
def space(request):
    return get_space(request.param, **SMALL.get(request.param, {}))


def _archs(space, n=12):
    rng = np.random.default_rng(0)
    return space.sample_many(rng, n) + [space.smallest(), space.largest()]


def test_registry_holds_the_known_spaces():
    assert {"ofa-mbv3", "nb201", "fbnet", "proxyless"} <= set(NAMES)


def test_strings_json_and_genomes_round_trip(space):
    for arch in _archs(space):
        assert space.parse(str(arch)) == arch
        assert space.from_json(json.loads(json.dumps(arch.to_json()))) == arch
        assert space.from_genome(space.to_genomes([arch])[0]) == arch
        assert hash(arch) == hash(space.parse(str(arch)))


def test_config_rebuilds_the_same_space(space):
    from hwnas.spaces import space_from_config

    again = space_from_config(space.config())
    assert again.config() == space.config()
    assert [op.key for op in again.op_list] == [op.key for op in space.op_list]


def test_encoding_and_population_operators(space):
    rng = np.random.default_rng(1)
    g = space.sample_genomes(rng, 64)
    x = space.encode_genomes(g)
    assert x.shape[0] == 64 and np.all(np.isfinite(x))
    a, b = space.sample(rng), space.sample(rng)
    assert space.encode(a).shape == (x.shape[1],)
    for child in (space.mutate(a, rng), space.crossover(a, b, rng)):
        assert space.parse(str(child)) == child
    for kid in (space.mutate_genomes(rng, g), space.crossover_genomes(rng, g, g[::-1])):
        assert kid.shape == g.shape
        assert np.all((kid >= 0) & (kid < space.choice_sizes()[None, :]))


def test_costs_are_positive_and_add_up(space):
    for arch in _archs(space, 6):
        c = space.costs(arch)
        assert c["macs"] > 0 and c["params"] > 0 and c["peak_act"] > 0 and c["depth"] >= 1
        assert all(math.isfinite(v) for v in c.values())
        assert c["depth"] == len(space.ops(arch))
        assert c["macs"] == pytest.approx(space.flops(arch))
        io = sum(math.prod(op.input) + math.prod(op.output) for op in space.ops(arch))
        assert c["traffic"] == pytest.approx(io)
    assert space.flops(space.smallest()) <= space.flops(space.largest())


def test_op_indices_are_the_arch_operators(space):
    archs = _archs(space)
    for arch, row in zip(archs, space.op_indices(space.to_genomes(archs))):
        keys = sorted(space.op_list[i].key for i in row if i != space.null_op)
        assert keys == sorted(op.key for op in space.ops(arch))
    assert {op.key for a in archs for op in space.ops(a)} <= {op.key for op in space.all_ops()}


def test_table_lookup_sums_the_arch_operators(space):
    from hwnas.predict import TablePredictor
    from hwnas.profile.table import LatencyTable
    from hwnas.runtime.latency import Latency

    table = LatencyTable({"target": "toy", "space": space.name})
    for i, op in enumerate(space.op_list):
        table.add(op.key, Latency(0.01 * (i + 1), 0.011 * (i + 1), 0.001, 10))
    pred = TablePredictor(space, table)
    for arch in _archs(space, 5):
        want = sum(table[op.key].median_ms for op in space.ops(arch))
        assert pred.predict([arch])[0] == pytest.approx(want)


def test_build_and_forward(space):
    import torch

    arch = space.sample(np.random.default_rng(2))
    with torch.no_grad():
        out = space.build(arch).eval()(torch.randn(space.input_shape(arch)))
        other = space.build(arch, num_classes=5).eval()(torch.randn(space.input_shape(arch)))
    assert tuple(out.shape) == (1, space.num_classes) and tuple(other.shape) == (1, 5)


@pytest.mark.parametrize("name, text, word", MALFORMED)
def test_malformed_arch_names_the_field(name, text, word):
    with pytest.raises(ArchError, match=word.replace(".", r"\.")):
        get_space(name, **SMALL_PARSE.get(name, {})).parse(text)


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


@pytest.mark.tvm
def test_onnx_onnxruntime_and_tvm_agree(space, tmp_path):
    """torch → ONNX (checked) → onnxruntime parity → TVM for x86-host, the export path."""
    from hwnas.compiler import compile_onnx, export_library
    from hwnas.compiler.onnx_export import INPUT_NAME, check_ort_parity, export_onnx, run_ort
    from hwnas.export.bundle import run_tvm_library
    from hwnas.targets import load_target

    arch = space.smallest()
    model = space.build(arch).eval()
    shape = space.input_shape(arch)
    x = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
    onnx_path = export_onnx(model, shape, tmp_path / "m.onnx")
    assert check_ort_parity(model, onnx_path, x) <= 1e-4
    target = load_target("x86-host")
    lib = export_library(compile_onnx(onnx_path, {INPUT_NAME: shape}, target).executable,
                         tmp_path / "m.so", target)
    assert np.max(np.abs(run_tvm_library(lib, x) - run_ort(onnx_path, x))) <= 1e-4
