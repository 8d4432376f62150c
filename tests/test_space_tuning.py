"""Whole-space tuning: the kernel enumeration, a real (tiny) tuned database applied by the
compiler, resumable runs, and databases that are corrupt or belong to another device."""
from __future__ import annotations

import json
import logging
import lzma
import tempfile
from pathlib import Path

import numpy as np
import pytest

from hwnas.compiler.database import MANIFEST, load_database, publish
from hwnas.errors import ExportError
from hwnas.spaces import get_space
from hwnas.targets import load_target


@pytest.fixture(scope="module")
def host():
    return load_target("x86-host")


#: a one-resolution, half-width ofa-mbv3: 96 operators, small enough to tune in a test
SMALL = {"resolutions": [8], "num_classes": 10, "in_chans": 1, "width_mult": 0.5}


@pytest.mark.tvm
def test_operator_enumeration_covers_every_kernel_of_random_subnets(host):
    from hwnas.compiler import onnx_to_relax
    from hwnas.compiler.onnx_export import network_to_onnx
    from hwnas.compiler.space_tuning import enumerate_kernels
    from hwnas.compiler.tune import extract_tuning_tasks, workload_key

    space = get_space("ofa-mbv3", **SMALL)
    kernels, tasks = enumerate_kernels(space, host, samples=500)
    keys = {k.key for k in kernels}
    assert len(keys) == len(kernels) == len(tasks) > 0
    assert all(k.occurrence > 0 and k.untuned_ms > 0 for k in kernels)
    rng = np.random.default_rng(0)
    archs = [space.smallest(), space.largest()] + space.sample_many(rng, 3)
    with tempfile.TemporaryDirectory() as tmp:
        for i, arch in enumerate(archs):
            path = network_to_onnx(space, arch, Path(tmp) / f"n{i}.onnx")
            found = extract_tuning_tasks(onnx_to_relax(path, {"input": space.input_shape(arch)}),
                                         host)
            missing = [t.task_name for t in found if workload_key(t) not in keys]
            assert not missing, f"{arch}: {missing}"


def test_a_space_whose_fusion_crosses_operators_is_refused(host, tmp_path):
    from hwnas.compiler.space_tuning import tune_space

    with pytest.raises(ExportError, match="across its operators"):
        tune_space(get_space("nb201", channels=4, cells=1), host, tmp_path / "w", tmp_path / "p")


def test_allocation_gives_the_heavy_kernels_the_most_trials():
    from hwnas.compiler.space_tuning import TIERS, Kernel, allocate

    ks = [Kernel(str(i), f"k{i}", [], 1.0, w, 1.0) for i, w in
          enumerate([50.0, 20.0, 10.0, 8.0, 5.0, 3.0, 2.0, 1.0, 0.5, 0.5])]
    allocate(ks)
    trials = [k.trials for k in ks]
    assert trials == sorted(trials, reverse=True)
    assert trials[0] == TIERS[0][1] and trials[-1] == TIERS[-1][1]


@pytest.fixture(scope="module")
def tiny_db(tmp_path_factory, host):
    """A real database of every kernel of ``SMALL``: a run interrupted after its first chunk
    (what it had measured, kept), then resumed to the end."""
    from hwnas.compiler.space_tuning import trials_done, tune_space

    root = tmp_path_factory.mktemp("db")
    space = get_space("ofa-mbv3", **SMALL)
    tiers = ((1.0, 1),)                 # one trial a kernel: the cost is per kernel (~3 s)
    calls = {"n": 0}

    def stop_after_first_chunk(info):
        if info["phase"] == "tuning":
            calls["n"] += 1
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        tune_space(space, host, root / "work", root / "published", tiers=tiers,
                   on_progress=stop_after_first_chunk, transfer="none")
    first = trials_done(root / "work")
    published_early = (root / "published" / MANIFEST).exists()
    with pytest.raises(ExportError, match="resume"):
        tune_space(space, host, root / "work", root / "published", tiers=tiers)
    rep = tune_space(space, host, root / "work", root / "published", tiers=tiers, resume=True,
                     transfer="none")
    return space, rep, root, {"chunks_before_stop": calls["n"], "first": first,
                              "published_early": published_early,
                              "after": trials_done(root / "work")}


@pytest.mark.tvm
def test_interrupted_tuning_resumes_without_losing_records(tiny_db):
    _, rep, _, run = tiny_db
    assert run["chunks_before_stop"] == 1 and run["first"] and run["published_early"]
    assert rep.finished and all(run["after"][k] >= v for k, v in run["first"].items())


@pytest.mark.tvm
def test_tuned_database_is_published_and_applied(tiny_db, host):
    from hwnas.compiler import compile_onnx
    from hwnas.compiler.onnx_export import network_to_onnx

    space, rep, root, _ = tiny_db
    assert rep.finished and rep.covered == rep.kernels > 0
    pub = root / "published"
    assert {p.name for p in pub.iterdir()} == {MANIFEST, "database_workload.json.xz",
                                              "database_tuning_record.json.xz"}
    man = json.loads((pub / MANIFEST).read_text())
    assert man["target"]["name"] == "x86-host" and man["target"]["mcpu"] == host.mcpu
    assert man["workloads"] == rep.kernels and man["finished"] is True
    db = load_database(pub, required=True, target=host)
    for seed in range(2):
        arch = space.sample(np.random.default_rng(seed))
        path = network_to_onnx(space, arch, root / f"net{seed}.onnx")
        compiled = compile_onnx(path, {"input": space.input_shape(arch)}, host, db)
        # every kernel of the subnet was found in the database and scheduled from it
        assert compiled.kernels > 0 and compiled.tuned == compiled.kernels, compiled.untuned
        untuned = compile_onnx(path, {"input": space.input_shape(arch)}, host)
        assert untuned.tuned == 0 and untuned.kernels == compiled.kernels


def _fake_published(path: Path, target_identity: dict) -> Path:
    """A published database folder whose files are real xz but hold no records."""
    path.mkdir(parents=True)
    for name in ("database_workload.json", "database_tuning_record.json"):
        (path / f"{name}.xz").write_bytes(lzma.compress(b""))
    (path / MANIFEST).write_text(json.dumps({"format": "hwnas-tuning-db/1",
                                             "target": target_identity}))
    return path


def test_database_of_another_device_is_refused(host, tmp_path):
    ident = {"name": "rpi4", "kind": "llvm", "mcpu": "cortex-a72", "arch": None,
             "mtriple": "aarch64-linux-gnu", "tvm": "0.27.0"}
    db = _fake_published(tmp_path / "db", ident)
    with pytest.raises(ExportError, match="tuned for target 'rpi4'"):
        load_database(db, target=host)


def test_database_of_another_cpu_or_tvm_warns_in_one_line(host, tmp_path, caplog):
    from hwnas.compiler.database import target_identity

    ident = {**target_identity(host), "mcpu": "some-other-cpu", "tvm": "0.1"}
    db = _fake_published(tmp_path / "db", ident)
    with caplog.at_level(logging.WARNING, logger="hwnas.compiler"):
        assert load_database(db, target=host) is not None
    lines = [r.getMessage() for r in caplog.records if "some-other-cpu" in r.getMessage()]
    assert len(lines) == 1 and "\n" not in lines[0]


def test_each_cpu_model_keeps_its_own_database_beside_the_others(host, tmp_path, monkeypatch):
    """A target that runs on whichever CPU the machine has: a database tuned on another CPU
    stays where it is and serves (with its warning) until this CPU's own is tuned beside it
    in ``tuning-<cpu>/``, which is then preferred."""
    from hwnas.compiler.database import database_dir, target_identity

    monkeypatch.setenv("HWNAS_TABLES", str(tmp_path))
    here = target_identity(host)
    base = tmp_path / host.name
    _fake_published(base / "tuning", {**here, "mcpu": "some-other-cpu"})
    if database_dir(host) != base / "tuning":
        pytest.skip("the shipped data has a database for this CPU")
    assert database_dir(host, for_writing=True) == base / f"tuning-{host.mcpu}"
    _fake_published(base / f"tuning-{host.mcpu}", here)
    assert database_dir(host) == database_dir(host, for_writing=True) == \
        base / f"tuning-{host.mcpu}"
    # a database tuned on this CPU in tuning/ is written to where it is
    _fake_published(tmp_path / "b" / host.name / "tuning", here)
    monkeypatch.setenv("HWNAS_TABLES", str(tmp_path / "b"))
    assert database_dir(host) == database_dir(host, for_writing=True) == \
        tmp_path / "b" / host.name / "tuning"


def test_corrupt_database_is_one_line_naming_the_file(host, tmp_path):
    from hwnas.compiler.database import target_identity

    db = _fake_published(tmp_path / "db", target_identity(host))
    (db / "database_tuning_record.json.xz").write_bytes(b"not xz at all")
    with pytest.raises(ExportError, match="database_tuning_record.json.xz"):
        load_database(db, target=host)
    (db / MANIFEST).write_text("{ truncated")
    with pytest.raises(ExportError, match="tuning.json"):
        load_database(db, target=host)


def test_publish_keeps_the_best_record_of_each_workload(tmp_path):
    src = tmp_path / "work"
    src.mkdir()
    (src / "database_workload.json").write_text('["17","AAA"]\n["18","BBB"]\n["19","CCC"]\n')
    recs = [[0, [["t0"], [3e-3], {}, []]], [0, [["t1"], [1e-3], {}, []]],
            [1, [["t2"], [1e10], {}, []]], [2, [["t3"], [2e-3, 4e-3], {}, []]]]
    (src / "database_tuning_record.json").write_text("\n".join(json.dumps(r) for r in recs))
    man = publish(src, tmp_path / "pub", {"note": "x"})
    lines = lzma.decompress((tmp_path / "pub" / "database_tuning_record.json.xz")
                            .read_bytes()).decode().split()
    kept = [json.loads(line) for line in lines]
    assert [r[1][0] for r in kept] == [["t1"], ["t3"]]      # failed workload 18 dropped
    assert [r[0] for r in kept] == [0, 1] and man["workloads"] == 2 and man["note"] == "x"


def test_trials_are_weighted_by_the_untuned_costs(host):
    """Once the target's table describes tuned code, ``hwnas tune`` still weighs kernels by
    their untuned cost, from the untuned table beside it."""
    from hwnas.commands.tune import _op_costs
    from hwnas.profile.table import LatencyTable, table_path

    space = get_space("ofa-mbv3", resolutions=[16, 20, 24, 28], num_classes=10, in_chans=1)
    untuned = table_path(host.name, space.name, ".untuned")
    if not untuned.exists():
        pytest.skip("no untuned x86-host table shipped")
    costs = _op_costs(host, space)
    entries = LatencyTable.load(untuned).entries
    assert costs and costs == {k: entries[k]["median_ms"] for k in costs}
    # the tuned table of the same configuration, beside the untuned one (this CPU's folder may
    # hold another configuration's table)
    tuned = LatencyTable.load(untuned.with_name(f"{space.name}.json")).entries
    assert any(costs[k] != tuned[k]["median_ms"] for k in costs if k in tuned)


@pytest.fixture(scope="module")
def transferred(tiny_db, host, tmp_path_factory):
    """``SMALL`` tuned anew on this CPU from the tiny database, published as if another CPU
    model had tuned it (its records are real schedules of these kernels), beside a corrupt
    database of a third CPU model. The transfer is interrupted after its first chunk, then
    resumed. Transfer only: no top-up trials."""
    import shutil

    from hwnas.compiler.database import read_manifest
    from hwnas.compiler.space_tuning import tune_space

    space, _, root, _ = tiny_db
    tables = tmp_path_factory.mktemp("tables")
    other = tables / host.name / "tuning-othercpu"
    shutil.copytree(root / "published", other)
    man = read_manifest(other)
    man["target"] = {**man["target"], "mcpu": "othercpu"}
    (other / MANIFEST).write_text(json.dumps(man))
    broken = tables / host.name / "tuning-brokencpu"
    shutil.copytree(other, broken)
    (broken / MANIFEST).write_text(json.dumps({**man, "target": {**man["target"],
                                                                  "mcpu": "brokencpu"}}))
    (broken / "database_tuning_record.json.xz").write_bytes(b"not xz")
    mp = pytest.MonkeyPatch()
    mp.setenv("HWNAS_TABLES", str(tables))
    work, out = tables / "work", tables / "mine"

    def stop(info):
        if info["phase"] == "transfer":
            raise KeyboardInterrupt

    try:
        with pytest.raises(KeyboardInterrupt):
            tune_space(space, host, work, out, tiers=((1.0, 0),), on_progress=stop)
        cut = json.loads((work / MANIFEST).read_text())
        published_early = out.exists()
        rep = tune_space(space, host, work, out, tiers=((1.0, 0),), resume=True)
    finally:
        mp.undo()
    return space, rep, cut, published_early, out, work


@pytest.mark.tvm
def test_transfer_keeps_the_fastest_schedule_measured_here(transferred, host):
    space, rep, cut, published_early, out, work = transferred
    # interrupted: what was measured is kept, nothing half-done is published
    assert 0 < len(cut["transfer"]) < rep.kernels and not published_early
    man = json.loads((out / MANIFEST).read_text())
    picks = json.loads((work / MANIFEST).read_text())["transfer"]
    assert len(picks) == rep.kernels == man["workloads"]
    assert man["target"]["mcpu"] == host.mcpu
    assert set(man["transfer"]["from"]) >= {"othercpu"}
    assert "brokencpu" not in man["transfer"]["from"]
    assert any("tuning-brokencpu" in k for k in man["transfer"]["skipped"])
    assert sum(man["transfer"]["kept"].values()) == rep.kernels
    assert man["transfer"]["kept"].get("othercpu", 0) > 0
    for key, pick in picks.items():
        secs = {s: v for s, v in pick["seconds"].items() if v is not None}
        assert "default" in secs and "othercpu" in secs
        best = man["best_seconds"][str(int(key, 16))]
        # no kernel ends slower than its default schedule; the winner is the fastest here
        assert best <= secs["default"] + 1e-9
        assert best == pytest.approx(min(secs.values()), rel=1e-6, abs=1e-9)
        assert pick["best"] == min(secs, key=secs.get)


@pytest.mark.tvm
def test_transferred_database_compiles_every_kernel(transferred, host, tmp_path):
    from hwnas.compiler import compile_onnx
    from hwnas.compiler.onnx_export import network_to_onnx

    space, _, _, _, out, _ = transferred
    db = load_database(out, required=True, target=host)
    arch = space.sample(np.random.default_rng(3))
    path = network_to_onnx(space, arch, tmp_path / "net.onnx")
    compiled = compile_onnx(path, {"input": space.input_shape(arch)}, host, db)
    assert compiled.kernels > 0 and compiled.tuned == compiled.kernels, compiled.untuned
