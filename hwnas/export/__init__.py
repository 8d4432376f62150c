"""Export: subnet → ONNX (checked) → TVM library for a target → bundle directory."""
from hwnas.export.bundle import BundleRequest, export_bundle, run_tvm_library
from hwnas.export.weights import sample_input, subnet_with_weights

__all__ = ["BundleRequest", "export_bundle", "run_tvm_library", "sample_input",
           "subnet_with_weights"]
