"""A device's database holds several configurations: the default one in its folder, each
other in a subfolder of its name; a compile opens their union, tuning one never rewrites
another, and a run seeded from a published database goes on with the trials it had spent."""
from __future__ import annotations

import json
import lzma
import shutil
from pathlib import Path

import pytest

from hwnas.compiler.database import (DB_FILES, MANIFEST, configuration_folder, database_dir,
                                     database_parts, describe_database, load_database, publish,
                                     read_manifest, work_dir)
from hwnas.compiler.space_tuning import seed_work_dir, trials_spent
from hwnas.spaces import get_space
from hwnas.targets import load_target

pytestmark = pytest.mark.tvm

SHIPPED = Path(__file__).resolve().parents[1] / "latency_tables" / "x86-host" / "tuning-znver4"


@pytest.fixture(scope="module")
def target():
    return load_target("x86-host")


def _lines(folder: Path, name: str) -> list[str]:
    return [ln for ln in lzma.decompress((folder / f"{name}.xz").read_bytes())
            .decode().splitlines() if ln.strip()]


def _split(dest: Path, part: str, keep) -> dict[str, float]:
    """A published database of the shipped records whose workload index passes ``keep``
    (through a work folder and ``publish``, as tuning does); returns their best seconds."""
    work = dest.parent / f"work-{dest.name}-{part}"
    work.mkdir(parents=True)
    workloads, records = _lines(SHIPPED, DB_FILES[0]), _lines(SHIPPED, DB_FILES[1])
    chosen = [i for i in range(len(workloads)) if keep(i)]
    new = {old: n for n, old in enumerate(chosen)}
    (work / DB_FILES[0]).write_text("\n".join(workloads[i] for i in chosen) + "\n")
    recs = []
    for line in records:
        i, rec = json.loads(line)
        if i in new:
            recs.append(json.dumps([new[i], rec]))
    (work / DB_FILES[1]).write_text("\n".join(recs) + "\n")
    man = read_manifest(SHIPPED)
    out = dest if part == "" else dest / part
    got = publish(work, out, {"target": man["target"], "module_equality": "structural",
                              "trials": {"k": 3}, "wall_s": 60.0})
    return got["best_seconds"]


def test_configuration_folders_are_named_by_configuration():
    assert configuration_folder(get_space("ofa-mbv3-fmnist")) is None    # the default
    assert configuration_folder(get_space("ofa-mbv3-imagenet")) == "ofa-mbv3-imagenet"
    assert configuration_folder(get_space("ofa-mbv3-imagenet-w10")) == "ofa-mbv3-imagenet-w10"
    assert configuration_folder(get_space("fbnet")) == "fbnet"
    odd = configuration_folder(get_space("ofa-mbv3-imagenet", resolutions=(128, 160)))
    assert odd.startswith("ofa-mbv3-") and odd != "ofa-mbv3-imagenet"
    assert configuration_folder(get_space("ofa-mbv3")) not in (None, odd)   # class defaults


def test_tune_writes_each_configuration_in_its_own_folder(target, monkeypatch, tmp_path):
    monkeypatch.setenv("HWNAS_CACHE", str(tmp_path / "cache"))
    top = database_dir(target, for_writing=True)
    imagenet = get_space("ofa-mbv3-imagenet")
    assert database_dir(target, True, get_space("ofa-mbv3-fmnist")) == top
    assert database_dir(target, True, imagenet) == top / "ofa-mbv3-imagenet"
    assert work_dir(target) == tmp_path / "cache" / "tuning" / "x86-host"
    assert work_dir(target, imagenet) == tmp_path / "cache" / "tuning" / "x86-host-ofa-mbv3-imagenet"


def test_a_compile_opens_the_union_of_the_configurations(target, tmp_path, monkeypatch):
    monkeypatch.setenv("HWNAS_CACHE", str(tmp_path / "cache"))
    dest = tmp_path / "tuning-znver4"
    low = _split(dest, "", lambda i: i % 2 == 0)
    high = _split(dest, "ofa-mbv3-imagenet", lambda i: i % 2 == 1)
    assert database_parts(dest) == [dest, dest / "ofa-mbv3-imagenet"]
    assert not set(low) & set(high)
    db = load_database(dest, target=target)
    top = tmp_path / "shipped-top"                 # the shipped folder's own records only
    top.mkdir()
    for f in (*(f"{n}.xz" for n in DB_FILES), MANIFEST):
        shutil.copy(SHIPPED / f, top / f)
    whole = load_database(top, target=target)
    tvm_target = target.tvm()
    records = list(whole.get_all_tuning_records())
    assert len(db.get_all_tuning_records()) == len(records) == len(low) + len(high)
    for rec in records:                  # every shipped kernel is found, with the same best
        got = db.query_tuning_record(rec.workload.mod, tvm_target, "main")
        assert got is not None
        assert [float(s) for s in got.run_secs] == [float(s) for s in rec.run_secs]
    # each part alone keeps only its own records
    assert len(load_database(dest / "ofa-mbv3-imagenet", target=target)
               .get_all_tuning_records()) == len(high)
    info = describe_database(dest)
    assert set(info["configurations"]) == {"(default)", "ofa-mbv3-imagenet"}
    assert info["digest"] != describe_database(dest / "ofa-mbv3-imagenet")["digest"]


def test_only_a_configuration_folder_is_still_the_device_database(target, tmp_path, monkeypatch):
    monkeypatch.setenv("HWNAS_CACHE", str(tmp_path / "cache"))
    dest = tmp_path / "tuning-znver4"
    high = _split(dest, "ofa-mbv3-imagenet", lambda i: i < 20)
    assert database_parts(dest) == [dest / "ofa-mbv3-imagenet"]
    db = load_database(dest, target=target)
    assert len(db.get_all_tuning_records()) == len(high) == 20


def test_a_seeded_run_goes_on_with_the_published_trials(tmp_path, monkeypatch):
    monkeypatch.setenv("HWNAS_CACHE", str(tmp_path / "cache"))
    dest = tmp_path / "pub"
    dest.mkdir()
    for f in DB_FILES:                           # one configuration folder beside the records
        shutil.copy(SHIPPED / f"{f}.xz", dest / f"{f}.xz")
    man = read_manifest(SHIPPED)
    (dest / MANIFEST).write_text(json.dumps(man))
    _split(dest, "ofa-mbv3-imagenet", lambda i: i < 5)
    work = tmp_path / "work"
    seeded = seed_work_dir(work, dest)
    assert seeded["trials"] == man["trials"] and seeded["wall_s"] == man["wall_s"]
    spent = trials_spent(work, {"seeded_trials": seeded["trials"]})
    assert spent == man["trials"]                   # own records only, counted as published
    assert len((work / DB_FILES[0]).read_text().splitlines()) == man["workloads"]
    assert seed_work_dir(work, dest) == {}          # a work folder is never reseeded


def test_tuning_one_configuration_leaves_the_digest_of_another(target, tmp_path, monkeypatch):
    """A table records the digest of its own configuration's part: a configuration folder
    that appears or grows beside it leaves that digest as it was."""
    from hwnas.compiler.database import database_digest

    monkeypatch.setenv("HWNAS_CACHE", str(tmp_path / "cache"))
    dest = tmp_path / "tuning-znver4"
    small, imagenet = get_space("ofa-mbv3-fmnist"), get_space("ofa-mbv3-imagenet")
    _split(dest, "", lambda i: i % 2 == 0)
    alone = database_digest(dest, small)
    assert alone == database_digest(dest)              # one part: every reading agrees
    assert database_digest(dest, imagenet) == alone    # no part of its own yet: the union
    _split(dest, "ofa-mbv3-imagenet", lambda i: i % 4 == 1)
    first = database_digest(dest, imagenet)
    assert database_digest(dest, small) == alone and database_digest(dest) != alone
    shutil.rmtree(dest / "ofa-mbv3-imagenet")
    shutil.rmtree(tmp_path / "work-tuning-znver4-ofa-mbv3-imagenet")
    _split(dest, "ofa-mbv3-imagenet", lambda i: i % 2 == 1)    # it grew
    assert database_digest(dest, small) == alone
    assert database_digest(dest, imagenet) not in (first, alone)
    info = describe_database(dest, imagenet)
    assert info["digest_of"] == ["ofa-mbv3-imagenet"] and info["digest"] != alone


def test_a_cpu_folder_of_configuration_folders_only_is_a_transfer_source(target, tmp_path,
                                                                         monkeypatch):
    """Another CPU model's database that holds only the ImageNet configuration's folder is
    still one the new-CPU transfer times schedules from."""
    from hwnas.compiler.transfer import foreign_databases

    tables = tmp_path / "tables"
    dest = tables / "x86-host" / "tuning-cpuz" / "ofa-mbv3-imagenet"
    dest.mkdir(parents=True)
    for f in DB_FILES:
        shutil.copy(SHIPPED / f"{f}.xz", dest / f"{f}.xz")
    man = read_manifest(SHIPPED)
    man["target"] = {**man["target"], "mcpu": "cpuz"}
    (dest / MANIFEST).write_text(json.dumps(man))
    monkeypatch.setenv("HWNAS_TABLES", str(tables))
    found, skipped = foreign_databases(target)
    cpuz = [f for f in found if f.cpu == "cpuz"]
    assert len(cpuz) == 1 and cpuz[0].path == dest.parent, skipped
    assert len(cpuz[0].database.get_all_tuning_records()) == man["workloads"]


def test_a_deploy_top_up_publishes_into_its_configurations_folder(target, tmp_path,
                                                                  monkeypatch):
    """``deploy --tune`` of an ImageNet subnet adds its kernels to the configuration's folder
    and leaves the default configuration's records as they were; compiles still see both."""
    import torch

    from hwnas.compiler import top_up, tune
    from hwnas.compiler.database import database_parts

    monkeypatch.setenv("HWNAS_CACHE", str(tmp_path / "cache"))
    top = tmp_path / "tuning-znver4"
    _split(top, "", lambda i: i % 2 == 0)
    before = {f: (top / f"{f}.xz").read_bytes() for f in DB_FILES}
    calls = []

    def fake_tune(onnx_path, shapes, tgt, work, trials):   # the shipped odd records, "tuned"
        calls.append(Path(work))
        Path(work).mkdir(parents=True, exist_ok=True)
        _split(tmp_path / "made", "", lambda i: i % 2 == 1)
        for f in DB_FILES:
            (Path(work) / f).write_bytes(lzma.decompress((tmp_path / "made" / f"{f}.xz")
                                                         .read_bytes()))

    monkeypatch.setattr(tune, "tune_onnx", fake_tune)
    imagenet = get_space("ofa-mbv3-imagenet")
    got, db = top_up.top_up_database(torch.nn.Conv2d(3, 4, 1), (1, 3, 8, 8), target,
                                     str(top), 2, imagenet)
    assert got == top and calls == [work_dir(target, imagenet)]
    assert database_parts(top) == [top, top / "ofa-mbv3-imagenet"]
    assert {f: (top / f"{f}.xz").read_bytes() for f in DB_FILES} == before
    assert read_manifest(top / "ofa-mbv3-imagenet")["space"] == imagenet.config()
    assert len(db.get_all_tuning_records()) == len(_lines(SHIPPED, DB_FILES[0]))
