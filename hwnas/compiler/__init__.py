"""The compiler: torch → ONNX (checked) → TVM Relax → a library for a ``Target``, and the
per-device MetaSchedule tuning databases its tuned pipeline applies.

Nothing here loads torch or TVM until a function needs it.
"""
from hwnas.compiler.frontend import onnx_to_relax, supported_onnx_ops
from hwnas.compiler.library import export_library, library_suffix
from hwnas.compiler.pipelines import PIPELINES, compile_onnx, compile_relax, fuse_for_tuning

__all__ = ["onnx_to_relax", "supported_onnx_ops", "export_library", "library_suffix", "PIPELINES",
           "compile_onnx", "compile_relax", "fuse_for_tuning"]
