"""The contract every registered search space keeps, tested the same way for each (as timm
tests every registered model): a space registered tomorrow gets these tests for free.

Spaces are built in a small configuration (``SMALL``) so that the TVM part stays quick; a space
missing from it is tested with its defaults.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from hwnas.spaces import SPACES, get_space

SMALL = {
    "ofa-mbv3": {"resolutions": [32, 40], "num_classes": 10},
    "proxyless": {"resolutions": [32], "num_classes": 10},
    "fbnet": {"resolutions": [32], "num_classes": 10},
    "nb201": {"channels": 8, "cells": 1, "num_classes": 10},
}
NAMES = SPACES.names()


@pytest.fixture(params=NAMES, scope="module")
def space(request):
    return get_space(request.param, **SMALL.get(request.param, {}))


def _archs(space, n=12):
    rng = np.random.default_rng(0)
    return space.sample_many(rng, n) + [space.smallest(), space.largest()]


def test_strings_json_and_genomes_round_trip(space):
    for arch in _archs(space):
        assert space.parse(str(arch)) == arch
        assert space.from_json(arch.to_json()) == arch
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
    assert space.flops(space.smallest()) <= space.flops(space.largest())


def test_ops_are_covered_by_the_op_list(space):
    keys = {op.key for op in space.all_ops()}
    for arch in _archs(space):
        assert {op.key for op in space.ops(arch)} <= keys


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
    model = space.build(arch).eval()
    with torch.no_grad():
        out = model(torch.randn(space.input_shape(arch)))
    assert tuple(out.shape) == (1, space.num_classes)


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
    lib = export_library(compile_onnx(onnx_path, {INPUT_NAME: shape}, target),
                         tmp_path / "m.so", target)
    assert np.max(np.abs(run_tvm_library(lib, x) - run_ort(onnx_path, x))) <= 1e-4
