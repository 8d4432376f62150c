"""Predictors on disk: one JSON object (never a pickle) with what the model needs and where
it came from."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hwnas._io import atomic_write_json, read_json
from hwnas.errors import TableError

__all__ = ["PREDICTOR_FORMAT", "save_predictor", "load_predictor_json", "array"]

PREDICTOR_FORMAT = "hwnas-predictor/1"


def _plain(obj):
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def save_predictor(path: str | Path, kind: str, space_config: dict, model: dict,
                   provenance: dict) -> Path:
    return atomic_write_json(path, {"format": PREDICTOR_FORMAT, "kind": kind,
                                    "space": space_config, "provenance": _plain(provenance),
                                    "model": _plain(model)})


def same_configuration(a: dict, b: dict) -> bool:
    """Whether two space configurations are the same but for their resolutions (a predictor
    fitted at some resolutions of a configuration serves all of them)."""
    return ({k: v for k, v in a.items() if k != "resolutions"}
            == {k: v for k, v in b.items() if k != "resolutions"})


def load_predictor_json(path: str | Path, kind: str, space_config: dict | None = None) -> dict:
    """The stored object, checked to be a ``kind`` predictor for ``space_config``."""
    data = read_json(path, "latency predictor", TableError)
    if not isinstance(data, dict) or data.get("format") != PREDICTOR_FORMAT:
        raise TableError(f"{path} is not an hwnas predictor (format must be '{PREDICTOR_FORMAT}')")
    if data.get("kind") != kind:
        raise TableError(f"{path} holds a '{data.get('kind')}' predictor, not '{kind}'")
    if space_config is not None:
        if not isinstance(data.get("space"), dict) or not same_configuration(data["space"],
                                                                             space_config):
            raise TableError(f"{path} was fitted for space {data.get('space')}, not {space_config}")
    if not isinstance(data.get("model"), dict):
        raise TableError(f"corrupt latency predictor {path}: 'model' must be an object")
    return data


def array(model: dict, key: str, path: str | Path = "predictor") -> np.ndarray:
    try:
        out = np.asarray(model[key], dtype=np.float64)
    except (KeyError, TypeError, ValueError):
        raise TableError(f"corrupt latency predictor {path}: bad or missing '{key}'") from None
    if not np.all(np.isfinite(out)):
        raise TableError(f"corrupt latency predictor {path}: non-finite values in '{key}'")
    return out
