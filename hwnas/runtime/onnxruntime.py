"""``onnxruntime``: ONNX files, timed by onnxruntime on this machine's CPU (an alternative
runtime, with no compiler)."""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from hwnas.errors import DeviceError
from hwnas.runtime._base import Runtime, host_description
from hwnas.runtime.backend import RUNTIMES, Artefact, Backend
from hwnas.targets import Target

__all__ = ["OnnxRuntime", "OnnxBackend"]


class OnnxRuntime(Runtime):
    name = "onnxruntime"
    family = "onnxruntime"

    def __init__(self, target) -> None:
        super().__init__(target)
        self._loaded: tuple[str, object] | None = None

    def _session(self, path):
        import onnxruntime as ort

        key = os.fspath(path)
        if self._loaded is None or self._loaded[0] != key:
            so = ort.SessionOptions()
            so.intra_op_num_threads = int(self.target.threads)
            so.inter_op_num_threads = 1
            try:
                sess = ort.InferenceSession(key, so, providers=["CPUExecutionProvider"])
            except Exception as exc:  # noqa: BLE001
                msg = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise DeviceError(f"onnxruntime cannot load {key}: {msg}") from None
            self._loaded = (key, sess)
        return self._loaded[1]

    def timer(self, artefact, inputs: dict[str, np.ndarray], func: str = "main"):
        sess = self._session(artefact)
        feeds = {k: np.ascontiguousarray(v) for k, v in inputs.items()}

        def timer(number: int, repeat: int) -> list[float]:
            out = []
            for _ in range(repeat):
                t0 = time.perf_counter_ns()
                for _ in range(number):
                    sess.run(None, feeds)
                out.append((time.perf_counter_ns() - t0) / 1e6 / number)
            return out

        return timer

    def run(self, artefact, inputs: dict[str, np.ndarray], func: str = "main") -> list[np.ndarray]:
        return list(self._session(artefact).run(None, dict(inputs)))

    def contention(self):
        from hwnas.runtime.contention import CpuContention

        return CpuContention() if CpuContention.available() else None

    def describe(self) -> str:
        import onnxruntime as ort

        return f"{host_description()}; onnxruntime {ort.__version__} CPU, {self.target.threads} threads"

    def close(self) -> None:
        self._loaded = None


@RUNTIMES.register("onnxruntime")
class OnnxBackend(Backend):
    """The artefact is the ONNX file itself: one per operator, one per network."""

    name = "onnxruntime"
    local_only = True

    def build_ops(self, space, ops: list, target: Target, out_dir: Path, name: str,
                  database=None) -> list[Artefact]:
        from hwnas.compiler.onnx_export import op_to_onnx

        return [Artefact(op_to_onnx(op, out_dir / f"{name}-{i}.onnx")) for i, op in enumerate(ops)]

    def build_network(self, space, arch, target: Target, stem: Path, database=None,
                      onnx: Path | None = None) -> Artefact:
        from hwnas.compiler.onnx_export import network_to_onnx

        return Artefact(onnx or network_to_onnx(space, arch, Path(f"{stem}.onnx")))

    def connect(self, target: Target, device: str) -> Runtime:
        return OnnxRuntime(target)
