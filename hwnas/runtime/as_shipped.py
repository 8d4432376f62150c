"""A bundle timed the way a user's program runs it: its own ``runner.Model`` in a fresh process.

The latency protocol (``hwnas.runtime.protocol``) times a compiled library by TVM's C++ loop
(``time_evaluator``): no Python, no input copy, no output returned to numpy. A program calls
the bundle from Python, and each call copies its input in and its output out. On the x86 host
(znver4) a network of 0.4-0.5 ms read 1.08-1.12x its ``time_evaluator`` time that way, in the
same process, the two alternated; at 0.8 ms a deploy judged 0.64 ms by the protocol shipped a
bundle that fresh processes then ran at 0.89 ms. So a deploy also times its bundle through the
bundle's ``runner.py`` (the file it ships), in a fresh process (the pool a program starts
with), and judges the slower figure.

Only for a bundle that runs on this machine's CPU; a remote device runs its bundles through
its RPC server, which has no Python to run ``runner.py``.
"""
from __future__ import annotations

import importlib.util
import multiprocessing
import time
from pathlib import Path

import numpy as np

from hwnas.runtime.latency import Latency

__all__ = ["SAMPLES", "SAMPLE_MS", "per_call_ms", "time_as_shipped", "time_runner"]

#: samples of one timing; each the mean of as many calls as last at least ``SAMPLE_MS``
SAMPLES = 20
SAMPLE_MS = 10.0
#: calls before the first sample (the pool starts, caches fill)
WARMUP_CALLS = 5


def per_call_ms(fn, samples: int = SAMPLES, sample_ms: float = SAMPLE_MS,
                warmup: int = WARMUP_CALLS) -> list[float]:
    """Per-call milliseconds of ``fn()``: ``warmup`` calls, then ``samples`` samples, each the
    mean of as many back-to-back calls as last at least ``sample_ms`` (sized from one call)."""
    for _ in range(warmup):
        fn()
    t0 = time.perf_counter_ns()
    fn()
    one_ms = (time.perf_counter_ns() - t0) / 1e6
    number = max(1, int(np.ceil(sample_ms / max(one_ms, 1e-3))))
    out = []
    for _ in range(samples):
        t0 = time.perf_counter_ns()
        for _ in range(number):
            fn()
        out.append((time.perf_counter_ns() - t0) / 1e6 / number)
    return out


def time_runner(bundle: str | Path, samples: int = SAMPLES, sample_ms: float = SAMPLE_MS,
                threads: int | None = None) -> list[float]:
    """Per-call milliseconds of ``samples`` samples of the bundle in ``bundle``, run through
    its own ``runner.py`` in this process on a fixed random input of its shape."""
    bundle = Path(bundle)
    spec = importlib.util.spec_from_file_location("_hwnas_bundle_runner", bundle / "runner.py")
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)
    net = runner.Model(bundle, threads=threads)
    x = np.random.default_rng(0).standard_normal(net.shape).astype(np.float32)
    return per_call_ms(lambda: net(x), samples, sample_ms)


def _child(job) -> list[float]:
    from hwnas._cpus import restore

    cpus, bundle, samples, sample_ms, threads = job
    restore(cpus)
    return time_runner(bundle, samples, sample_ms, threads)


def time_as_shipped(bundle: str | Path, threads: int | None = None, samples: int = SAMPLES,
                    sample_ms: float = SAMPLE_MS) -> Latency:
    """The bundle in ``bundle`` timed through its ``runner.py`` in a fresh process, every CPU
    this process was allowed (TVM's runtime pins the thread that starts its pool, and a child
    inherits that), at most ``threads`` in its pool."""
    from hwnas._cpus import allowed_cpus

    with multiprocessing.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
        got = pool.apply(_child, ((allowed_cpus(), str(bundle), samples, sample_ms, threads),))
    lat = Latency.from_samples_ms(got)
    return Latency(round(lat.median_ms, 5), round(lat.p90_ms, 5), round(lat.std_ms, 5), lat.n)
