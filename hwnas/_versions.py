"""The versions of hwnas and of the libraries whose code a table or bundle describes."""
from __future__ import annotations

import platform

__all__ = ["__version__", "versions"]

__version__ = "0.1.0"


def versions() -> dict[str, str]:
    """hwnas, torch, onnx, onnxruntime, TVM and Python versions (imports each library)."""
    import onnx
    import onnxruntime
    import torch
    import tvm

    return {"hwnas": __version__, "torch": torch.__version__, "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__, "tvm": tvm.__version__,
            "python": platform.python_version()}
