"""onnxruntime on this machine's CPU: an alternative runtime that times ONNX files."""
from __future__ import annotations

import os
import time

import numpy as np

from hwnas.errors import DeviceError
from hwnas.runtime._base import RUNTIMES, Runtime, host_description

__all__ = ["OnnxRuntime"]


@RUNTIMES.register("onnxruntime")
class OnnxRuntime(Runtime):
    name = "onnxruntime"
    family = "onnxruntime"
    artifact = "onnx"

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
