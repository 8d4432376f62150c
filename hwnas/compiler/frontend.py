"""ONNX → Relax: TVM's ONNX frontend with the weights bound as constants."""
from __future__ import annotations

import os

from hwnas.errors import ExportError

__all__ = ["onnx_to_relax", "supported_onnx_ops"]


def onnx_to_relax(model, input_shapes: dict[str, tuple[int, ...]]):
    """Import an ONNX model (path or ``ModelProto``) with its weights bound as constants."""
    import onnx
    from tvm import relax
    from tvm.relax.frontend.onnx import from_onnx

    if isinstance(model, (str, os.PathLike)):
        model = onnx.load(str(model))
    try:
        mod = from_onnx(model, shape_dict={k: list(v) for k, v in input_shapes.items()},
                        keep_params_in_input=False)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        unsupported = sorted({n.op_type for n in model.graph.node} - supported_onnx_ops())
        if unsupported:
            raise ExportError(f"ONNX ops not supported by TVM's Relax frontend: "
                              f"{', '.join(unsupported)}") from None
        raise ExportError(f"TVM could not import the ONNX model: {first}") from None
    return relax.transform.DecomposeOpsForInference()(mod)


def supported_onnx_ops() -> set[str]:
    from tvm.relax.frontend.onnx import onnx_frontend

    return set(onnx_frontend._get_convert_map().keys())
