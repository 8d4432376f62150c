"""The latency of one architecture on a target, as its latency predictor sees it."""
from __future__ import annotations

from typing import Any

from hwnas.api._arguments import _arch_of, _check_target_name
from hwnas.api.lookup import load_predictor


def predict(target: str, arch: str | dict, space: Any = None, *, predictor: str = "auto",
            quantile: float = 0.9, refit: bool = False, allow_emulated: bool = False) -> dict:
    """The predicted latency of ``arch`` (its string, or an ``arch.json`` dict) on ``target``,
    with its ``quantile`` upper bound (in [0.5, 1)) and, where the predictor has one, its
    spread (``std_log``, one sigma of the log latency).

    ``space`` is a name or a ``SearchSpace`` (None: the default space); ``predictor`` is
    ``auto`` or a registered kind (``list_predictors()``); ``selection`` in the result says
    which one ``auto`` chose and why. ``refit`` (or asking for ``calibrated`` when none is
    fitted yet) fits the calibrated predictor from the table's measured networks first.
    Tables measured on an emulated device are refused unless ``allow_emulated``.
    """
    import math

    from hwnas.errors import TableError
    from hwnas.spaces import DEFAULT_SPACE

    if isinstance(quantile, bool) or not isinstance(quantile, (int, float)) \
            or not 0.5 <= quantile < 1:
        raise TableError(f"quantile must be in [0.5, 1), got {quantile!r}")
    arch_json, text = _arch_of(arch)
    _check_target_name(target)
    pred = _load(target, DEFAULT_SPACE if space is None else space, predictor, refit,
                 allow_emulated)
    sp = pred.space
    parsed = sp.from_json(arch_json) if arch_json else sp.parse(text)
    g = sp.to_genomes([parsed])
    mean = float(pred.predict_genomes(g)[0])
    upper = float(pred.predict_upper_genomes(g, quantile)[0])
    sd = getattr(pred, "predict_std_log", None)
    return {"arch": str(parsed), "target": target if isinstance(target, str) else str(target),
            "latency_ms": mean, "upper_ms": upper, "quantile": quantile,
            "std_log": None if sd is None else float(sd(g)[0]),
            "predictor": pred.name, "selection": pred.selection,
            "finite": math.isfinite(mean)}


def _load(target: str, space, kind: str, refit: bool, allow_emulated: bool = False):
    from hwnas.predict import calibrate_table
    from hwnas.profile.table import table_path

    if refit or kind == "calibrated":
        from hwnas.predict import calibrated_file, table_space
        from hwnas.profile.table import LatencyTable

        path = table_path(target, space)
        if path.exists():
            index, _ = table_space(LatencyTable.load(path), space)
            if refit or not calibrated_file(path, index).exists():
                calibrate_table(path, None if isinstance(space, str) else space)
    return load_predictor(target, space, kind, allow_emulated=allow_emulated)
