"""``tvm``: libraries compiled with TVM (tuned where the target has a database), run on this
machine or on a device reached over TVM RPC (a server or a tracker).

Operators of one batch become one Relax module with one function per operator (``op0``,
``op1``, ...): one compile call and one library instead of many, and each function is exactly
the operator's own compiled code, timed on its own.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hwnas.errors import DeviceError, ExportError
from hwnas.runtime._base import Runtime
from hwnas.runtime.backend import RUNTIMES, Artefact, Backend
from hwnas.targets import Target

__all__ = ["TVMBackend"]


def _merge(mods: list) -> object:
    """One IRModule holding each module's ``main`` as ``op<i>``."""
    import tvm

    merged = tvm.IRModule()
    for i, mod in enumerate(mods):
        if len(mod.functions) != 1:
            raise ExportError("an operator's Relax module must hold only 'main' before lowering")
        (gv, fn), = mod.functions.items()
        merged[f"op{i}"] = fn.with_attr("global_symbol", f"op{i}")
    return merged


@RUNTIMES.register("tvm")
class TVMBackend(Backend):
    name = "tvm"
    tuned = True

    def build_ops(self, space, ops: list, target: Target, out_dir: Path, name: str,
                  database=None) -> list[Artefact]:
        from hwnas.compiler import compile_relax, export_library, library_suffix, onnx_to_relax
        from hwnas.compiler.onnx_export import INPUT_NAME, op_to_onnx

        files = [op_to_onnx(op, out_dir / f"{name}-{i}.onnx") for i, op in enumerate(ops)]
        mods = [onnx_to_relax(f, {INPUT_NAME: op.input_nchw}) for op, f in zip(ops, files)]
        for f in files:
            f.unlink()
        compiled = compile_relax(_merge(mods), target, database)
        lib = export_library(compiled.executable, out_dir / f"{name}{library_suffix(target)}",
                             target)
        return [Artefact(lib, f"op{i}", compiled.tuning_json()) for i in range(len(ops))]

    def build_network(self, space, arch, target: Target, stem: Path, database=None,
                      onnx: Path | None = None) -> Artefact:
        from hwnas.compiler import compile_onnx, export_library, library_suffix
        from hwnas.compiler.onnx_export import INPUT_NAME, network_to_onnx

        path = onnx or network_to_onnx(space, arch, Path(f"{stem}.onnx"))
        compiled = compile_onnx(path, {INPUT_NAME: space.input_shape(arch)}, target, database)
        if onnx is None:
            path.unlink()
        lib = export_library(compiled.executable, Path(f"{stem}{library_suffix(target)}"), target)
        return Artefact(lib, "main", compiled.tuning_json())

    def connect(self, target: Target, device: str) -> Runtime:
        if device == "local":
            if target.is_cross:
                raise DeviceError(f"target '{target.name}' cannot run on this machine; give "
                                  "an RPC server (HOST:PORT) or a tracker and device key")
            from hwnas.runtime.tvm_local import TVMLocalRuntime

            return TVMLocalRuntime(target)
        if device == "rpc":
            raise DeviceError(f"target '{target.name}' is reached over RPC; give an RPC server "
                              "(HOST:PORT) or a tracker and device key")
        from hwnas.runtime.tvm_rpc import TVMRPCRuntime

        return TVMRPCRuntime(target, device=device)

    def run_here(self, target: Target, path: Path,
                 inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        """On the target's device here, with TVM's thread pool as it is (no device pinning)."""
        from hwnas.runtime.tvm_local import run_tvm_library

        (x,) = inputs.values()
        return [run_tvm_library(path, x, target.tvm_device_type)]
