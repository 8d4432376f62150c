"""torch → ONNX, checked with ``onnx.checker`` and against onnxruntime."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from hwnas.errors import ExportError

__all__ = ["INPUT_NAME", "OUTPUT_NAME", "export_onnx", "ort_session", "run_ort",
           "check_ort_parity", "max_abs_diff", "op_to_onnx", "network_to_onnx"]

INPUT_NAME, OUTPUT_NAME = "input", "logits"
OPSET = 17


def export_onnx(model, input_shape: tuple[int, ...], path: str | os.PathLike) -> Path:
    """Trace ``model`` (eval mode) at a fixed batch-1 shape and write a checked ONNX file."""
    import onnx
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    model = model.eval()
    x = torch.zeros(input_shape)
    try:
        with torch.no_grad():
            torch.onnx.export(model, (x,), str(tmp), dynamo=False, opset_version=OPSET,
                              input_names=[INPUT_NAME], output_names=[OUTPUT_NAME])
        onnx.checker.check_model(str(tmp), full_check=True)
        os.replace(tmp, path)
    except onnx.checker.ValidationError as exc:
        tmp.unlink(missing_ok=True)
        raise ExportError(f"onnx.checker rejected the exported model: {str(exc).splitlines()[0]}") from None
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, ExportError):
            raise
        raise ExportError(f"ONNX export failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    return path


def ort_session(onnx_path: str | os.PathLike, threads: int = 2):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ExportError(f"onnxruntime cannot load {onnx_path}: {str(exc).splitlines()[0]}") from None


def run_ort(onnx_path_or_session, x: np.ndarray, threads: int = 2) -> np.ndarray:
    sess = (onnx_path_or_session if hasattr(onnx_path_or_session, "run")
            else ort_session(onnx_path_or_session, threads))
    return sess.run(None, {INPUT_NAME: np.ascontiguousarray(x, dtype=np.float32)})[0]


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        raise ExportError(f"output shapes differ: {a.shape} vs {b.shape}")
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))


def check_ort_parity(model, onnx_path: str | os.PathLike, x: np.ndarray, tol: float = 1e-4) -> float:
    """Max |torch − onnxruntime| on ``x``; raises when it exceeds ``tol``."""
    import torch

    with torch.no_grad():
        ref = model.eval()(torch.from_numpy(x)).numpy()
    diff = max_abs_diff(ref, run_ort(onnx_path, x))
    if not diff <= tol:
        raise ExportError(f"onnxruntime output differs from torch by {diff:.3g} (> {tol:g})")
    return diff


def _seeded(make):
    """Build with torch's default initialisation under a fixed seed: weights keep activations
    at a normal scale (tiny weights would decay them into slow denormals)."""
    import torch

    torch.manual_seed(0)
    return make().eval()


def op_to_onnx(op, path: str | os.PathLike) -> Path:
    """One operator (an ``OpSpec``) as a checked ONNX file, with seeded weights."""
    return export_onnx(_seeded(op.build), op.input_nchw, path)


def network_to_onnx(space, arch, path: str | os.PathLike) -> Path:
    """A whole subnet as a checked ONNX file, with seeded weights."""
    shape = space.input_shape(arch)
    return export_onnx(_seeded(lambda: space.build(arch)), shape, path)
