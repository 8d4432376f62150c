"""Shared by the benchmark scripts: argument parsing, timing helpers, --json output."""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Callable

import numpy as np

__all__ = ["parser", "write_json", "time_ms", "median"]


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
    """Per-call times (ms) of ``fn``: warm-up, then ``repeats`` timings of ≥ ``min_repeat_ms``."""
    for _ in range(warmup):
        fn()
    t0 = time.perf_counter_ns()
    fn()
    one_ms = (time.perf_counter_ns() - t0) / 1e6
    number = max(1, int(np.ceil(min_repeat_ms / max(one_ms, 1e-3))))
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        for _ in range(number):
            fn()
        out.append((time.perf_counter_ns() - t0) / 1e6 / number)
    return np.asarray(out)


def median(xs) -> float:
    return float(np.median(np.asarray(xs, dtype=np.float64)))
