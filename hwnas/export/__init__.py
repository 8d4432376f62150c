"""Export: subnet → ONNX (checked) → TVM library for a target → bundle directory."""
from hwnas.export.bundle import BundleRequest, export_bundle, run_tvm_library, versions
from hwnas.export.compile import PIPELINES, compile_onnx, export_library, library_suffix
from hwnas.export.onnx_export import check_ort_parity, export_onnx, run_ort

__all__ = ["BundleRequest", "export_bundle", "run_tvm_library", "versions", "PIPELINES",
           "compile_onnx", "export_library", "library_suffix", "check_ort_parity", "export_onnx",
           "run_ort"]
