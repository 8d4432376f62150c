"""Whole networks: measure random subnets end to end and score the table sum against them."""
from __future__ import annotations

import functools
import json
import tempfile

import numpy as np

from hwnas.profile.build import INPUT, BuildTask, build
from hwnas.profile.table import LatencyTable
from hwnas.runtime.latency import Latency
from hwnas.runtime.protocol import DEFAULT_PROTOCOL, Measurement, Protocol
from hwnas.spaces import space_from_config

__all__ = ["measure_network", "network_timer", "sample_archs", "network_record", "same_network", "same_space",
           "table_sum_ms", "validation", "random_input", "calibration_networks"]


def random_input(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def sample_archs(space, n: int, seed: int = 0, extremes: bool = False) -> list:
    """``n`` distinct random subnets, the same list for the same seed (so resumes continue it).

    With ``extremes`` the list opens with the space's largest and smallest subnets: a
    calibration set drawn at random alone stops short of the ends of the latency range (the
    largest subnet costs far more than any of 40 random ones), and a fit is then extrapolated
    exactly where budgets are tightest or loosest. A hold-out set stays random: it is the
    distribution a search draws from."""
    rng = np.random.default_rng(seed)
    seen: dict[str, object] = {}
    if extremes:
        for arch in (space.largest(), space.smallest())[:max(n, 0)]:
            seen.setdefault(str(arch), arch)
    for _ in range(100 * max(n, 1)):
        if len(seen) >= n:
            break
        arch = space.sample(rng)
        seen.setdefault(str(arch), arch)
    return list(seen.values())


def measure_network(space, arch, target, runtime, protocol: Protocol = DEFAULT_PROTOCOL,
                    tuning_dir: str | None = None) -> Latency:
    """Build ``arch`` with random weights → ONNX → ``compile_onnx`` → time it on ``runtime``."""
    with tempfile.TemporaryDirectory(prefix="hwnas-net-") as tmp:
        task = BuildTask("net", target, tmp, runtime.family, arch=str(arch),
                         space_config=space.config(), tuning_dir=tuning_dir)
        item = build(task).items[0]
        return runtime.measure(item.path, {INPUT: random_input(item.input_shape)}, protocol,
                               item.func)


def network_timer(space, arch, target, runtime, work, name: str = "net",
                  tuning_dir: str | None = None):
    """Build ``arch`` into ``work`` (kept: the library must outlive the timer) and return a
    timer of it on ``runtime``, with a random input."""
    from pathlib import Path

    Path(work).mkdir(parents=True, exist_ok=True)
    task = BuildTask(name, target, str(work), runtime.family, arch=str(arch),
                     space_config=space.config(), tuning_dir=tuning_dir)
    item = build(task).items[0]
    return runtime.timer(item.path, {INPUT: random_input(item.input_shape)}, item.func)


def network_record(space, arch, m: Measurement) -> dict:
    return {"arch": str(arch), **m.latency.to_json(), **m.extra(), "space": space.config()}


def _config_id(cfg: dict) -> tuple:
    return tuple(sorted((k, str(v)) for k, v in cfg.items() if k != "resolutions"))


def same_space(record: dict, space) -> bool:
    """Whether a stored network record was measured in ``space`` (resolutions aside)."""
    return _config_id(record.get("space", {})) == _config_id(space.config())


def same_network(record: dict, space, arch) -> bool:
    return record.get("arch") == str(arch) and same_space(record, space)


@functools.lru_cache(maxsize=16)
def _space(config_json: str):
    return space_from_config(json.loads(config_json))


def table_sum_ms(table: LatencyTable, record: dict) -> float | None:
    """The table's prediction for a stored network, or None when an operator is missing."""
    if "space" not in record:
        return None
    space = _space(json.dumps(record["space"], sort_keys=True))
    arch = space.parse(record["arch"])
    entries = [table.entry(op.key, getattr(arch, "r", None)) for op in space.ops(arch)]
    if any(e is None for e in entries):
        return None
    return float(sum(e["median_ms"] for e in entries))


def validation(table: LatencyTable) -> dict:
    """Share of stored networks the table sum predicts within ±10%, and the MAPE (percent)."""
    pairs = []
    for rec in table.meta.get("networks", []):
        pred = table_sum_ms(table, rec)
        if pred is not None:
            rec["table_ms"] = round(pred, 5)
            pairs.append((pred, rec["median_ms"]))
    if not pairs:
        return {"n": 0, "within10": None, "mape": None}
    pred, meas = np.array(pairs).T
    err = np.abs(pred - meas) / meas
    return {"n": int(len(pairs)), "within10": float(np.mean(err <= 0.10)),
            "mape": float(100 * np.mean(err)), "bias": float(np.median(pred / meas)),
            "units": "within10: share of networks; mape: percent; bias: median table/measured"}


def calibration_networks(space, table: LatencyTable) -> tuple[list[str], np.ndarray]:
    """The table's measured networks that belong to ``space``: (arch strings, median ms)."""
    archs, ms = [], []
    for rec in table.meta.get("networks", []):
        if "space" in rec and not same_space(rec, space):
            continue
        try:
            arch = space.parse(rec["arch"])
        except Exception:            # another resolution set or space: not ours to fit on
            continue
        archs.append(str(arch))
        ms.append(float(rec["median_ms"]))
    return archs, np.asarray(ms)
