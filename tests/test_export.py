"""Export end to end: torch → ONNX (checker, onnxruntime parity) → TVM for every kind of target."""
import json
import shutil
import subprocess

import numpy as np
import pytest

from hwnas.errors import ExportError
from hwnas.export import BundleRequest, export_bundle, run_tvm_library
from hwnas.compiler.cuda import find_nvcc
from hwnas.compiler.onnx_export import run_ort
from hwnas.spaces import get_space
from hwnas.targets import load_target

pytestmark = pytest.mark.tvm

ARCH = "r64-k35.37.357.35.73-e36.43.346.66.34"


@pytest.fixture(scope="module")
def space():
    return get_space("ofa-mbv3", resolutions=[64], num_classes=10)


def _export(space, target_name, out, **kw):
    arch = space.parse(ARCH)
    model = space.build(arch).eval()
    return export_bundle(BundleRequest(space, arch, model, load_target(target_name), out, **kw))


def test_host_bundle_parity_and_manifest(space, tmp_path):
    out = tmp_path / "host"
    m = _export(space, "x86-host", out)
    assert sorted(p.name for p in out.iterdir()) == [".hwnas-output.json", "arch.json",
                                                     "manifest.json", "model.onnx", "model.so"]
    assert m["parity"]["onnxruntime_vs_torch_max_abs"] <= 1e-4
    assert m["parity"]["tvm_vs_onnxruntime_max_abs"] <= 1e-4
    assert m["weights"]["trained"] is False
    assert set(m["versions"]) >= {"torch", "onnx", "onnxruntime", "tvm"}
    assert json.loads((out / "manifest.json").read_text()) == m
    arch = space.from_json(json.loads((out / "arch.json").read_text()))
    assert str(arch) == ARCH
    # the shipped library itself agrees with onnxruntime on a fresh input
    x = np.random.default_rng(1).standard_normal((1, 3, 64, 64)).astype(np.float32)
    y_tvm = run_tvm_library(out / "model.so", x)
    assert np.abs(y_tvm - run_ort(out / "model.onnx", x)).max() <= 1e-4


def test_rpi4_bundle_is_aarch64(space, tmp_path):
    out = tmp_path / "rpi4"
    m = _export(space, "rpi4", out)
    lib = out / m["files"]["library"]
    assert lib.exists() and m["parity"]["tvm_vs_onnxruntime_max_abs"] is None
    if lib.suffix == ".so" and shutil.which("file"):
        assert "aarch64" in subprocess.run(["file", str(lib)], capture_output=True,
                                           text=True).stdout
    assert m["latency"]["measured"] is None and "RPC" in m["latency"]["measured_note"]


@pytest.mark.skipif(find_nvcc() is None, reason="nvcc (CUDA toolkit) not installed")
def test_cuda_bundle_has_compiled_device_code(space, tmp_path):
    out = tmp_path / "orin"
    m = _export(space, "jetson-orin", out)
    fat = out / m["files"]["device_code"]
    assert fat.stat().st_size > 1000


def test_failed_export_leaves_nothing(space, tmp_path, monkeypatch):
    from hwnas import compiler

    def boom(*a, **k):
        raise ExportError("compile exploded")

    monkeypatch.setattr(compiler, "compile_onnx", boom)       # the tvm backend compiles with it
    out = tmp_path / "b"
    with pytest.raises(ExportError):
        _export(space, "x86-host", out)
    assert list(tmp_path.iterdir()) == []


def test_unsupported_onnx_op_is_named(tmp_path):
    from onnx import TensorProto, helper

    from hwnas.compiler import onnx_to_relax

    node = helper.make_node("NoSuchOp", ["input"], ["y"], domain="")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(ExportError, match="NoSuchOp"):
        onnx_to_relax(model, {"input": (1, 4)})
