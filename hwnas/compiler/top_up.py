"""Top a device's tuning database up with one network's kernels (what ``hwnas deploy --tune``
does with each round's subnet before compiling it)."""
from __future__ import annotations

import tempfile
from pathlib import Path

__all__ = ["top_up_database"]


def top_up_database(model, input_shape: tuple[int, ...], target, tuning_dir: str | None,
                    trials: int, space=None) -> tuple[Path, object]:
    """Give the kernels of ``model`` (a torch module, a subnet of ``space``) ``trials`` trials
    in the work folder of ``space``'s configuration (those tuned before are reused), publish
    the result into that configuration's part of ``tuning_dir`` (None: the target's own
    database; the folder itself for the default configuration, else its configuration
    folder) and return (``tuning_dir``, the database loaded from it: every part)."""
    from hwnas.compiler.database import (configuration_folder, database_dir, load_database,
                                         publish, read_manifest, target_identity, work_dir)
    from hwnas.compiler.onnx_export import INPUT_NAME, export_onnx
    from hwnas.compiler.space_tuning import seed_work_dir
    from hwnas.compiler.tune import tune_onnx

    top = Path(tuning_dir) if tuning_dir else database_dir(target, for_writing=True)
    sub = None if space is None else configuration_folder(space)
    dest = top if sub is None else top / sub
    work = work_dir(target, space)
    seed_work_dir(work, dest if dest.exists() else None)
    with tempfile.TemporaryDirectory(prefix="hwnas-tune-") as tmp:
        onnx_path = export_onnx(model, input_shape, Path(tmp) / "model.onnx")
        tune_onnx(onnx_path, {INPUT_NAME: input_shape}, target, work, trials)
    old = read_manifest(dest) if dest.exists() else {}
    kept = {k: v for k, v in old.items() if k not in ("workloads", "best_seconds")}
    if sub is not None:
        kept.setdefault("space", space.config())
    publish(work, dest, {**kept, "target": target_identity(target),
                         "module_equality": "structural"})
    return top, load_database(top, target=target)
