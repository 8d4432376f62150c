"""Top a device's tuning database up with one network's kernels (what ``hwnas deploy --tune``
does with each round's subnet before compiling it)."""
from __future__ import annotations

import tempfile
from pathlib import Path

__all__ = ["top_up_database"]


def top_up_database(model, input_shape: tuple[int, ...], target, tuning_dir: str | None,
                    trials: int) -> tuple[Path, object]:
    """Give the kernels of ``model`` (a torch module) ``trials`` trials in the target's work
    folder (those tuned before are reused), publish the result to ``tuning_dir`` (None: the
    target's own database) and return (that folder, the database loaded from it)."""
    from hwnas.compiler.database import (database_dir, load_database, publish, read_manifest,
                                         target_identity, work_dir)
    from hwnas.compiler.onnx_export import INPUT_NAME, export_onnx
    from hwnas.compiler.space_tuning import seed_work_dir
    from hwnas.compiler.tune import tune_onnx

    dest = Path(tuning_dir) if tuning_dir else database_dir(target, for_writing=True)
    work = work_dir(target)
    seed_work_dir(work, dest if dest.exists() else None)
    with tempfile.TemporaryDirectory(prefix="hwnas-tune-") as tmp:
        onnx_path = export_onnx(model, input_shape, Path(tmp) / "model.onnx")
        tune_onnx(onnx_path, {INPUT_NAME: input_shape}, target, work, trials)
    old = read_manifest(dest) if dest.exists() else {}
    kept = {k: v for k, v in old.items() if k not in ("workloads", "best_seconds")}
    publish(work, dest, {**kept, "target": target_identity(target),
                         "module_equality": "structural"})
    return dest, load_database(dest, target=target)
