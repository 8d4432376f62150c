"""Latency predictors: table sum, calibrated (JSON, never pickle) and few-shot (held-out device)."""
import json

import numpy as np
import pytest

from hwnas.cli import main
from hwnas.errors import HwnasError, TableError
from hwnas.predict import (PREDICTORS, CalibratedPredictor, FewShotPredictor, SourceFactors,
                           SourceMatrix, TablePredictor, TargetSamples, calibrated_file,
                           split_target)
from hwnas.profile.table import LatencyTable
from hwnas.runtime.latency import Latency
from hwnas.spaces import get_space

RES = [128, 160]


@pytest.fixture(scope="module")
def space():
    return get_space("ofa-mbv3", resolutions=RES)


def _table(space, seed: int = 0, networks: int = 20, gap=lambda s: 0.7 * s + 2.0) -> LatencyTable:
    """A table with random operator latencies and networks measured as ``gap(table sum)``."""
    rng = np.random.default_rng(seed)
    t = LatencyTable({"target": "toy", "space": space.name, "spaces": [space.config()],
                      "networks": []})
    for op in space.op_list:
        ms = float(rng.uniform(0.05, 2.0))
        t.add(op.key, Latency(ms, 1.1 * ms, 0.02 * ms, 10))
    pred = TablePredictor(space, t)
    archs = space.sample_many(rng, networks)
    sums = pred.predict(archs)
    for a, s in zip(archs, sums):
        m = float(gap(s) * rng.lognormal(0, 0.01))
        t.meta["networks"].append({"arch": str(a), "median_ms": m, "p90_ms": m, "std_ms": 0.0,
                                   "n": 10, "space": space.config()})
    return t


def test_registry_names():
    assert {"table", "calibrated", "fewshot"} <= set(PREDICTORS.names())


def test_table_missing_key_is_named(space):
    t = _table(space, networks=0)
    gone = space.op_list[7].key
    del t.entries[gone]
    with pytest.raises(TableError, match=gone.replace(".", r"\.")):
        TablePredictor(space, t)
    t2 = _table(space, networks=10)
    del t2.entries[gone]
    with pytest.raises(TableError, match=gone.replace(".", r"\.")):
        CalibratedPredictor.fit(space, t2)


def test_table_sum_matches_the_operators(space):
    t = _table(space, networks=0)
    arch = space.sample(np.random.default_rng(5))
    want = sum(t.entries[op.key]["median_ms"] for op in space.ops(arch))
    assert TablePredictor(space, t).predict([arch])[0] == pytest.approx(want)


def test_calibrated_learns_the_gap_and_bounds_it(space):
    t = _table(space, seed=1, networks=30)
    pred = CalibratedPredictor.fit(space, t)
    g = space.sample_genomes(np.random.default_rng(9), 500)
    base = TablePredictor(space, t).predict_genomes(g)
    got = pred.predict_genomes(g)
    assert np.all(np.abs(got / (0.7 * base + 2.0) - 1) < 0.05)
    assert np.all(np.abs(base / (0.7 * base + 2.0) - 1) > 0.05)      # the table alone misses
    assert np.all(pred.predict_upper_genomes(g, 0.9) > got)


def test_calibrated_needs_networks(space):
    with pytest.raises(TableError, match="measured networks"):
        CalibratedPredictor.fit(space, _table(space, networks=2))


def test_calibrated_saves_json_and_loads_identically(space, tmp_path):
    t = _table(space, seed=2)
    pred = CalibratedPredictor.fit(space, t)
    path = calibrated_file(tmp_path / "toy" / "ofa-mbv3.json", 0)
    assert path.name == "ofa-mbv3.calibrated.json"
    pred.save(path)
    raw = path.read_bytes()
    assert not raw.startswith(b"\x80")                                   # not a pickle
    data = json.loads(raw)
    assert data["kind"] == "calibrated" and data["model"]["coef"]
    back = CalibratedPredictor.load(path, space=space, table=t)
    g = space.sample_genomes(np.random.default_rng(3), 200)
    assert np.array_equal(back.predict_genomes(g), pred.predict_genomes(g))
    assert np.array_equal(back.predict_upper_genomes(g), pred.predict_upper_genomes(g))


def test_calibrated_load_refuses_bad_files(space, tmp_path):
    t = _table(space, seed=2)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(TableError, match="corrupt"):
        CalibratedPredictor.load(bad, space=space, table=t)
    path = CalibratedPredictor.fit(space, t).save(tmp_path / "ok.json")
    data = json.loads(path.read_text())
    data["kind"] = "fewshot"
    path.write_text(json.dumps(data))
    with pytest.raises(TableError, match="fewshot"):
        CalibratedPredictor.load(path, space=space, table=t)
    CalibratedPredictor.fit(space, t).save(path)
    with pytest.raises(TableError, match="fitted for space"):
        CalibratedPredictor.load(path, space=get_space("ofa-mbv3", width_mult=1.2,
                                                                       resolutions=RES), table=t)


def test_predict_is_vectorised(space):
    t = _table(space, seed=4)
    g = space.sample_genomes(np.random.default_rng(0), 10_000)
    for pred in (TablePredictor(space, t), CalibratedPredictor.fit(space, t)):
        out = pred.predict_genomes(g)
        assert out.shape == (10_000,) and np.all(out > 0)
        assert np.allclose(out[:3], [pred.predict([space.from_genome(r)])[0] for r in g[:3]])


def test_cli_predict_prints_value_and_uncertainty(space, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HWNAS_TABLES", str(tmp_path))
    t = _table(space, seed=6)
    t.save(tmp_path / "toy" / "ofa-mbv3.json")
    arch = str(space.sample(np.random.default_rng(1)))
    assert main(["predict", "--target", "toy", "--arch", arch, "--predictor", "calibrated"]) == 0
    out = capsys.readouterr().out
    assert arch in out and " ms" in out and "p90" in out and "σ" in out
    assert (tmp_path / "toy" / "ofa-mbv3.calibrated.json").exists()
    assert main(["predict", "--target", "toy", "--arch", "r128-k3.3.3.3.3-e3.3.3.3.3"]) != 0
    assert "depth 1" in capsys.readouterr().err


# ---------------------------------------------------------------------------- few-shot
def _synthetic_matrix(n_archs: int = 600, n_dev: int = 6, seed: int = 0):
    """Devices that weight three per-op costs differently (a low-rank latency world)."""
    sp = get_space("nb201")
    rng = np.random.default_rng(seed)
    g = sp.sample_genomes(rng, n_archs)
    x = sp.encode_genomes(g)
    basis = rng.uniform(0.1, 1.0, (x.shape[1], 3))
    mix = rng.uniform(0.2, 1.0, (3, n_dev))
    ms = np.exp((x @ basis) @ mix / 3) * rng.lognormal(0, 0.01, (n_archs, n_dev))
    return sp, SourceMatrix(g, tuple(f"dev{i}" for i in range(n_dev)), ms)


def test_fewshot_refuses_a_source_holding_the_target():
    sp, m = _synthetic_matrix()
    samples = TargetSamples("dev0", m.genomes[:10], m.column("dev0")[:10])
    with pytest.raises(HwnasError, match="dev0"):
        FewShotPredictor(sp, m, samples)
    with pytest.raises(HwnasError, match="dev0"):
        FewShotPredictor(sp, SourceFactors(sp, m), samples)


def test_fewshot_ranks_a_new_device_from_ten_samples():
    from scipy.stats import spearmanr

    sp, m = _synthetic_matrix()
    src, samples, test = split_target(m, "dev5", 10, seed=0)
    assert "dev5" not in src.devices and len(samples.genomes) == 10
    pred = FewShotPredictor(sp, src, samples)
    rho = spearmanr(pred.predict_genomes(m.genomes[test]), m.column("dev5")[test])[0]
    assert rho > 0.9
    assert np.all(pred.predict_upper_genomes(m.genomes[test]) > pred.predict_genomes(m.genomes[test]))


def _held_out_predictions(sp, m, device, seed, probe):
    src, samples, _ = split_target(m, device, 10, seed)
    return FewShotPredictor(sp, src, samples).predict_genomes(probe)


def test_fewshot_never_reads_the_held_out_values():
    sp, m = _synthetic_matrix()
    j = m.devices.index("dev3")
    src, samples, test = split_target(m, "dev3", 10, seed=4)
    scrambled = m.latency_ms.copy()
    scrambled[test, j] = np.random.default_rng(1).uniform(1, 1000, len(test))   # all but the k
    m2 = SourceMatrix(m.genomes, m.devices, scrambled)
    probe = m.genomes[:200]
    a = _held_out_predictions(sp, m, "dev3", 4, probe)
    b = _held_out_predictions(sp, m2, "dev3", 4, probe)
    assert np.array_equal(a, b)
    # ... while the k samples themselves do matter
    scrambled[np.setdiff1d(np.arange(len(scrambled)), test), j] *= 3.0
    c = _held_out_predictions(sp, SourceMatrix(m.genomes, m.devices, scrambled), "dev3", 4, probe)
    assert not np.allclose(a, c)


def test_fewshot_on_published_fbnet_latencies(external_dir):
    from scipy.stats import spearmanr

    from hwnas.predict.external import load_external

    m = load_external("fbnet", external_dir)
    assert m.latency_ms.shape == (5000, 27)
    keep = np.arange(0, 5000, 5)                                           # 1000 archs: fast
    m = SourceMatrix(m.genomes[keep], m.devices, m.latency_ms[keep])
    src, samples, test = split_target(m, "fpga", 10, seed=0)
    pred = FewShotPredictor(get_space("fbnet"), src, samples)
    assert spearmanr(pred.predict_genomes(m.genomes[test]), m.column("fpga")[test])[0] > 0.8


# ---------------------------------------------------------------------------- held-out file
DEBUG_SPACE = {"resolutions": [32], "num_classes": 10}


def _debug_table(tmp_path):
    """A debug-device table (with its reference network) of a small ofa-mbv3 space."""
    assert main(["profile", "--target", "debugdev", "--resolutions", "32", "--num-classes", "10",
                 "--workers", "0", "--networks", "0"]) == 0
    return LatencyTable.load(tmp_path / "tables" / "debugdev" / "ofa-mbv3.json")


def test_holdout_is_resumable_and_labelled(debug_device, tmp_path, monkeypatch):
    from hwnas.profile.holdout import Holdout, holdout_path, measure_holdout
    from hwnas.runtime.debug import DebugRuntime

    space = get_space("ofa-mbv3", **DEBUG_SPACE)
    table = _debug_table(tmp_path)
    path = holdout_path(tmp_path / "holdout" / "ofa-mbv3.json")
    real = DebugRuntime.timer
    made = {"n": 0}

    def stop_in_the_second_wave(self, *a, **k):     # reference, 3 networks, then stop
        made["n"] += 1
        if made["n"] == 5:
            raise KeyboardInterrupt
        return real(self, *a, **k)

    monkeypatch.setattr(DebugRuntime, "timer", stop_in_the_second_wave)
    with pytest.raises(KeyboardInterrupt):
        measure_holdout(space, debug_device, DebugRuntime(debug_device), path, 5, seed=7,
                        workers=0, rounds=1, table=table)
    first = Holdout.load(path)
    assert len(first.networks) == 3
    monkeypatch.setattr(DebugRuntime, "timer", real)
    h = measure_holdout(space, debug_device, DebugRuntime(debug_device), path, 5, seed=7,
                        workers=0, rounds=1, table=table)
    assert len(h.networks) == 5 and len(set(h.archs())) == 5
    assert h.networks[:3] == first.networks                 # nothing measured twice
    assert "never used to fit" in h.meta["purpose"]
    with pytest.raises(TableError, match="1 round"):   # another protocol: refused, not mixed
        measure_holdout(space, debug_device, DebugRuntime(debug_device), path, 6, seed=7,
                        workers=0, table=table)
    from dataclasses import replace

    from hwnas.profile.holdout import _mcpu

    h.meta["device"], h.meta["mcpu"] = "x86; LLVM mcpu rocketlake; 2 TVM threads", None
    assert _mcpu(h.meta) == "rocketlake"             # an older file: read off its device line
    h.save(path)
    other = replace(debug_device, tvm_target={**debug_device.tvm_target, "mcpu": "znver5"})
    with pytest.raises(TableError, match="CPU rocketlake, this is znver5"):  # never mixed
        measure_holdout(space, other, DebugRuntime(other), path, 6, seed=7, workers=0,
                        rounds=1, table=table)
    for bad in ({"retake_loaded": -2}, {"retake_unstable": 1.5}, {"retest": -1}):
        with pytest.raises(TableError, match=next(iter(bad))):    # refused, never sliced
            measure_holdout(space, debug_device, DebugRuntime(debug_device), path, 5, seed=7,
                            workers=0, rounds=1, table=table, **bad)
    assert Holdout.load(path).networks == h.networks


def test_holdout_is_drift_corrected_in_the_table_scale_and_retests(debug_device, tmp_path):
    from hwnas.profile.holdout import holdout_path, measure_holdout
    from hwnas.runtime.debug import DebugRuntime

    space = get_space("ofa-mbv3", **DEBUG_SPACE)
    table = _debug_table(tmp_path)
    quiet = DebugRuntime(debug_device)
    path = holdout_path(tmp_path / "holdout" / "ofa-mbv3.json")
    busy = DebugRuntime(debug_device, drift=lambda i: 1.0 + (i % 7 == 3) * 2.0 + 0.5)
    h = measure_holdout(space, debug_device, busy, path, 4, seed=7, workers=0, rounds=1,
                        table=table)
    assert h.meta["reference"]["quiet_ms"] == table.meta["reference"]["quiet_ms"]
    for rec in h.networks:           # corrected to the quiet device, while raw ran 1.5x slower
        assert rec["load"] > 1.3 and rec["raw_ms"] > 1.3 * rec["median_ms"]
    first = h.archs()
    h = measure_holdout(space, debug_device, quiet, path, 4, seed=7, workers=0, rounds=1,
                        table=table, retest=2)
    assert h.archs() == first                                # re-timing adds no network
    assert [r["arch"] for r in h.meta["retests"]] == first[:2]
    for r in h.meta["retests"]:
        assert r["median_ms"] == pytest.approx(r["first_ms"], rel=0.03)
        assert r["first_raw_ms"] > 1.3 * r["raw_ms"]


def test_holdout_retakes_unstable_networks_and_keeps_the_steadier_timing(debug_device,
                                                                         tmp_path):
    from hwnas.profile.holdout import Holdout, holdout_path, measure_holdout
    from hwnas.runtime.debug import DebugRuntime

    space = get_space("ofa-mbv3", **DEBUG_SPACE)
    table = _debug_table(tmp_path)
    path = holdout_path(tmp_path / "holdout" / "ofa-mbv3.json")
    spiky = DebugRuntime(debug_device, drift=lambda i: 1.0 + (i % 3 == 0) * 2.0)
    h = measure_holdout(space, debug_device, spiky, path, 4, seed=7, workers=0, rounds=1,
                        table=table)
    unstable = [n["arch"] for n in h.networks if n.get("unstable")]
    assert unstable, "the spiky reference must leave some network flagged unstable"
    before = {n["arch"]: n for n in h.networks}
    h = measure_holdout(space, debug_device, DebugRuntime(debug_device), path, 4, seed=7,
                        workers=0, rounds=1, table=table, retake_unstable=10)
    assert [r["arch"] for r in h.meta["retaken"]] == unstable   # only the flagged ones
    assert h.archs() == list(before)                         # no network added or lost
    for rec in h.networks:
        if rec["arch"] in unstable:                          # the quiet retake is steadier
            assert not rec.get("unstable") and rec["reference_spread"] < \
                before[rec["arch"]]["reference_spread"]
        else:
            assert rec == before[rec["arch"]]
    assert {r["arch"]: r for r in h.meta["retaken"]} == {a: {**before[a], "kept": "retake"}
                                                         for a in unstable}
    again = measure_holdout(space, debug_device, spiky, path, 4, seed=7, workers=0, rounds=1,
                            table=table, retake_unstable=10)   # each is retaken once
    assert len(again.meta["retaken"]) == len(unstable)
    assert Holdout.load(path).networks == again.networks


def test_holdout_retakes_loaded_networks_and_keeps_the_unloaded_timing(debug_device, tmp_path):
    from hwnas.profile.holdout import Holdout, holdout_path, measure_holdout
    from hwnas.runtime.debug import DebugRuntime

    space = get_space("ofa-mbv3", **DEBUG_SPACE)
    table = _debug_table(tmp_path)
    path = holdout_path(tmp_path / "holdout" / "ofa-mbv3.json")
    busy = DebugRuntime(debug_device, drift=lambda i: 1.6)
    h = measure_holdout(space, debug_device, busy, path, 3, seed=7, workers=0, rounds=1,
                        table=table, busy_wait_s=0)
    assert all(n["loaded"] and n["tries_loaded"] == 3 and n["load"] > 1.5 for n in h.networks)
    before = {n["arch"]: n for n in h.networks}
    busier = DebugRuntime(debug_device, drift=lambda i: 2.0)  # more loaded: the first is kept
    h = measure_holdout(space, debug_device, busier, path, 3, seed=7, workers=0, rounds=1,
                        table=table, retake_loaded=2, busy_wait_s=0)
    assert [r["kept"] for r in h.meta["retaken"]] == ["first", "first"]
    assert h.networks == list(before.values())
    h = measure_holdout(space, debug_device, DebugRuntime(debug_device), path, 3, seed=7,
                        workers=0, rounds=1, table=table, retake_loaded=10,
                        busy_wait_s=0)
    assert h.archs() == list(before)                         # no network added or lost
    assert all(not n.get("loaded") and n["load"] < 1.2 for n in h.networks)
    assert [r["kept"] for r in h.meta["retaken"][2:]] == ["retake"] * 3
    assert Holdout.load(path).networks == h.networks
