"""Runtimes and the measurement protocol: real TVM and onnxruntime, no device needed."""
from __future__ import annotations

import numpy as np
import pytest

from hwnas.errors import DeviceError, HwnasError, TargetError
from hwnas.profile.build import BuildTask, build
from hwnas.profile.networks import random_input
from hwnas.runtime.latency import Latency
from hwnas.runtime import (DEFAULT_PROTOCOL, Measurement, Protocol, backend_of, connect,
                           run_protocol, runtime_names)
from hwnas.runtime.protocol import merge_rounds
from hwnas.spaces import get_space
from hwnas.targets import load_target


@pytest.fixture(scope="module")
def host():
    return load_target("x86-host")


@pytest.fixture(scope="module")
def ops():
    return get_space("ofa-mbv3", resolutions=[32]).op_list[:3]


@pytest.mark.tvm
def test_a_shared_thread_pool_leaves_every_worker_free_to_use_every_core(tmp_path, host, ops):
    """x86-host's pool is "shared": no TVM thread is pinned to one core, where other work
    holding that core would stall every parallel region (the main thread runs kernels too)."""
    import os
    from pathlib import Path

    from hwnas._cpus import allowed_cpus

    lib = build(BuildTask("b", host, str(tmp_path), "tvm", keys=(ops[0].key,))).items
    with connect(host) as rt:
        rt.run(lib[0].path, {"input": random_input(lib[0].input_shape)}, lib[0].func)
        assert tuple(sorted(os.sched_getaffinity(0))) == allowed_cpus()
        masks = {ln.split(":", 1)[1].strip()
                 for t in Path(f"/proc/{os.getpid()}/task").iterdir()
                 for ln in (t / "status").read_text().splitlines()
                 if ln.startswith("Cpus_allowed_list")}
    assert len(masks) == 1                       # every thread of the process, the same mask


def test_protocol_defaults_and_validation():
    assert DEFAULT_PROTOCOL.repeats >= 10 and DEFAULT_PROTOCOL.min_repeat_ms == 1.0
    assert DEFAULT_PROTOCOL.cv_threshold == 0.05
    with pytest.raises(HwnasError, match="repeats"):
        Protocol(repeats=5)
    assert Protocol().number_for(0.3) == 4
    assert Protocol().number_for(5.0) == 1
    assert Protocol.from_json(DEFAULT_PROTOCOL.to_json()) == DEFAULT_PROTOCOL


def test_protocol_remeasures_noisy_samples_and_keeps_the_steadiest():
    calls = []
    noisy = iter([[1, 5, 1, 5, 1, 5, 1, 5, 1, 5], [2.0] * 9 + [2.02]])

    def timer(number, repeat):                      # a stub clock: warm-up, estimate, samples
        calls.append((number, repeat))
        if repeat < 10:
            return [0.25] * repeat
        return list(next(noisy))

    m = run_protocol(timer, Protocol(max_remeasure=3))
    assert calls[0] == (Protocol().warmup, 1)
    assert calls[2] == (4, 10)                      # number sized for ≥ 1 ms per sample
    assert m.attempts == 2 and m.latency.median_ms == 2.0 and m.cv < 0.05
    assert m.latency.n == 10


def test_merge_rounds_keeps_the_median_round_and_the_spread_between_rounds():
    rounds = [Measurement(Latency(m, m * 1.02, 0.01, 10), 1, 1) for m in (100.0, 108.0, 96.0)]
    m = merge_rounds(rounds)
    assert m.latency.median_ms == 100.0 and m.latency.n == 30
    assert m.latency.std_ms == pytest.approx(np.std([100, 108, 96], ddof=1))
    assert m.latency.p90_ms >= np.percentile([100, 108, 96], 90)
    assert m.extra()["round_medians"] == [100.0, 108.0, 96.0]
    assert merge_rounds(rounds[:1]) is rounds[0]


@pytest.mark.parametrize("name", runtime_names())
def test_every_runtime_kind_connects_a_runtime_of_its_own_kind(host, name):
    with connect(host, runtime=name) as rt:
        assert rt.family == name == backend_of(runtime=name).name


def test_an_unknown_runtime_name_lists_the_registered_ones(host):
    with pytest.raises(TargetError, match="runtime must be one of.*onnxruntime.*got 'nope'"):
        connect(host, runtime="nope")


def test_unreachable_rpc_server_is_one_line_device_error(host):
    with pytest.raises(DeviceError, match=r"cannot reach RPC server 127\.0\.0\.1:1: connection refused"):
        connect(host, rpc="127.0.0.1:1")


def test_rpc_target_without_address_and_onnxruntime_over_rpc_are_refused(host):
    with pytest.raises(DeviceError, match="RPC server"):
        connect(load_target("rpi4"))
    with pytest.raises(TargetError, match="onnxruntime"):
        connect(host, rpc="127.0.0.1:1", runtime="onnxruntime")
    with pytest.raises(TargetError, match="device key"):
        connect(host, tracker="127.0.0.1:1")


@pytest.mark.tvm
def test_local_tvm_matches_onnxruntime_and_measures(tmp_path, host, ops):
    keys = tuple(op.key for op in ops)
    lib = build(BuildTask("b", host, str(tmp_path), "tvm", keys=keys)).items
    onx = build(BuildTask("o", host, str(tmp_path), "onnxruntime", keys=keys)).items
    with connect(host) as tvm_rt, connect(host, runtime="onnxruntime") as ort_rt:
        for a, b in zip(lib, onx):
            x = {"input": random_input(a.input_shape, 1)}
            ref = ort_rt.run(b.path, x)[0]
            np.testing.assert_allclose(tvm_rt.run(a.path, x, a.func)[0], ref, rtol=1e-4, atol=1e-4)
        m = tvm_rt.sample(lib[1].path, {"input": random_input(lib[1].input_shape)}, func=lib[1].func)
        assert m.latency.n == 10 and m.latency.median_ms > 0 and m.number >= 1
        assert m.latency.p90_ms >= m.latency.median_ms
        lat = ort_rt.measure(onx[0].path, {"input": random_input(onx[0].input_shape)})
        assert lat.n == 10 and lat.median_ms > 0
        assert "logical CPUs" in tvm_rt.describe()
