"""Valid input still succeeds, verb by verb, in the world of the bad-input tests (the debug
device for what would measure; nothing compiles): the checks of ``test_bad_inputs*.py`` refuse
only what is wrong."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from _bad_world import DEBUG_TARGET, ROOT, arch_string, valid_world  # noqa: F401  (fixture)
from hwnas.cli import main

ARCH = arch_string(resolutions=[128])
needs_fmnist = pytest.mark.skipif(
    not (ROOT / "checkpoints/ofa-mbv3-fmnist/supernet.pt").exists()
    or not Path("/usr/share/datasets/fashion-mnist").is_dir(),
    reason="the shipped checkpoint or Fashion-MNIST is missing")


def _ok(argv: list[str], capsys) -> str:
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def test_targets_lists_the_good_ones_past_a_broken_file(valid_world, capsys, monkeypatch):
    monkeypatch.setenv("HWNAS_TARGETS", str(valid_world / "mixed"))
    assert main(["targets"]) == 0
    out, err = capsys.readouterr()
    assert "good" in out and "x86-host" in out and "rpi4" in out
    warnings = err.strip().splitlines()
    assert len(warnings) == 1 and warnings[0].startswith("hwnas: warning:") \
        and "broken.toml" in warnings[0] and "Traceback" not in err


def test_profile_nb201_on_the_debug_device_end_to_end(valid_world, capsys):
    from hwnas.profile.table import LatencyTable

    out = _ok(["profile", "--target", "debugdev", "--space", "nb201", "--workers", "0",
               "--networks", "5"], capsys)
    table = LatencyTable.load(valid_world / "tables/debugdev/nb201.json")
    assert table.meta["coverage"]["complete"] and len(table.meta["networks"]) == 5
    assert "calibrated" in out and (valid_world / "tables/debugdev/nb201.calibrated.json").exists()


def test_profile_resumes_its_own_table(valid_world, capsys):
    path = valid_world / "t.json"
    args = ["profile", "--target", "debugdev", "--workers", "0", "--networks", "0",
            "--resolutions", "32", "--num-classes", "10", "--out", str(path)]
    _ok([*args, "--limit", "3"], capsys)
    _ok([*args, "--limit", "5", "--resume"], capsys)
    assert len(json.loads(path.read_text())["entries"]) == 5


def test_search_writes_its_outputs_and_replaces_an_earlier_search(valid_world, capsys):
    args = ["search", "--target", "toy", "--latency-ms", "5", "--objective", "mflops",
            "--option", "generations=3", "--option", "population=20"]
    _ok([*args, "--out", str(valid_world / "s")], capsys)
    assert json.loads((valid_world / "s/arch.json").read_text())["arch"].startswith("r128")
    _ok([*args, "--out", str(valid_world / "oldsearch")], capsys)
    assert (valid_world / "oldsearch/pareto.json").exists()


def test_predict_prints_the_latency(valid_world, capsys):
    assert ARCH in _ok(["predict", "--target", "toy", "--arch", ARCH, "--quantile", "0.5"],
                       capsys)


def test_export_to_the_debug_device(valid_world, capsys):
    out = valid_world / "b"
    _ok(["export", "--arch", ARCH, "--target", "debugdev", "--out", str(out)], capsys)
    assert json.loads((out / "manifest.json").read_text())["format"].startswith("hwnas-bundle/")
    _ok(["export", "--arch", ARCH, "--target", "debugdev", "--out", str(out)], capsys)  # again


def test_import_table_of_its_own_space(valid_world, capsys):
    out = _ok(["import-table", "--source", str(valid_world / "lut/ofa"), "--target", "t",
               "--out", str(valid_world / "i.json")], capsys)
    assert "coverage" in out and json.loads((valid_world / "i.json").read_text())["meta"][
        "coverage"]["complete"]


def test_train_supernet_a_few_steps(valid_world, capsys):
    out = valid_world / "ck"
    _ok(["train-supernet", "--data", "digits", "--out", str(out), "--epochs", "0.02",
         "--batch-size", "32", "--width-mult", "1.0", "--resolutions", "8",
         "--acc-samples", "0", "--acc-heldout", "0", "--threads", "1"], capsys)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["train"]["finished"] and "accuracy" in meta


@needs_fmnist
def test_deploy_on_the_debug_device(valid_world, capsys, monkeypatch):
    import hwnas.train.evaluate

    # the bundle's test accuracy over 10,000 images is what test_deploy.py checks; here the
    # point is that valid options pass every check, so a stand-in accuracy keeps it quick
    monkeypatch.setattr(hwnas.train.evaluate, "accuracy", lambda *a, **k: 0.5)
    out = _ok(["deploy", "--target", "debugdev", "--latency-ms", "5", "--max-rounds", "1",
               "--out", str(valid_world / "bundle")], capsys)
    assert "bundle" in out and (valid_world / "bundle/manifest.json").exists()


def test_tune_accepts_a_new_empty_or_earlier_database_folder(valid_world):
    from hwnas._outputs import check_output_dir

    (valid_world / "db").mkdir()
    (valid_world / "db/tuning.json").write_text(json.dumps({"format": "hwnas-tuning-db/1"}))
    (valid_world / "empty").mkdir()
    for name in ("db", "new-db", "empty"):
        assert check_output_dir(valid_world / name, "tuning") == valid_world / name


def test_debug_target_of_the_tests_is_valid(tmp_path):
    from hwnas.targets import load_target

    (tmp_path / "d.toml").write_text(DEBUG_TARGET)
    assert load_target(tmp_path / "d.toml").runtime == "debug"
