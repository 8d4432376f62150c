"""A new device from a few measured networks: the few-shot predictor's cost lines, saving and
loading it, the CSV of the user's own measurements, ``hwnas adapt`` and its refusals, the
``auto`` choice of predictor and the deploy loop's feedback."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.stats import spearmanr

from hwnas.cli import main
from hwnas.errors import DataError, TableError
from hwnas.predict import (FewShotPredictor, SourceMatrix, TablePredictor, TargetSamples,
                           feedback_for, load_predictor)
from hwnas.predict import calibrated_file
from hwnas.predict.adapt import leave_one_out, read_measurements
from hwnas.profile.table import LatencyTable
from hwnas.runtime.latency import Latency
from hwnas.spaces import get_space

SMALL_OFA = dict(resolutions=[16, 20], num_classes=10, in_chans=1)
OFA_ARGS = ["--space", "ofa-mbv3", "--resolutions", "16,20", "--num-classes", "10",
            "--in-chans", "1"]


def _line(x_train, y_train, x):
    a = np.c_[np.ones(len(x_train)), x_train]
    c, *_ = np.linalg.lstsq(a, y_train, rcond=None)
    return c[0] + c[1] * x


def _matrix(sp, n_archs=400, n_dev=5, seed=0):
    """Source devices that weight MACs, depth and traffic differently."""
    rng = np.random.default_rng(seed)
    g = sp.sample_genomes(rng, n_archs)
    costs = np.c_[sp.flops_genomes(g) / 1e6, sp.depth_genomes(g), sp.traffic_genomes(g) / 1e5]
    mix = rng.uniform(0.1, 1.0, (3, n_dev))
    ms = (costs @ mix + 0.5) * rng.lognormal(0, 0.01, (n_archs, n_dev))
    return SourceMatrix(g, tuple(f"src{i}" for i in range(n_dev)), ms)


# ---------------------------------------------------------------------------- the model
@pytest.mark.parametrize("space_name", ["nb201", "fbnet"])
def test_launch_bound_device_gets_its_depth_line(space_name):
    """Latency exactly a·depth + b (1% noise): the predictor matches the depth line within
    the noise. (Not its Spearman exactly: the line ties every arch of one depth, while the
    small weight of other cost lines orders them, at random against the noise.)"""
    sp = get_space(space_name)
    rng = np.random.default_rng(3)
    g = sp.sample_genomes(rng, 2000)
    depth = sp.depth_genomes(g).astype(float)
    truth = 0.05 * depth + 1.5
    y = truth * rng.lognormal(0, 0.01, len(g))
    train, test = np.arange(10), np.arange(10, len(g))
    samples = TargetSamples("gpu", g[train], y[train])
    for source in (None, _matrix(sp)):
        pred = FewShotPredictor(sp, source, samples)
        p = pred.predict_genomes(g[test])
        line = _line(depth[train], y[train], depth[test])
        assert np.max(np.abs(p / line - 1)) < 0.01                  # within the noise
        assert np.max(np.abs(p / truth[test] - 1)) < 0.03         # the line itself: 2%
        assert spearmanr(p, y[test])[0] > 0.85
        assert np.mean(np.abs(p / y[test] - 1) <= 0.1) >= np.mean(np.abs(line / y[test] - 1) <= 0.1)
        assert pred.summary()["family_weights"]["costs"] > 0.9


def test_saved_predictor_loads_back_with_identical_predictions(tmp_path):
    for sp, source, tables in ((get_space("nb201"), "matrix", None),
                               (get_space("ofa-mbv3", **SMALL_OFA), None, "tables")):
        rng = np.random.default_rng(1)
        g = sp.sample_genomes(rng, 12)
        y = sp.flops_genomes(g) / 1e6 * 0.01 + 0.3 * sp.depth_genomes(g) * 0.01 + 1.0
        tabs = None
        if tables:
            tabs = {"other": 1e-7 * sp.cost_vectors()["macs"] + 0.01 * (sp.traffic_vector() > 0)}
        pred = FewShotPredictor(sp, _matrix(sp) if source else None,
                                TargetSamples("dev", g, y), tables=tabs)
        path = pred.save(tmp_path / f"{sp.name}.fewshot.json", {"target": "dev"})
        raw = path.read_bytes()
        assert not raw.startswith(b"\x80") and json.loads(raw)["kind"] == "fewshot"
        back = FewShotPredictor.load(path, sp.name)
        probe = sp.sample_genomes(np.random.default_rng(2), 500)
        assert np.array_equal(back.predict_genomes(probe), pred.predict_genomes(probe))
        assert np.array_equal(back.predict_upper_genomes(probe), pred.predict_upper_genomes(probe))
        assert back.summary() == pred.summary() and back.provenance == {"target": "dev"}


def test_a_predictor_of_another_space_is_refused(tmp_path):
    sp = get_space("nb201")
    g = sp.sample_genomes(np.random.default_rng(0), 5)
    pred = FewShotPredictor(sp, None, TargetSamples("dev", g, 1.0 + sp.depth_genomes(g)))
    path = pred.save(tmp_path / "x.fewshot.json")
    with pytest.raises(TableError, match="fitted for space 'nb201', not 'fbnet'"):
        FewShotPredictor.load(path, "fbnet")
    with pytest.raises(TableError, match="fitted for space"):
        FewShotPredictor.load(path, get_space("nb201", channels=8))
    data = json.loads(path.read_text())
    data["model"]["fit"]["w_bar"] = "oops"
    path.write_text(json.dumps(data))
    with pytest.raises(TableError, match="corrupt"):
        FewShotPredictor.load(path, "nb201")


def test_feedback_refits_a_fewshot_predictor_and_corrects_others():
    sp = get_space("nb201")
    g = sp.sample_genomes(np.random.default_rng(0), 8)
    base = FewShotPredictor(sp, None, TargetSamples("dev", g, 1.0 + 0.1 * sp.depth_genomes(g)))
    fb = feedback_for(base)
    assert fb.feeds_samples and fb.n == 0
    probe = sp.sample_genomes(np.random.default_rng(1), 50)
    before = fb.predict_genomes(probe)
    new = sp.sample_genomes(np.random.default_rng(2), 1)[0]
    fb.add(new, 3.0 * float(base.predict_genomes(new[None])[0]))
    assert fb.n == 1 and len(fb.current.samples.genomes) == 9
    assert not np.allclose(fb.predict_genomes(probe), before)
    assert fb.base is base and len(base.samples.genomes) == 8          # the saved one is kept
    # what the refit still misses at the measured arch corrects it (and archs of its cost)
    refit = float(fb.current.predict_genomes(new[None])[0])
    assert refit < 2.9 * float(base.predict_genomes(new[None])[0])     # one sample of nine
    assert float(fb.predict_genomes(new[None])[0]) == pytest.approx(
        3.0 * float(base.predict_genomes(new[None])[0]), rel=1e-6)
    assert np.all(fb.predict_upper_genomes(probe) >= fb.predict_genomes(probe))
    table = LatencyTable({"target": "t", "space": "nb201"})
    for op in sp.op_list:
        table.add(op.key, Latency(0.1, 0.11, 0.01, 10))
    assert not feedback_for(TablePredictor(sp, table)).feeds_samples


# ---------------------------------------------------------------------------- the CSV
def _csv(tmp_path, text: str):
    path = tmp_path / "m.csv"
    path.write_text(text)
    return path


def test_csv_reads_rows_averages_repeats_and_skips_a_header(tmp_path):
    sp = get_space("ofa-mbv3", **SMALL_OFA)
    archs = [str(a) for a in sp.sample_many(np.random.default_rng(0), 4)]
    rows = ["arch,latency_ms,batch", f"{archs[0]},2.0,1", f"{archs[1]},3.0,1",
            "# a comment", "", f"{archs[0]},2.2,1", f"{archs[2]},5.0", f"{archs[3]},6"]
    m = read_measurements(_csv(tmp_path, "\n".join(rows) + "\n"), sp)
    assert m.archs == archs and m.duplicates == {archs[0]: 2} and m.batch == 1
    assert list(m.latency_ms) == [2.1, 3.0, 5.0, 6.0]


@pytest.mark.parametrize("row, message", [
    ("r16-k3.3-e3.3,2.0", r"m\.csv:3: 'r16-k3\.3-e3\.3' is not an arch of space 'ofa-mbv3'"),
    ("{arch},-1.5", r"m\.csv:3: latency must be a positive, finite number of ms, got -1\.5"),
    ("{arch},nan", r"m\.csv:3: latency must be a positive, finite number of ms, got nan"),
    ("{arch},fast", r"m\.csv:3: latency 'fast' is not a number"),
    ("{arch},1.0,1,extra", r"m\.csv:3: expected arch,latency_ms\[,batch\], got 4 fields"),
    ("{arch},1.0,0", r"m\.csv:3: batch must be at least 1"),
])
def test_csv_bad_rows_name_their_line(tmp_path, row, message):
    sp = get_space("ofa-mbv3", **SMALL_OFA)
    a = [str(x) for x in sp.sample_many(np.random.default_rng(0), 3)]
    text = f"{a[0]},1.0\n{a[1]},2.0\n{row.format(arch=a[2])}\n{a[2]},3.0\n"
    with pytest.raises(DataError, match=message):
        read_measurements(_csv(tmp_path, text), sp)


def test_csv_needs_three_archs_and_one_batch_size(tmp_path):
    sp = get_space("nb201")
    a = [str(x) for x in sp.sample_many(np.random.default_rng(0), 3)]
    with pytest.raises(DataError, match="2 distinct archs; few-shot adaptation needs at least 3"):
        read_measurements(_csv(tmp_path, f"{a[0]},1\n{a[1]},2\n{a[1]},2.2\n"), sp)
    with pytest.raises(DataError, match="several batch sizes"):
        read_measurements(_csv(tmp_path, f"{a[0]},1,1\n{a[1]},2,32\n{a[2]},3,1\n"), sp)
    bad = [f"{x},-1" for x in a]
    with pytest.raises(DataError, match=r"m\.csv:1: .* \(and 2 more bad rows\)"):
        read_measurements(_csv(tmp_path, "\n".join(bad)), sp)


# ---------------------------------------------------------------------------- hwnas adapt
def test_adapt_from_csv_saves_a_predictor_that_predict_uses(debug_device, tmp_path, capsys):
    sp = get_space("ofa-mbv3", **SMALL_OFA)
    archs = sp.sample_many(np.random.default_rng(0), 8)
    g = sp.to_genomes(archs)
    ms = 0.02 * sp.depth_genomes(g) + sp.flops_genomes(g) / 1e8
    lines = [f"{a},{v:.5f}" for a, v in zip(archs, ms)] + [f"{archs[0]},{ms[0] * 1.02:.5f}"]
    csv = _csv(tmp_path, "\n".join(lines))
    assert main(["adapt", "--target", "newdev", *OFA_ARGS, "--from-csv", str(csv),
                 "--sources", ""]) == 0
    out = capsys.readouterr().out
    assert "8 networks" in out and "leave-one-out" in out and "×2" in out
    path = tmp_path / "tables" / "newdev" / "ofa-mbv3.fewshot.json"
    data = json.loads(path.read_text())
    prov = data["provenance"]
    assert prov["k"] == 8 and prov["sources"] == [] and len(prov["samples"]) == 8
    assert 0 <= prov["leave_one_out"]["mean_abs_rel_error"] < 0.1
    assert data["model"]["fit"]["w_bar"] and data["model"]["samples"]["latency_ms"]
    pred = load_predictor("newdev", sp)
    assert pred.name == "fewshot" and "no latency table" in pred.selection
    assert main(["predict", "--target", "newdev", *OFA_ARGS[:2], "--arch", str(archs[1])]) == 0
    assert "fewshot" in capsys.readouterr().out


def test_adapt_refusals_write_nothing(debug_device, tmp_path, capsys):
    _check_adapt_refusals(tmp_path, capsys)


def test_adapt_refusals_are_the_same_after_the_user_imports_a_table(debug_device, external_dir,
                                                                     tmp_path, monkeypatch,
                                                                     capsys):
    """The README's Note10 import, run as a user runs it (no HWNAS_* variable), lands in the
    user data folder, where the lookup finds it, and not in the shipped tree; the tests, which
    see an empty user folder, then refuse the same adapt cases with the same single lines."""
    from conftest import USER_DATA_VARS
    from hwnas import _data
    from hwnas.profile.table import targets_with_table

    home = tmp_path / "xdg-data"
    monkeypatch.setenv("XDG_DATA_HOME", str(home))     # the user's own data folder
    shipped = _data.shipped_dir("latency_tables")
    shipped_before = sorted(p.relative_to(shipped) for p in shipped.rglob("*"))
    with monkeypatch.context() as user:                 # the user's shell
        for var in USER_DATA_VARS:
            user.delenv(var, raising=False)
        assert main(["import-table", "--source", str(external_dir / "ofa_note10_lut"),
                     "--target", "note10"]) == 0
        assert "note10" in targets_with_table("ofa-mbv3")
    assert list((home / "hwnas" / "latency_tables" / "note10").glob("ofa-mbv3*.json"))
    assert sorted(p.relative_to(shipped) for p in shipped.rglob("*")) == shipped_before
    capsys.readouterr()
    with monkeypatch.context() as fixture_only:         # what a test without a folder sees
        fixture_only.delenv("HWNAS_TABLES")
        assert "note10" not in targets_with_table("ofa-mbv3")
    _check_adapt_refusals(tmp_path, capsys)


def _check_adapt_refusals(tmp_path, capsys):
    """Each refused ``hwnas adapt`` is one line and leaves the saved predictor as it was."""
    sp = get_space("ofa-mbv3", **SMALL_OFA)
    archs = sp.sample_many(np.random.default_rng(0), 5)
    good = _csv(tmp_path, "\n".join(f"{a},{1 + i}" for i, a in enumerate(archs)))
    base = ["adapt", "--target", "newdev", *OFA_ARGS]
    assert main([*base, "--from-csv", str(good), "--sources", ""]) == 0
    path = tmp_path / "tables" / "newdev" / "ofa-mbv3.fewshot.json"
    before = path.read_bytes()
    capsys.readouterr()
    nan = tmp_path / "nan.csv"
    nan.write_text(f"{archs[0]},1\n{archs[1]},nan\n{archs[2]},3\n")
    cases = [
        ([*base, "--from-csv", str(nan)], "nan.csv:2"),
        ([*base, "--measure", "2"], "at least 3"),
        ([*base, "--from-csv", str(good), "--sources", "newdev"], "include the target"),
        (["adapt", "--target", "newdev", "--space", "ofa-mbv3", "--resolutions", "16",
          "--num-classes", "10", "--in-chans", "1", "--from-csv", str(good), "--sources", ""],
         "holds the few-shot predictor"),
        (["adapt", "--target", "newdev", "--space", "nb201", "--from-csv", str(good),
          "--sources", ""], "not an arch of space 'nb201'"),
    ]
    for argv, message in cases:
        assert main(argv) != 0, argv
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
    assert path.read_bytes() == before
    nb = tmp_path / "tables" / "newdev" / "nb201.fewshot.json"
    nb.write_bytes(before)                     # an ofa-mbv3 predictor under the nb201 name
    assert main(["predict", "--target", "newdev", "--space", "nb201", "--predictor", "fewshot",
                 "--arch", str(get_space("nb201").largest())]) != 0
    assert "fitted for space 'ofa-mbv3', not 'nb201'" in capsys.readouterr().err


def test_adapt_measures_informative_networks_on_the_debug_device(debug_device, tmp_path,
                                                                   capsys):
    from hwnas.profile.samples import cost_matrix, informative_archs

    sp = get_space("ofa-mbv3", **SMALL_OFA)
    chosen = informative_archs(sp, 6)
    assert len({str(a) for a in chosen}) == 6
    pool = sp.sample_genomes(np.random.default_rng(5), 6)
    spread = cost_matrix(sp, sp.to_genomes(chosen)).std(0)
    assert np.all(spread >= 0.8 * cost_matrix(sp, pool).std(0))   # wider than random picks
    assert main(["adapt", "--target", "debugdev", *OFA_ARGS, "--measure", "3", "--workers", "0",
                 "--sources", ""]) == 0
    out = capsys.readouterr().out
    assert "3 networks, measured on debug device" in out
    folder = tmp_path / "tables" / "debugdev"
    assert (folder / "ofa-mbv3.fewshot.json").exists()
    assert not (folder / "ofa-mbv3.samples.json").exists()        # kept only while measuring
    data = json.loads((folder / "ofa-mbv3.fewshot.json").read_text())
    assert [s["arch"] for s in data["provenance"]["samples"]] == [str(a) for a in chosen[:3]]


def test_auto_prefers_calibrated_then_the_lower_error(debug_device, tmp_path):
    sp = get_space("ofa-mbv3", **SMALL_OFA)
    folder = tmp_path / "tables" / "dev"
    table = LatencyTable({"target": "dev", "space": sp.name, "spaces": [sp.config()]})
    for op, m in zip(sp.op_list, sp.cost_vectors()["macs"]):
        table.add(op.key, Latency(0.01 + m / 1e8, 0.011 + m / 1e8, 0.001, 10))
    table.save(folder / "ofa-mbv3.json")
    assert load_predictor("dev", sp).selection.startswith("table (auto:")
    g = sp.sample_genomes(np.random.default_rng(0), 6)
    truth = TablePredictor(sp, table).predict_genomes(g)
    for scale, want in ((1.0, "table"), (3.0, "fewshot")):     # the table off by 3x: few-shot
        pred = FewShotPredictor(sp, None, TargetSamples("dev", g, scale * truth))
        pred.save(folder / "ofa-mbv3.fewshot.json", {"leave_one_out": leave_one_out(pred)})
        chosen = load_predictor("dev", sp)
        assert chosen.name == want, chosen.selection
        assert "on the few-shot's 6 networks" in chosen.selection or want == "fewshot"
        assert "on the same 6 networks" in chosen.selection or want == "table"
    assert load_predictor("dev", sp, "table").selection == "table (asked for)"
    calibrated_file(folder / "ofa-mbv3.json", 0).write_text("{}")
    assert load_predictor("dev", sp, "fewshot").name == "fewshot"
    with pytest.raises(TableError, match="not an hwnas predictor"):     # calibrated comes first
        load_predictor("dev", sp)
    with pytest.raises(TableError, match="fitted for device 'dev', not 'other'"):
        load_predictor("other", sp, "fewshot", path=folder / "ofa-mbv3.json")


def test_deploy_with_a_fewshot_predictor_profiles_nothing_and_feeds_samples(debug_device,
                                                                           tmp_path):
    from hwnas.deploy.loop import DeployConfig, deploy
    from hwnas.runtime import connect
    from hwnas.train.checkpoint import load_supernet

    import hwnas

    sp = load_supernet().space
    hwnas.adapt("debugdev", sp, measure=5, workers=0, sources=[])
    cfg = DeployConfig(target=debug_device, budget_ms=0.3, out=tmp_path / "bundle",
                       runtime=connect(debug_device), max_rounds=1, predictor="fewshot",
                       strategy_options={"population": 24, "generations": 6})
    m = deploy(cfg)
    pred = m["deploy"]["predictor"]
    assert pred["kind"] == "fewshot" and pred["feedback"]["as_samples"]
    assert pred["feedback"]["measurements_fed_back"] == m["deploy"]["rounds"] + 1  # + round 0
    assert m["deploy"]["table"]["path"] is None                  # no operator table profiled
    assert not (tmp_path / "tables" / "debugdev" / "ofa-mbv3.json").exists()
    assert m["deploy"]["history"][0]["predictor"] == "fewshot+samples"


@pytest.mark.tvm
@pytest.mark.rpc
def test_adapt_measure_3_over_a_local_rpc_server(tmp_path, monkeypatch, capsys):
    from test_profile import _kill, _start_rpc_server

    monkeypatch.setenv("HWNAS_TABLES", str(tmp_path / "tables"))
    server, port = _start_rpc_server()
    try:
        code = main(["adapt", "--target", "x86-host", "--space", "ofa-mbv3", "--resolutions",
                     "32", "--num-classes", "10", "--measure", "3", "--workers", "0",
                     "--untuned", "--rounds", "1", "--sources", "",
                     "--rpc", f"127.0.0.1:{port}"])
    finally:
        _kill(server)
    assert code == 0
    from hwnas.predict.adapt import fewshot_file
    from hwnas.targets import load_target

    # fitted on this CPU model's networks: kept in its own folder (cpu-<mcpu>/)
    path = fewshot_file("x86-host", "ofa-mbv3")
    assert path == tmp_path / "tables" / "x86-host" / f"cpu-{load_target('x86-host').cpu_slug}" \
        / "ofa-mbv3.fewshot.json"
    data = json.loads(path.read_text())
    assert data["provenance"]["k"] == 3
    assert all(s["latency_ms"] > 0 and math.isfinite(s["latency_ms"])
               for s in data["provenance"]["samples"])
    assert "rpc" in data["provenance"]["device"].lower() or "127.0.0.1" in data["provenance"]["device"]


def test_samples_are_timed_against_the_reference_and_drift_corrected(debug_device, tmp_path):
    """A device whose speed steps down halfway through the samples: each sample is timed A/B
    against the space's reference network and stored at the device's speed when it started."""
    from hwnas.profile.samples import informative_archs, measure_samples
    from hwnas.runtime.debug import DebugRuntime

    sp = get_space("ofa-mbv3", **SMALL_OFA)
    archs = informative_archs(sp, 4)
    quiet = measure_samples(sp, debug_device, DebugRuntime(debug_device, noise=0.0), archs,
                            tmp_path / "quiet.json", rounds=1, workers=0)
    stepped = DebugRuntime(debug_device, noise=0.0, drift=lambda i: 1.0 if i < 75 else 1.7)
    got = measure_samples(sp, debug_device, stepped, archs, tmp_path / "busy.json", rounds=1,
                          workers=0)
    assert max(r["load"] for r in got) > 1.5                     # it saw the step
    assert max(r["raw_ms"] / r["median_ms"] for r in got) > 1.5  # raw took it in
    for q, g in zip(quiet, got):
        assert g["median_ms"] == pytest.approx(q["median_ms"], rel=0.03)
    meta = json.loads((tmp_path / "busy.json").read_text())["meta"]
    assert meta["reference"]["quiet_ms"] > 0 and meta["reference"]["waves"]
