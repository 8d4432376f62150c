"""Export one architecture into a self-contained bundle directory.

``model.onnx`` (checked, onnxruntime parity with torch), the artefact the target's runtime
runs (its backend builds it: a TVM library, checked against onnxruntime), and ``arch.json`` /
``manifest.json``. The bundle is assembled in a staging directory and moved into
place at the end, so a failure never leaves a half-written bundle behind.
"""
from __future__ import annotations

import datetime as _dt
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hwnas._io import atomic_write_json
from hwnas._outputs import check_output_dir, claim_output, replace_dir, stage_dir
from hwnas._versions import versions
from hwnas.errors import ExportError
from hwnas.compiler.onnx_export import (INPUT_NAME, check_ort_parity, export_onnx, max_abs_diff,
                                      run_ort)
from hwnas.runtime import Artefact, Backend, backend_of
from hwnas.runtime.tvm_local import run_tvm_library
from hwnas.targets import Target

__all__ = ["BundleRequest", "export_bundle", "run_tvm_library"]

log = logging.getLogger("hwnas.export")
BUNDLE_FORMAT = "hwnas-bundle/1"


@dataclass
class BundleRequest:
    """What to export: the model (already holding its weights), where, and for which target."""

    space: Any
    arch: Any
    model: Any                      # torch.nn.Module in eval mode
    target: Target
    out_dir: Path
    weights: dict = field(default_factory=lambda: {"source": "random weights (untrained)",
                                                   "trained": False, "accuracy": None})
    database: Any = None            # MetaSchedule database (tuned kernels) or None
    database_info: dict = field(default_factory=dict)   # where it came from, for the manifest
    runtime: Any = None             # hwnas.runtime.Runtime to measure on; None skips measuring
    check_on: Any = None            # a Runtime that only runs a cross target's library once,
                                    # for parity (the caller times it); default ``runtime``
    extra: dict = field(default_factory=dict)
    force: bool = False             # write into a folder that holds other files (kept)


def export_bundle(req: BundleRequest) -> dict:
    """Write the bundle and return its manifest. ``out_dir`` must be new, empty or an earlier
    bundle (see ``hwnas._outputs``; ``req.force``: files that hwnas did not write are kept
    beside it), checked before anything is built."""
    out_dir = check_output_dir(req.out_dir, "bundle", req.force)
    with claim_output(out_dir):
        stage = stage_dir(out_dir)
        try:
            manifest = _build(req, stage)
            atomic_write_json(stage / "manifest.json", manifest)
            replace_dir(stage, out_dir, "bundle", req.force)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
    return manifest


def _build(req: BundleRequest, stage: Path) -> dict:
    space, arch, target = req.space, req.arch, req.target
    shape = space.input_shape(arch)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)

    onnx_path = export_onnx(req.model, shape, stage / "model.onnx")
    ort_diff = check_ort_parity(req.model, onnx_path, x)
    log.info("onnx: checker ok, |torch - onnxruntime| = %.2e", ort_diff)

    backend = backend_of(target)
    built = backend.build_network(space, arch, target, stage / "model", req.database,
                                  onnx=onnx_path)
    files = {"onnx": "model.onnx", "library": built.path.name, "arch": "arch.json", **built.files}
    if not built.compiled:                  # the ONNX model itself, or the debug device's costs
        return _finish(req, stage, shape, x, ort_diff, None, files, built.path,
                       {"kernels": 0, "tuned": 0, "untuned": [], "note": f"{backend.name} device"})
    t = built.tuning
    log.info("%s: compiled for %s -> %s; %s/%s kernels tuned", backend.name, target.name,
             built.path.name, t["tuned"], t["kernels"])
    for role, name in built.files.items():
        log.info("%s: %s -> %s", backend.name, role, name)
    tvm_diff, where = _parity(req, backend, onnx_path, built, x)
    return _finish(req, stage, shape, x, ort_diff, tvm_diff, files, built.path,
                   {**t, **req.database_info}, where)


def _parity(req: BundleRequest, backend: Backend, onnx_path: Path, built: Artefact,
            x: np.ndarray) -> tuple[float | None, str | None]:
    """|compiled − onnxruntime| on the same input, and where the library ran: here, or on the
    device of a cross target when a runtime for it is given (else not checked)."""
    target = req.target
    device = req.runtime if req.runtime is not None else req.check_on
    if not target.is_cross:
        out, where = backend.run_here(target, built.path, {INPUT_NAME: x})[0], "this machine"
    elif device is not None:
        out, where = device.run(built.path, {INPUT_NAME: x})[0], device.address
    else:
        return None, None
    diff = max_abs_diff(run_ort(onnx_path, x), out)
    if not diff <= 1e-4:
        raise ExportError(f"TVM output on {where} differs from onnxruntime by {diff:.3g} (> 1e-4)")
    log.info("tvm on %s: |tvm - onnxruntime| = %.2e", where, diff)
    return diff, where


def _finish(req: BundleRequest, stage: Path, shape, x, ort_diff, tvm_diff, files: dict,
            lib: Path, tuning: dict, tvm_ran_on: str | None = None) -> dict:
    """Measure the library (when a runtime is given), write arch.json, return the manifest."""
    space, arch, target = req.space, req.arch, req.target
    measured = None
    if req.runtime is not None:
        lat = req.runtime.measure(lib, {INPUT_NAME: x})
        emulator = getattr(req.runtime, "emulator", None)
        measured = {**lat.to_json(), "runtime": type(req.runtime).__name__,
                    "device": req.runtime.describe(), "protocol": "time_evaluator",
                    "emulated": emulator is not None, "emulator": emulator}
        log.info("measured on %s: median %.3f ms (p90 %.3f, std %.3f, n=%d)", target.name,
                 lat.median_ms, lat.p90_ms, lat.std_ms, lat.n)

    arch_json = {**arch.to_json(), "space_config": space.config(),
                 **({"accuracy": req.extra["accuracy"]} if "accuracy" in req.extra else {})}
    atomic_write_json(stage / "arch.json", arch_json)
    return {
        "format": BUNDLE_FORMAT,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "arch": str(arch),
        "space": space.config(),
        "target": target.to_json(),
        "tvm_device": target.tvm_device_type,       # what run.py runs the library on
        "versions": versions(),
        "input": {"name": INPUT_NAME, "shape": list(shape), "dtype": "float32"},
        "files": files,
        "weights": req.weights,
        "tuning": tuning,
        "parity": {"onnxruntime_vs_torch_max_abs": ort_diff, "tvm_vs_onnxruntime_max_abs": tvm_diff,
                   "tvm_ran_on": tvm_ran_on},
        "latency": {"measured": measured,
                    "measured_note": None if measured else
                    ("cross target: not measured here (measure it on the device over TVM RPC)"
                     if target.is_cross else "not measured (no runtime was given)")},
        "cost": space.costs(arch),
        **req.extra,
    }
