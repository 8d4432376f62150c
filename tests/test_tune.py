"""MetaSchedule tuning: database written, reused, and applied by ``compile_onnx``."""
from __future__ import annotations

import json

import numpy as np
import pytest

from hwnas.errors import ExportError
from hwnas.compiler.database import load_database
from hwnas.compiler.tune import default_work_dir, last_run, tune_onnx
from hwnas.targets import load_target

pytestmark = pytest.mark.tvm

KEY = "expanded_conv-input:8x8x16-output:8x8x16-expand:32-kernel:3-stride:1-idskip:1-se:0-hs:0"


@pytest.fixture(scope="module")
def target():
    return load_target("x86-host")


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    """One MBConv block (three fused kernels) exported to ONNX."""
    import torch

    from hwnas.spaces import OpSpec

    torch.manual_seed(0)
    op = OpSpec.from_key(KEY)
    m = op.build().eval()
    path = tmp_path_factory.mktemp("tiny") / "mbconv.onnx"
    torch.onnx.export(m, (torch.randn(*op.input_nchw),), str(path), dynamo=False,
                      opset_version=17, input_names=["input"], output_names=["out"])
    return path, op.input_nchw


def _records(work_dir) -> int:
    with open(work_dir / "database_tuning_record.json") as fh:
        return sum(1 for line in fh if line.strip())


def test_default_work_dir_follows_cache_env(monkeypatch, tmp_path, target):
    monkeypatch.setenv("HWNAS_CACHE", str(tmp_path))
    assert default_work_dir(target) == tmp_path / "tuning" / "x86-host"
    assert default_work_dir(target, tmp_path / "x") == tmp_path / "x" / "tuning" / "x86-host"


def test_load_database_empty_dir_is_none(tmp_path):
    assert load_database(tmp_path) is None


@pytest.mark.slow
def test_tune_reuse_and_parity(tmp_path, target, tiny_onnx):
    import onnxruntime as ort
    import tvm
    from tvm import relax

    from hwnas.compiler import compile_onnx

    path, shape = tiny_onnx
    work_dir = tmp_path / "db"
    tune_onnx(path, {"input": shape}, target, work_dir, trials_per_task=4)
    first = last_run(work_dir)
    assert first.tasks >= 3 and first.tuned == first.tasks
    n_records = _records(work_dir)
    assert n_records >= first.tasks

    db = tune_onnx(path, {"input": shape}, target, work_dir, trials_per_task=4)
    second = last_run(work_dir)
    assert (second.tuned, second.reused, second.trials) == (0, first.tasks, 0)
    assert _records(work_dir) == n_records

    x = np.random.default_rng(0).standard_normal(shape).astype("float32")
    ex = compile_onnx(path, {"input": shape}, target, database=db).executable
    vm = relax.VirtualMachine(ex, tvm.cpu())
    got = vm["main"](tvm.runtime.tensor(x)).numpy()
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"input": x})[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)

    # the database really replaced the kernels: every PrimFunc is marked scheduled
    from hwnas.compiler import onnx_to_relax
    from hwnas.compiler.tune import _prepare

    with target.tvm(), db:
        mod = relax.transform.MetaScheduleApplyDatabase()(
            _prepare(onnx_to_relax(path, {"input": shape}), target.tvm()))
    prims = [f for f in mod.functions.values() if isinstance(f, tvm.tirx.PrimFunc)]
    assert prims and all(f.attrs and f.attrs.get("tirx.is_scheduled") for f in prims)


def test_manifest_for_another_target_is_refused(tmp_path, target, tiny_onnx):
    path, shape = tiny_onnx
    (tmp_path / "tuning.json").write_text(json.dumps(
        {"target": "llvm -mcpu=cortex-a72", "module_equality": "structural", "trials": {}}))
    with pytest.raises(ExportError, match="tuned for target"):
        tune_onnx(path, {"input": shape}, target, tmp_path, trials_per_task=1)
