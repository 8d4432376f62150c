"""Whole networks for a new device: the few worth measuring, and measuring them.

``informative_archs`` picks k archs spread over the space's cost features (MACs, parameters,
depth, activation traffic, and any source tables' sums), not at random: a greedy max-min design
over a seeded pool, which starts at the most typical arch and then always adds the one farthest
from those already chosen, so the k samples span the costs a predictor must interpolate. Archs
in the outer 2% of the pool are left out: a fit should not spend a sample on a freak.

``measure_samples`` compiles and times them with the same build path, protocol and interleaved
rounds as the profiler's whole networks, A/B against the space's reference network (so a busy
device's samples are drift-corrected to its quiet speed, the reference's quiet time kept in the
progress file's meta), saving every finished network to a progress file so that an
interrupted run resumes where it stopped.
"""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np

from hwnas._io import atomic_write_json, read_json
from hwnas.errors import TableError

__all__ = ["informative_archs", "cost_matrix", "measure_samples", "SAMPLES_FORMAT",
           "samples_path"]

log = logging.getLogger("hwnas.profile")

SAMPLES_FORMAT = "hwnas-samples/1"
POOL = 2048
TRIM = 0.02


def samples_path(target: str, space_name: str) -> Path:
    """``latency_tables/<target>/<space>.samples.json``: networks measured for ``hwnas adapt``
    (in ``cpu-<mcpu>/`` for a target with a CPU model: they are that CPU's)."""
    from hwnas.profile.table import cpu_file

    return cpu_file(target, space_name, ".samples")


def cost_matrix(space, genomes: np.ndarray, tables: dict[str, np.ndarray] | None = None
                ) -> np.ndarray:
    """(N, C) log cost features of archs: MACs, parameters, traffic (log), depth, and the
    sum of each table (per-op ms in ``op_list`` order plus the ``null_op`` zero), log."""
    cols = [np.log(np.maximum(space.flops_genomes(genomes), 1.0)),
            np.log(np.maximum(space.params_genomes(genomes), 1.0)),
            np.log(np.maximum(space.traffic_genomes(genomes), 1.0)),
            space.depth_genomes(genomes).astype(np.float64)]
    ids = space.op_indices(genomes) if tables else None
    for ms in (tables or {}).values():
        cols.append(np.log(np.maximum(np.asarray(ms)[ids].sum(1), 1e-9)))
    return np.stack(cols, 1)


def informative_archs(space, k: int, seed: int = 0, tables: dict[str, np.ndarray] | None = None,
                      pool: int = POOL) -> list:
    """``k`` distinct archs spread over the cost features (see the module docstring)."""
    rng = np.random.default_rng(seed)
    genomes = space.sample_genomes(rng, pool)
    canon = getattr(space, "canonical_genomes", lambda g: g)(genomes)
    _, first = np.unique(canon, axis=0, return_index=True)
    genomes = genomes[np.sort(first)]
    if k > len(genomes):
        raise TableError(f"the space holds fewer than {k} distinct archs in a pool of {pool}")
    feats = cost_matrix(space, genomes, tables)
    sd = feats.std(0)
    z = (feats - feats.mean(0)) / np.where(sd > 0, sd, 1.0)
    radius = np.linalg.norm(z, axis=1)
    ok = np.flatnonzero(radius <= np.quantile(radius, 1 - TRIM))
    if len(ok) < k:
        ok = np.arange(len(genomes))
    chosen = [int(ok[np.argmin(radius[ok])])]
    dist = np.linalg.norm(z[ok] - z[chosen[0]], axis=1)
    while len(chosen) < k:
        i = int(ok[np.argmax(dist)])
        chosen.append(i)
        dist = np.minimum(dist, np.linalg.norm(z[ok] - z[i], axis=1))
    return [space.from_genome(genomes[i]) for i in chosen]


def _open(path: Path, target, space, rounds: int, tuning_dir) -> dict:
    from hwnas.profile.meta import now_iso
    from hwnas.runtime.protocol import DEFAULT_PROTOCOL

    tuning = None if tuning_dir is None else str(tuning_dir)
    if path.exists():
        data = read_json(path, "measured samples", TableError)
        meta = data.get("meta", {}) if isinstance(data, dict) else {}
        if data.get("format") != SAMPLES_FORMAT or not isinstance(data.get("networks"), list):
            raise TableError(f"{path} is not an hwnas samples file (format '{SAMPLES_FORMAT}')")
        same = (meta.get("target") == target.name and meta.get("space") == space.config()
                and meta.get("network_rounds") == rounds and meta.get("tuning_dir") == tuning)
        if same:
            return data
        log.info("%s was measured for another target, space, protocol or database; "
                 "starting afresh", path)
    return {"format": SAMPLES_FORMAT,
            "meta": {"purpose": "whole networks measured to fit a few-shot predictor",
                     "target": target.name, "space": space.config(),
                     "protocol": DEFAULT_PROTOCOL.to_json(), "network_rounds": rounds,
                     "tuning_dir": tuning, "created": now_iso()},
            "networks": []}


def measure_samples(space, target, runtime, archs, path: str | Path, rounds: int = 3,
                    workers: int = 2, tuning_dir: str | None = None) -> list[dict]:
    """Compile and time the archs not yet in ``path`` (saving after each network); return the
    records of all of ``archs`` (``arch``, ``median_ms``, ...), in their order."""
    from hwnas.profile.build import BuildTask
    from hwnas.profile.meta import now_iso
    from hwnas.profile.pool import BuildPool
    from hwnas.profile.profiler import PhaseTime, ProfileOptions, run_waves
    from hwnas.profile.reference_network import open_reference, record_wave

    path = Path(path)
    data = _open(path, target, space, rounds, tuning_dir)
    data["meta"]["device"] = runtime.describe()
    done = {n["arch"]: n for n in data["networks"]}
    todo = [str(a) for a in archs if str(a) not in done]

    def save(item, m) -> None:
        rec = {"arch": item.key, **m.latency.to_json(), **m.extra(), "measured": now_iso()}
        data["networks"].append(rec)
        done[item.key] = rec
        atomic_write_json(path, data)
        log.info("sample %d/%d: %s %.3f ms", len(done), len(archs), item.key,
                 m.latency.median_ms)

    if not todo:
        return [done[str(a)] for a in archs]
    log.info("measuring %d networks on %s (%d already in %s)", len(todo),
             runtime.describe(), len(archs) - len(todo), path)
    with tempfile.TemporaryDirectory(prefix="hwnas-adapt-") as tmp, BuildPool(workers) as pool, \
            open_reference(pool, runtime, target, space, tmp, tuning_dir,
                           data["meta"]) as reference:
        if reference is None:
            data["meta"]["corrected"] = False
        tasks = [BuildTask(f"net{i}", target, tmp, runtime.family, arch=a,
                           space_config=space.config(), tuning_dir=tuning_dir)
                 for i, a in enumerate(todo)]
        run_waves(pool, tasks, runtime, ProfileOptions(workers=workers), PhaseTime(), save,
                  "networks", rounds, reference, lambda info: record_wave(data["meta"], info))
    return [done[str(a)] for a in archs]
