"""Ahead-of-time compilation of the CUDA device code that TVM generates.

The pip build of TVM has no CUDA runtime, so its CUDA modules carry kernel *source* (compiled by
NVRTC when the library is loaded on a device). To check the device code here and to ship it
compiled, we hand that source to ``nvcc`` for the target's ``arch`` and keep the fatbin.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from hwnas.errors import ExportError
from hwnas.targets import Target

__all__ = ["cuda_sources", "compile_cuda_fatbin", "find_nvcc"]


def find_nvcc() -> str | None:
    cand = os.environ.get("NVCC") or shutil.which("nvcc")
    if cand:
        return cand
    for root in sorted(Path("/usr/local").glob("cuda*/bin/nvcc"), reverse=True):
        return str(root)
    return None


def cuda_sources(executable) -> list[str]:
    """CUDA C sources of every cuda module in the executable's import tree."""
    out, stack = [], [executable.mod]
    while stack:
        m = stack.pop()
        if m.kind == "cuda":
            out.append(m.inspect_source("cuda"))
        stack.extend(m.imports)
    return out


def compile_cuda_fatbin(executable, target: Target, out_path: str | os.PathLike,
                        timeout_s: int = 900) -> Path:
    """Compile the device code with nvcc for ``target``'s ``arch`` into ``out_path`` (.fatbin)."""
    arch = target.tvm_target.get("arch")
    if not arch:
        raise ExportError(f"target '{target.name}' has no 'tvm.arch' (e.g. sm_87) for nvcc")
    nvcc = find_nvcc()
    if nvcc is None:
        raise ExportError("compiling CUDA device code needs nvcc (CUDA toolkit); none found "
                          "on PATH, in $NVCC or /usr/local/cuda*/bin")
    sources = cuda_sources(executable)
    if not sources:
        raise ExportError(f"no CUDA kernels were generated for target '{target.name}'")
    out_path = Path(out_path)
    with tempfile.TemporaryDirectory(prefix="hwnas-cuda-") as tmp:
        cu = Path(tmp) / "kernels.cu"
        cu.write_text("\n".join(sources))
        fat = Path(tmp) / "kernels.fatbin"
        cmd = [nvcc, "--fatbin", f"-arch={arch}", "-O3", "-w", "-o", str(fat), str(cu)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise ExportError(f"nvcc did not finish within {timeout_s} s") from None
        if proc.returncode != 0:
            err = next((ln for ln in proc.stderr.splitlines() if "error" in ln),
                       proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "")
            raise ExportError(f"nvcc failed for {arch}: {err}")
        shutil.move(str(fat), out_path)
    return out_path
