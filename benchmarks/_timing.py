"""One timing method for every runtime the benchmarks compare.

Every runtime is timed the same way: a Python loop of calls, each returning its output as a
numpy array, ``_common.time_ms`` (warm-up, then 20 samples of at least ``SAMPLE_MS``), in a
fresh process per runtime and round, the runtimes alternated round after round, the median
round kept. TVM runs through the bundle's own ``runner.Model`` (``hwnas.runtime.
bundle_runner``: the thread pool a shipped bundle uses, sized to the idle cores); onnxruntime
through a session with as many threads as the target's TVM pool. Neither is timed by its
own C++ loop (TVM's ``time_evaluator`` pays no Python and no output copy: on 12 subnets of
0.2-0.5 ms on znver4 it read 0.75x onnxruntime where this loop read 0.90-0.97x).

A row is a dict with ``shape`` (the input's) and one artefact per kind: ``ort`` names the
ONNX file (``row["onnx"]``), ``torch`` the subnet (``row["space"]``, a space's config, and
``row["arch"]``: torch eager, as many intra-op threads as the TVM pool), any other kind a
compiled library or a deployed bundle's folder (``row[kind]``; ``bundle_rows``).

A deploy's own measurement accepted its bundle, so "within budget" is also judged by an
independent re-timing of the bundle by this method (``..._independent`` keys).
"""
from __future__ import annotations

import contextlib
import json
import multiprocessing
from pathlib import Path

import numpy as np

from _common import median, time_ms
from hwnas.runtime.as_shipped import SAMPLE_MS, SAMPLES, WARMUP_CALLS

__all__ = ["callable_for", "bundle_rows", "time_rows", "protocol_rows", "time_alternating"]

TARGET = "x86-host"


def callable_for(kind: str, artefact: str | Path, shape, threads: int):
    """A zero-argument call of ``artefact`` on runtime ``kind`` (``ort``: onnxruntime;
    ``torch``: torch eager, ``artefact`` a (space config, arch) pair; else TVM) on a fixed
    random input, returning the output as numpy."""
    x = np.random.default_rng(0).standard_normal(tuple(shape)).astype(np.float32)
    if kind == "torch":
        import torch

        from hwnas.spaces import space_from_config

        space_cfg, arch = artefact
        space = space_from_config(space_cfg)
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        model = space.build(space.parse(arch)).eval()
        xt = torch.from_numpy(x)

        def call():
            with torch.inference_mode():
                return model(xt).numpy()
        return call
    if kind == "ort":
        from hwnas.compiler.onnx_export import INPUT_NAME, ort_session

        sess = ort_session(artefact, threads=threads)
        return lambda: sess.run(None, {INPUT_NAME: x})[0]
    from hwnas.runtime.bundle_runner import Model

    if Path(artefact).is_dir():          # a bundle: its own manifest (pool placement, device)
        net = Model(artefact, threads=threads)
    else:
        net = Model(library=artefact, input_shape=tuple(shape), threads=threads)
    return lambda: net(x)


def bundle_rows(bundles) -> list[dict]:
    """Rows of deployed bundles: ``tvm`` (the bundle, run by its runner) and ``onnx``."""
    rows = []
    for b in bundles:
        b = Path(b)
        m = json.loads((b / "manifest.json").read_text())
        rows.append({"tvm": str(b), "onnx": str(b / "model.onnx"),
                     "shape": list(m["input"]["shape"])})
    return rows


def time_rows(job) -> list[float]:
    """Worker: the median ms of every row on one runtime kind."""
    from hwnas._cpus import restore

    cpus, kind, rows = job
    restore(cpus)
    from hwnas.targets import load_target

    threads = int(load_target(TARGET).threads)
    out = []
    for r in rows:
        what = r["onnx"] if kind == "ort" else (r["space"], r["arch"]) if kind == "torch" \
            else r[kind]
        fn = callable_for(kind, what, r["shape"], threads)
        # samples as long as a deploy's own as-shipped timing: 20 samples of a 0.4 ms network
        # are then 500 calls, not 40
        out.append(median(time_ms(fn, warmup=WARMUP_CALLS, repeats=SAMPLES,
                                  min_repeat_ms=SAMPLE_MS)))
    return out


def protocol_rows(job) -> list[float]:
    """Worker: the median ms of every row's library by hwnas's own measurement protocol (what
    latency tables and predictors are in), for scoring a prediction; not for comparing
    runtimes."""
    from hwnas._cpus import restore

    cpus, kind, rows = job
    restore(cpus)
    from hwnas.runtime import connect
    from hwnas.targets import load_target

    runtime = connect(load_target(TARGET))
    out = []
    for r in rows:
        x = {"input": np.random.default_rng(0).standard_normal(r["shape"]).astype(np.float32)}
        out.append(runtime.measure(r[kind], x).median_ms)
    return out


def time_alternating(rows: list[dict], kinds: list[str], rounds: int, busy: int = 0,
                     on_round=None, worker=time_rows) -> dict:
    """{kind: median ms per row}: each kind alone in a fresh process per round, the kinds
    alternating. ``busy``: that many processes spin beside them (``LoadGenerator``, one per
    core, started here: a pool's worker may not start processes). ``worker``: ``time_rows``
    (the one loop for every runtime) or ``protocol_rows``."""
    from hwnas._cpus import allowed_cpus
    from hwnas.runtime.load import LoadGenerator

    got: dict[str, list[list[float]]] = {k: [] for k in kinds}
    load = LoadGenerator(cores=busy, seconds=3600) if busy else contextlib.nullcontext()
    with multiprocessing.get_context("spawn").Pool(1, maxtasksperchild=1) as pool, load:
        for r in range(rounds):
            for k in kinds:
                got[k].append(pool.apply(worker, ((allowed_cpus(), k, rows),)))
                if on_round is not None:
                    on_round(r, k)
    return {k: np.median(np.asarray(v), axis=0) for k, v in got.items()}
