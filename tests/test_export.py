"""Export end to end: torch → ONNX (checker, onnxruntime parity) → TVM for every kind of target."""
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from hwnas.errors import DeviceError, ExportError
from hwnas.export import BundleRequest, export_bundle, run_tvm_library
from hwnas.compiler.onnx_export import run_ort
from hwnas.deploy.run_script import write_run_scripts
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
    assert m["weights"]["trained"] is False and m["tvm_device"] == "cpu"
    assert set(m["versions"]) >= {"torch", "onnx", "onnxruntime", "tvm"}
    assert json.loads((out / "manifest.json").read_text()) == m
    arch = space.from_json(json.loads((out / "arch.json").read_text()))
    assert str(arch) == ARCH
    # the shipped library itself agrees with onnxruntime on a fresh input
    x = np.random.default_rng(1).standard_normal((1, 3, 64, 64)).astype(np.float32)
    y_tvm = run_tvm_library(out / "model.so", x, m["tvm_device"])
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


def test_server_gpu_bundle_names_its_device_and_run_py_uses_it(space, tmp_path):
    """A CUDA bundle compiled here, without a GPU: an x86-64 library holding the CUDA kernels,
    nothing beside it, and a manifest naming the device, which ``run.py`` (written as a deploy
    writes it) and the library runner take: here they refuse in one line rather than run the
    model on the CPU."""
    out = tmp_path / "gpu"
    m = _export(space, "server-gpu", out)
    assert sorted(p.name for p in out.iterdir()) == [".hwnas-output.json", "arch.json",
                                                     "manifest.json", "model.onnx", "model.so"]
    assert m["tvm_device"] == "cuda" and set(m["files"]) == {"onnx", "library", "arch"}
    assert m["target"]["tvm"]["kind"] == "cuda" and m["target"]["tvm"]["arch"] == "sm_90"
    assert m["target"]["host"]["mtriple"] == "x86_64-linux-gnu"
    assert m["parity"]["tvm_vs_onnxruntime_max_abs"] is None
    assert m["latency"]["measured"] is None and "RPC" in m["latency"]["measured_note"]
    lib = out / m["files"]["library"]
    assert b"__global__" in lib.read_bytes()                    # the CUDA kernels ride along
    if shutil.which("file"):
        assert "x86-64" in subprocess.run(["file", str(lib)], capture_output=True,
                                          text=True).stdout
    import tvm

    if tvm.cuda(0).exist:
        pytest.skip("this machine has a CUDA device that TVM's runtime can use")
    write_run_scripts(out)
    x = np.random.default_rng(0).standard_normal(m["input"]["shape"]).astype(np.float32)
    np.save(out / "sample_input.npy", x)
    r = subprocess.run([sys.executable, "run.py"], cwd=out, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode != 0 and r.stdout == ""
    assert r.stderr.strip().splitlines() == [
        "this bundle runs on a cuda device (manifest.json: tvm_device), and this machine has "
        "none that TVM's runtime can use"]
    with pytest.raises(DeviceError, match="runs on a cuda device"):
        run_tvm_library(lib, x, m["tvm_device"])


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
