"""Shared by the benchmark scripts: argument parsing, timing helpers, --json output."""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Callable

import numpy as np

__all__ = ["parser", "write_json", "time_ms", "median", "budgets_ms"]


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--json", metavar="PATH", help="also write the headline figures as flat JSON")
    return p


def write_json(path: str | None, figures: dict) -> None:
    if path:
        from hwnas._io import atomic_write_json

        atomic_write_json(Path(path), figures)


def time_ms(fn: Callable[[], object], warmup: int = 3, repeats: int = 20,
            min_repeat_ms: float = 1.0) -> np.ndarray:
    """Per-call times (ms) of ``fn``: warm-up, then ``repeats`` timings of ≥ ``min_repeat_ms``
    (``hwnas.runtime.as_shipped.per_call_ms``, the loop a deploy times its bundle with)."""
    from hwnas.runtime.as_shipped import per_call_ms

    return np.asarray(per_call_ms(fn, repeats, min_repeat_ms, warmup))


def median(xs) -> float:
    return float(np.median(np.asarray(xs, dtype=np.float64)))


def budgets_ms(text: str, target: str, space, scale: float = 1.0, table=None,
               samples: int = 2000, seed: int = 0) -> tuple[list[float], str]:
    """Budgets in ms, and how they were chosen. ``text`` lists milliseconds (``0.4,0.6``) or,
    after ``q:``, quantiles of the target's own predicted latency over ``samples`` random
    subnets of ``space`` (``q:0.15,0.5``), times ``scale``: the same budgets then bind on a
    CPU twice as fast as the one that measured the first table. ``table``: predict from
    that table file instead of the target's own."""
    text = text.strip()
    if not text.startswith("q:"):
        return [float(v) for v in text.split(",") if v.strip()], "given in ms"
    from hwnas.predict import load_predictor

    qs = [float(v) for v in text[2:].split(",") if v.strip()]
    pred = load_predictor(target, space, "auto", path=table)
    rng = np.random.default_rng(seed)
    genomes = space.to_genomes([space.sample(rng) for _ in range(samples)])
    ms = pred.predict_genomes(genomes)
    out = [round(float(np.quantile(ms, q)) * scale, 3) for q in qs]
    whose = f"{target}'s" if table is None else Path(table).name
    how = (f"quantiles {','.join(f'{q:g}' for q in qs)} of {whose} {pred.name} prediction "
           f"over {samples} random subnets ({ms.min():.3f}..{ms.max():.3f} ms)"
           + (f", x{scale:g}" if scale != 1.0 else ""))
    return out, how


def own_table(space, target, runtime, db, folder: Path, networks: int) -> dict:
    """Profile this CPU's table of ``space`` (tuned code) into ``folder`` and fit its
    calibrated predictor, as ``hwnas profile`` does."""
    from hwnas.predict import calibrate_table
    from hwnas.profile.profiler import ProfileOptions, profile
    from hwnas.profile.table import LatencyTable

    path = folder / target.name / f"{space.name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rep = profile(space, target, runtime, path, ProfileOptions(networks=networks, tuning_dir=db))
    calibrate_table(path, space)
    return {"path": path, "table": LatencyTable.load(path), "ops": rep.n_ops,
            "networks": rep.n_networks_new, "wall_s": round(time.perf_counter() - t0, 1),
            "validation": rep.validation}


def deploy_figures(manifest: dict, budget: float) -> dict:
    """A deploy's own reading of its bundle: ``measured`` (drift-corrected), ``raw``,
    ``shipped`` (its runner.py in a fresh process), ``judged`` (what the loop decided by:
    ``hwnas.deploy.loop.judge``), ``ok`` and ``slack`` by the judged figure. The
    ``..._independent`` figures are a benchmark's own re-timing."""
    lat = manifest["latency"]
    meas = lat["measured"]
    judged = float(lat.get("judged_ms", meas["median_ms"]))
    return {"measured": meas["median_ms"], "raw": meas.get("raw", {}).get("median_ms"),
            "shipped": meas.get("shipped", {}).get("median_ms"), "judged": judged,
            "ok": judged <= budget, "slack": (budget - judged) / budget,
            "rounds": manifest["deploy"]["rounds"]}
