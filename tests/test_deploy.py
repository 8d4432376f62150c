"""The deploy loop on the host: real checkpoint, compile and measurement; a stand-in table.

The table here is synthetic (MAC-proportional, deliberately off by a large factor) so that the
test does not depend on a profiled table and exercises the measured correction: the first
round's prediction is wrong, the loop must still end with a measured bundle under budget.
"""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hwnas.cli import main
from hwnas.profile.table import LatencyTable
from hwnas.runtime.latency import Latency
from hwnas._data import checkpoint_dir
from hwnas.spaces import default_checkpoint

DEFAULT_CHECKPOINT = checkpoint_dir(default_checkpoint())

needs_checkpoint = pytest.mark.skipif(
    not (DEFAULT_CHECKPOINT / "accuracy_predictor.json").exists(),
    reason="shipped supernet checkpoint missing")


def _synthetic_table(path: Path, space, ms_per_mmac: float) -> None:
    from hwnas._versions import versions

    macs = space.cost_vectors()["macs"]
    meta = {"target": "x86-host", "space": space.name, "spaces": [space.config()],
            "versions": versions(), "compiler": {"tuning_dir": None}, "measured_here": True,
            "device": "synthetic (test)", "networks": []}
    # one whole network "measured" with the table: deploy re-times it before searching
    meta["networks"].append({"arch": str(space.smallest()), "median_ms": 0.5,
                             "space": space.config()})
    t = LatencyTable(meta)
    for op, m in zip(space.op_list, macs):
        v = 0.002 + ms_per_mmac * m / 1e6
        t.add(op.key, Latency(v, v * 1.02, v * 0.01, 10))
    t.save(path)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    from hwnas.deploy.loop import DeployConfig, deploy
    from hwnas.runtime import connect
    from hwnas.spaces import space_from_config
    from hwnas.targets import load_target

    tmp_path = tmp_path_factory.mktemp("deploy")
    mp = pytest.MonkeyPatch()
    mp.setenv("HWNAS_TABLES", str(tmp_path / "tables"))
    meta = json.loads((DEFAULT_CHECKPOINT / "meta.json").read_text())
    space = space_from_config(meta["space"])
    _synthetic_table(tmp_path / "tables" / "x86-host" / f"{space.name}.json", space, 0.001)
    target = load_target("x86-host")
    # the synthetic table, by name: on a CPU model with a shipped few-shot predictor, "auto"
    # would rightly prefer that predictor to a made-up table
    cfg = DeployConfig(target=target, budget_ms=25.0, out=tmp_path / "bundle",
                       runtime=connect(target), max_rounds=1, predictor="table",
                       strategy_options={"population": 40, "generations": 20})
    try:
        yield deploy(cfg), tmp_path / "bundle"
    finally:
        mp.undo()


@needs_checkpoint
@pytest.mark.tvm
def test_deploy_bundle_contents_and_loop(deployed):
    manifest, out = deployed
    names = {p.name for p in out.iterdir()}
    assert {"model.onnx", "model.so", "arch.json", "manifest.json", "report.md", "run.py",
            "pareto.png", "predicted_vs_measured.png", "sample_input.npy"} <= names
    lat = manifest["latency"]
    assert lat["measured"]["median_ms"] <= lat["budget_ms"]
    assert lat["measured"]["p90_ms"] >= lat["measured"]["median_ms"]
    assert manifest["weights"]["trained"] and 0.1 < manifest["weights"]["accuracy"] <= 1.0
    hist = manifest["deploy"]["history"]
    assert len(hist) == manifest["deploy"]["rounds"] >= 1
    ref = manifest["deploy"]["table"]["reference"]
    assert ref["table_ms"] == 0.5 and ref["measured_ms"] > 0
    assert ref["ratio"] == pytest.approx(ref["measured_ms"] / 0.5, rel=1e-3)
    assert hist[0]["predictor"].endswith("+measured")     # round 1 already corrected by it
    assert not list(out.parent.glob(".bundle*"))


@needs_checkpoint
@pytest.mark.tvm
def test_run_py_classifies_the_sample(deployed):
    manifest, out = deployed
    r = subprocess.run([sys.executable, "run.py"], cwd=out, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("class ") and "true label" in r.stdout
    x = np.load(out / "sample_input.npy")
    assert list(x.shape) == manifest["input"]["shape"]


def test_measured_correction_scales_near_measurements():
    from hwnas.predict.correction import MeasuredCorrection
    from hwnas.predict import TablePredictor
    from hwnas.spaces import get_space

    space = get_space("ofa-mbv3", resolutions=[32], num_classes=10)
    meta = {"target": "t", "space": space.name}
    table = LatencyTable(meta)
    for op, m in zip(space.op_list, space.cost_vectors()["macs"]):
        table.add(op.key, Latency(0.01 + m / 1e7, 0.011 + m / 1e7, 0.001, 10))
    base = TablePredictor(space, table)
    corr = MeasuredCorrection(base)
    g = space.sample_genomes(np.random.default_rng(0), 50)
    assert np.allclose(corr.predict_genomes(g), base.predict_genomes(g))
    corr.add(g[0], 3.0 * base.predict_genomes(g[:1])[0])      # the device is 3x slower
    assert corr.predict_genomes(g[:1])[0] == pytest.approx(3.0 * base.predict_genomes(g[:1])[0])
    assert np.all(corr.predict_upper_genomes(g) > base.predict_upper_genomes(g))


@needs_checkpoint
def test_debug_deploy_closes_the_loop_without_a_compiler(debug_device, tmp_path):
    """The whole deploy loop (table, reference, search, export, measure, correct) on the
    debug device: a bundle within the budget, every round recorded."""
    import hwnas

    out = tmp_path / "bundle"
    m = hwnas.deploy("debugdev", latency_ms=0.3, out=out, max_rounds=3)
    lat = m["latency"]
    assert lat["measured"]["median_ms"] <= 0.3 and lat["within_budget"]
    assert m["deploy"]["table"]["reused"] is False          # profiled on the way
    assert m["deploy"]["table"]["reference"]["measured_ms"] > 0
    assert 1 <= m["deploy"]["rounds"] == len(m["deploy"]["history"]) <= 3
    assert m["files"]["library"] == "model.debug.json" and (out / "model.onnx").exists()
    assert not list(tmp_path.glob(".bundle*"))
    # the bundle's top-1 is its weights' own, measured; the search's figure, predicted, beside
    acc = m["accuracy"]
    assert acc["source"] == "supernet" and acc["kind"] == "measured"
    assert acc["top1"] == m["weights"]["accuracy"]
    assert acc["search"]["source"] == "supernet" and acc["search"]["kind"] == "predicted"
    report = (out / "report.md").read_text()
    assert "measured (source supernet)" in report and "predicted (source supernet)" in report
    assert json.loads((out / "arch.json").read_text())["accuracy"] == acc


@needs_checkpoint
def test_debug_deploy_on_a_device_slower_than_its_table_converges(debug_device, tmp_path):
    """The table was measured on a quiet device; the device now runs 2x slower, and busy with
    spikes on top. Round 0 learns the factor from the reference network; every bundle is
    judged drift-corrected; within budget in at most 3 rounds."""
    from hwnas.deploy.loop import DeployConfig, deploy
    from hwnas.runtime.debug import DebugRuntime

    assert main(["profile", "--target", "debugdev", "--checkpoint", "ofa-mbv3-fmnist",
                 "--workers", "0", "--networks", "20"]) == 0
    rng = np.random.default_rng(0)
    spikes = (2.0 * (1.0 + 1.5 * (rng.random(4000) < 0.2))).tolist()
    slow = DebugRuntime(debug_device, drift=lambda i: spikes[i % 4000])
    m = deploy(DeployConfig(target=debug_device, budget_ms=0.7, out=tmp_path / "bundle",
                            runtime=slow, max_rounds=3))
    ref = m["deploy"]["table"]["reference"]
    assert ref["corrected"] and ref["scale"] == pytest.approx(2.0, rel=0.05)
    hist = m["deploy"]["history"]
    assert 1 <= len(hist) <= 3
    truth = 2.0 * DebugRuntime(debug_device).true_ms(tmp_path / "bundle" / "model.debug.json")
    lat = m["latency"]["measured"]
    assert lat["median_ms"] == pytest.approx(truth, rel=0.05) and lat["median_ms"] <= 0.7
    assert lat["raw"]["median_ms"] >= lat["median_ms"] and lat["load"] >= 1.0
    assert all("raw" in r["measured"] and "load" in r["measured"] for r in hist)


@needs_checkpoint
def test_a_table_of_the_older_format_without_a_reference_deploys_uncorrected(debug_device,
                                                                            tmp_path):
    """A table made before the reference network existed still loads and deploys: its
    bundles are measured raw and say so."""
    from hwnas.deploy.loop import DeployConfig, deploy
    from hwnas.profile import LatencyTable
    from hwnas.runtime.debug import DebugRuntime

    assert main(["profile", "--target", "debugdev", "--checkpoint", "ofa-mbv3-fmnist",
                 "--workers", "0", "--networks", "8"]) == 0
    path = tmp_path / "tables" / "debugdev" / "ofa-mbv3.json"
    data = json.loads(path.read_text())
    del data["meta"]["reference"]
    for e in data["entries"].values():
        for k in ("ratio", "raw_ms", "load"):
            e.pop(k, None)
    path.write_text(json.dumps(data))
    assert "reference" not in LatencyTable.load(path).meta
    m = deploy(DeployConfig(target=debug_device, budget_ms=0.7, out=tmp_path / "bundle",
                            runtime=DebugRuntime(debug_device), max_rounds=3))
    ref = m["deploy"]["table"]["reference"]
    assert ref["corrected"] is False and ref["measured_ms"] > 0
    assert m["latency"]["within_budget"] and m["latency"]["measured"]["corrected"] is False
    assert all(r["measured"]["corrected"] is False for r in m["deploy"]["history"])


@needs_checkpoint
def test_a_busy_device_is_not_taken_for_a_slower_one(debug_device, tmp_path, monkeypatch):
    """Another process holds a core through the whole deploy: the reference runs 1.5x its
    table time, but that is load, not the device. Round 0 keeps the table's scale (it would
    otherwise refuse or shrink every budget by 1.5x), and every bundle timing records the
    other work and is flagged contended, and judged ``contended_margin`` slower than it
    read: the bundle shipped is within budget by that margin."""
    import importlib

    from hwnas.runtime.debug import DebugRuntime

    loop = importlib.import_module("hwnas.deploy.loop")   # hwnas.deploy is also a function
    monkeypatch.setattr("hwnas.profile.deploy_timing.BUSY_WAIT_S", 0.0)
    assert main(["profile", "--target", "debugdev", "--checkpoint", "ofa-mbv3-fmnist",
                 "--workers", "0", "--networks", "20"]) == 0
    busy = DebugRuntime(debug_device, drift=lambda i: 1.5, busy=lambda i: 1.0)
    m = loop.deploy(loop.DeployConfig(target=debug_device, budget_ms=0.7,
                                      out=tmp_path / "busy", runtime=busy, max_rounds=3,
                                      contended_margin=0.25))
    ref = m["deploy"]["table"]["reference"]
    assert ref["contended"] and ref["busy_cores"] == 1.0 and ref["scale"] == 1.0
    assert ref["ratio"] == pytest.approx(1.5, rel=0.05) and "busy" in ref["scale_from"]
    hist = m["deploy"]["history"]
    assert all(r["measured"]["contended"] and r["measured"]["busy_cores"] == 1.0 for r in hist)
    assert all(r["judged_ms"] == pytest.approx(1.25 * r["measured"]["median_ms"], rel=1e-4)
               for r in hist)
    lat = m["latency"]
    assert lat["judged_ms"] <= 0.7 and lat["measured"]["median_ms"] <= 0.7 / 1.25
    report = (tmp_path / "busy" / "report.md").read_text()
    assert "judges a contended measurement 25% slower than that" in report
    # the same slowdown with nothing else running is the device's: learnt as its scale
    slow = DebugRuntime(debug_device, drift=lambda i: 1.5, busy=lambda i: 0.0)
    m = loop.deploy(loop.DeployConfig(target=debug_device, budget_ms=0.7,
                                      out=tmp_path / "slow", runtime=slow, max_rounds=3))
    ref = m["deploy"]["table"]["reference"]
    assert not ref["contended"] and ref["scale"] == pytest.approx(1.5, rel=0.05)
    assert not any(r["measured"]["contended"] for r in m["deploy"]["history"])
    assert all(r["judged_ms"] == pytest.approx(max(r["measured"]["median_ms"],
                                                   r["measured"]["raw"]["median_ms"]), rel=1e-4)
               for r in m["deploy"]["history"])
    # when no round was judged within budget, the error says what each round was judged
    from hwnas.deploy.finish import no_bundle_error
    from hwnas.deploy.records import Round
    from hwnas.profile.deploy_timing import BundleLatency

    def judged(i: int, arch: str, ms: float, judged_ms: float) -> Round:
        lat = Latency(ms, ms, 0.0, 60)
        return Round(i, arch, 0.7, "table", 0.8, measured=BundleLatency(
            lat, lat, False, "DebugRuntime", "debug", None, "raw"), judged_ms=judged_ms)

    error = no_bundle_error(0.7, "debugdev", [judged(1, "r16-a", 0.68, 0.85),
                                             judged(2, "r16-b", 0.75, 0.75)])
    assert str(error).endswith("in 2 rounds (round 1: r16-a measured 0.68 ms, judged 0.85 ms; "
                               "round 2: r16-b measured 0.75 ms)")


def test_a_bundle_is_judged_by_the_slowest_of_its_corrected_raw_and_shipped_medians():
    """Corrected to the device's quiet speed a bundle may read faster than a program runs it
    now, and TVM's timing loop pays no Python: uncontended, the raw median or the one through
    the bundle's runner decides when it is the slower; contended (raw is then the other
    work's), the corrected one with the margin; without a reference, the raw."""
    from hwnas.deploy.loop import judge
    from hwnas.profile.deploy_timing import BundleLatency

    def lat(corrected_ms, raw_ms, corrected=True, contended=False, shipped_ms=None):
        shipped = None if shipped_ms is None else Latency(shipped_ms, shipped_ms, 0.0, 20)
        return BundleLatency(Latency(corrected_ms, corrected_ms, 0.0, 60),
                             Latency(raw_ms, raw_ms, 0.0, 60), corrected, "DebugRuntime",
                             "debug", None, "A/B", busy_cores=1.0 if contended else 0.0,
                             contended=contended, shipped=shipped)

    assert judge(lat(10.0, 11.3), 0.25) == pytest.approx(11.3)
    assert judge(lat(10.0, 9.2), 0.25) == pytest.approx(10.0)
    assert judge(lat(10.0, 9.2, shipped_ms=10.8), 0.25) == pytest.approx(10.8)
    assert judge(lat(10.0, 11.3, shipped_ms=10.8), 0.25) == pytest.approx(11.3)
    assert judge(lat(10.0, 15.0, contended=True, shipped_ms=16.0), 0.25) == pytest.approx(12.5)
    assert judge(lat(10.0, 10.0, corrected=False), 0.25) == pytest.approx(10.0)
    assert judge(lat(10.0, 10.0, corrected=False, shipped_ms=10.4), 0.25) == pytest.approx(10.4)
    assert lat(10.0, 9.2, shipped_ms=10.8).to_json()["shipped"]["median_ms"] == 10.8


@needs_checkpoint
def test_a_contended_bundle_is_read_beside_anchors_that_cancel_its_size_bias(
        debug_device, tmp_path, monkeypatch):
    """Another process holds a core through the whole deploy, and it slows each network by
    its size (larger ones more, as on a real 2-core host), which the A/B ratio to the
    reference does not cancel. Each contended bundle is timed again beside three of the
    table's networks around the budget; divided by their bias at its size, its latency is
    its quiet one, and the bundle shipped is within budget by the contended margin only."""
    import importlib
    import math

    from hwnas.profile.table import table_path
    from hwnas.runtime.debug import DebugRuntime

    loop = importlib.import_module("hwnas.deploy.loop")
    monkeypatch.setattr("hwnas.profile.deploy_timing.BUSY_WAIT_S", 0.0)
    assert main(["profile", "--target", "debugdev", "--checkpoint", "ofa-mbv3-fmnist",
                 "--workers", "0", "--networks", "20"]) == 0
    ref_ms = LatencyTable.load(table_path("debugdev", "ofa-mbv3")).meta["reference"]["quiet_ms"]
    held = lambda ms: 1.0 + 0.25 * math.tanh(math.log(ms / ref_ms))   # noqa: E731
    busy = DebugRuntime(debug_device, busy=lambda i: 1.0, held=held)
    budget = round(1.6 * ref_ms, 4)
    loads, real_load = [], LatencyTable.load.__func__

    def counted_load(cls, path):
        loads.append(path)
        return real_load(cls, path)

    monkeypatch.setattr(LatencyTable, "load", classmethod(counted_load))
    m = loop.deploy(loop.DeployConfig(target=debug_device, budget_ms=budget,
                                      out=tmp_path / "busy", runtime=busy, max_rounds=3))
    assert len(loads) == 1       # the table is read once: predictor, reference and anchors
    hist = m["deploy"]["history"]
    assert all(r["measured"]["contended"] and "anchored" in r["measured"] for r in hist)
    assert all(r["judged_ms"] == pytest.approx((1 + loop.CONTENDED_MARGIN)
                                               * r["measured"]["median_ms"], rel=1e-4)
               for r in hist)
    quiet = DebugRuntime(debug_device)
    truth = quiet.true_ms(tmp_path / "busy" / "model.debug.json")
    lat = m["latency"]["measured"]
    fit = lat["anchored"]
    assert len(fit["anchors"]) == 3 and fit["read_ms"] / truth > 1.05   # what it read
    assert lat["median_ms"] == pytest.approx(truth, rel=0.03)            # what it is
    assert truth <= budget and m["latency"]["judged_ms"] <= budget
    # the anchors are the table's networks around the budget: below, at and above it
    qs = sorted(a["quiet_ms"] for a in fit["anchors"])
    assert qs[0] < budget < qs[-1]
    for a in fit["anchors"]:
        assert a["bias"] == pytest.approx(held(a["quiet_ms"]), rel=0.03)
    assert f"(anchors x{fit['bias']:.3f})" in (tmp_path / "busy" / "report.md").read_text()


@needs_checkpoint
def test_a_table_from_another_cpu_is_scaled_to_this_one_before_a_budget_is_judged(
        debug_device, tmp_path, monkeypatch):
    """``x86-host`` runs on whatever CPU the machine has. A table measured on another CPU says
    nothing of this one's speed: a budget below the table's fastest subnet but within this
    4x faster device's reach is deployed, not refused before round 0 timed the reference; and
    on a busy device its loaded speed is taken (conservative), never the table's scale."""
    import importlib
    from dataclasses import replace

    from hwnas.profile.table import table_path
    from hwnas.runtime.debug import DebugRuntime

    loop = importlib.import_module("hwnas.deploy.loop")
    monkeypatch.setattr("hwnas.profile.deploy_timing.BUSY_WAIT_S", 0.0)
    assert main(["profile", "--target", "debugdev", "--checkpoint", "ofa-mbv3-fmnist",
                 "--workers", "0", "--networks", "20"]) == 0
    path = table_path("debugdev", "ofa-mbv3")
    table = LatencyTable.load(path)
    fastest = min(r["median_ms"] for r in table.meta["networks"])
    table.meta["target_config"]["tvm"]["mcpu"] = "rocketlake"
    table.save(path)
    here = replace(debug_device, tvm_target={**debug_device.tvm_target, "mcpu": "znver5"})
    fast = DebugRuntime(here, drift=lambda i: 0.25, busy=lambda i: 0.0)
    budget = round(0.6 * fastest, 4)             # below the table's fastest, 2.4x the device's
    m = loop.deploy(loop.DeployConfig(target=here, budget_ms=budget, out=tmp_path / "fast",
                                      runtime=fast, max_rounds=3))
    ref = m["deploy"]["table"]["reference"]
    assert ref["scale"] == pytest.approx(0.25, rel=0.05) and m["latency"]["within_budget"]
    assert m["latency"]["measured"]["median_ms"] <= budget
    busy = DebugRuntime(here, drift=lambda i: 0.5, busy=lambda i: 1.0)
    m = loop.deploy(loop.DeployConfig(target=here, budget_ms=budget,
                                      out=tmp_path / "busy", runtime=busy, max_rounds=3))
    ref = m["deploy"]["table"]["reference"]
    assert ref["contended"] and ref["scale"] == pytest.approx(0.5, rel=0.05)
    assert "another" in ref["scale_from"] and m["latency"]["judged_ms"] <= budget
    # on the table's own CPU, an impossible budget is still refused before any compile
    from hwnas.errors import BudgetError

    with pytest.raises(BudgetError, match="below the fastest"):
        loop.deploy(loop.DeployConfig(target=replace(here, tvm_target={
            **here.tvm_target, "mcpu": "rocketlake"}), budget_ms=budget, out=tmp_path / "no",
            runtime=DebugRuntime(here, busy=lambda i: 0.0), max_rounds=3))


@needs_checkpoint
def test_a_round_that_agrees_with_its_prediction_ends_the_loop(debug_device, tmp_path,
                                                               monkeypatch):
    """From round 2 (after one measurement has corrected the predictor), a round within
    budget and within ``agree`` of its prediction ends the loop: more rounds would only
    re-measure noise. With ``agree=0`` only the slack rule, or the search choosing a measured
    subnet again, can stop it. Round 1's search is held to half the budget, so round 2
    chooses another subnet (a repeated one would end the loop on ``repeat`` first)."""
    import importlib
    from dataclasses import replace

    from hwnas.runtime.debug import DebugRuntime
    from hwnas.search.constraints import Constraints, LatencyBudget
    from hwnas.search.problem import SearchProblem

    loop = importlib.import_module("hwnas.deploy.loop")
    DeployConfig, deploy, real = loop.DeployConfig, loop.deploy, loop.search
    calls = []

    def first_round_at_half(strategy, problem, seed, **options):
        calls.append(seed)
        if len(calls) == 1:
            (b,) = problem.constraints.latency
            half = Constraints(latency=(LatencyBudget(b.target, b.budget_ms / 2),),
                               margin=problem.constraints.margin)
            problem = SearchProblem(problem.space, problem.objective, problem.predictors, half)
        return real(strategy, problem, seed=seed, **options)

    monkeypatch.setattr(loop, "search", first_round_at_half)
    assert main(["profile", "--target", "debugdev", "--checkpoint", "ofa-mbv3-fmnist",
                 "--workers", "0", "--networks", "20"]) == 0
    cfg = DeployConfig(target=debug_device, budget_ms=0.7, out=tmp_path / "a",
                       runtime=DebugRuntime(debug_device), max_rounds=3, slack=0.0)
    m = deploy(cfg)
    hist = m["deploy"]["history"]
    assert m["deploy"]["rounds"] == 2 and "stop" not in hist[0] and hist[1]["stop"] == "agree"
    assert hist[0]["arch"] != hist[1]["arch"]
    ratio = hist[1]["measured"]["median_ms"] / hist[1]["predicted_ms"]
    assert hist[1]["measured"]["median_ms"] <= 0.7 and abs(ratio - 1) <= 0.10
    cfg = replace(cfg, out=tmp_path / "b", agree=0.0)
    calls.clear()
    m = deploy(cfg)
    hist = m["deploy"]["history"]
    # without the agree rule the loop runs on, unless the search returns a measured subnet
    assert all(r.get("stop") in (None, "repeat") for r in hist)
    if hist[-1].get("stop") == "repeat":
        assert hist[-1]["arch"] in {r["arch"] for r in hist[:-1]}
    else:
        assert len(hist) == 3


@needs_checkpoint
def test_a_search_that_chooses_a_measured_subnet_again_ends_the_loop(debug_device, tmp_path,
                                                                     monkeypatch):
    """With the slack and agree rules off, a round whose search returns the subnet an earlier
    round already measured (within budget) ends the loop: the search has converged and a
    further round would only time the same library again."""
    import importlib

    from hwnas.runtime.debug import DebugRuntime

    loop = importlib.import_module("hwnas.deploy.loop")
    assert main(["profile", "--target", "debugdev", "--checkpoint", "ofa-mbv3-fmnist",
                 "--workers", "0", "--networks", "20"]) == 0
    first, real = [], loop.search

    def same_each_round(strategy, problem, seed, **options):
        if not first:
            first.append(real(strategy, problem, seed=seed, **options))
        return first[0]

    monkeypatch.setattr(loop, "search", same_each_round)
    deployment = importlib.import_module("hwnas.deploy.deployment")
    timed, real_measure = 0, deployment.measure_bundle

    def count_timings(*a, **k):
        nonlocal timed
        timed += 1
        return real_measure(*a, **k)

    monkeypatch.setattr(deployment, "measure_bundle", count_timings)
    m = loop.deploy(loop.DeployConfig(target=debug_device, budget_ms=0.7, out=tmp_path / "r",
                                      runtime=DebugRuntime(debug_device), max_rounds=4,
                                      slack=0.0, agree=0.0))
    hist = m["deploy"]["history"]
    assert len(hist) == 2 and hist[0]["arch"] == hist[1]["arch"]
    assert "stop" not in hist[0] and hist[1]["stop"] == "repeat"
    assert hist[1]["repeat_of"] == 1 and hist[1]["measured"] == hist[0]["measured"]
    assert m["deploy"]["chosen_round"] == 1 and m["latency"]["within_budget"]
    assert timed == 1       # the repeated subnet's library was not timed again


@needs_checkpoint
def test_once_a_round_went_over_budget_the_first_round_within_it_ends_the_loop(debug_device,
                                                                                  tmp_path):
    """The device runs the MAC-heavy work 3x slower than its table, so round 1 goes over
    budget; round 2, corrected, is within it. With the slack and agree rules off, the budget
    is now bracketed by two measured subnets and the loop stops there rather than swing
    across it."""
    from hwnas.deploy.loop import DeployConfig, deploy
    from hwnas.runtime.debug import DebugRuntime

    assert main(["profile", "--target", "debugdev", "--checkpoint", "ofa-mbv3-fmnist",
                 "--workers", "0", "--networks", "20"]) == 0
    m = deploy(DeployConfig(target=debug_device, budget_ms=0.7, out=tmp_path / "b",
                            runtime=DebugRuntime(debug_device, ms_per_mmac=0.06),
                            max_rounds=4, slack=0.0, agree=0.0))
    hist = m["deploy"]["history"]
    assert hist[0]["measured"]["median_ms"] > 0.7 and "stop" not in hist[0]
    assert len(hist) == 2 and hist[1]["stop"] == "bracket"
    assert hist[1]["measured"]["median_ms"] <= 0.7 and m["latency"]["within_budget"]


@needs_checkpoint
def test_a_round_short_of_its_budget_probes_with_half_the_margin(debug_device, tmp_path,
                                                                 monkeypatch):
    """A round within budget but short of ``slack`` makes the next round search with half the
    margin the last one used; a probe that goes over budget ends the loop with the bundle
    measured within it. (Round 2's measurement is doubled to put it over budget. The first
    round searches with a 5% margin: at the predictor's own, its subnet lay 0.5% under the
    budget corrected and 0.1% over it raw.)"""
    import importlib
    from dataclasses import replace

    from hwnas.runtime.debug import DebugRuntime

    loop = importlib.import_module("hwnas.deploy.loop")
    deployment = importlib.import_module("hwnas.deploy.deployment")
    assert main(["profile", "--target", "debugdev", "--checkpoint", "ofa-mbv3-fmnist",
                 "--workers", "0", "--networks", "20"]) == 0
    cfg = loop.DeployConfig(target=debug_device, budget_ms=0.3, out=tmp_path / "a",
                            runtime=DebugRuntime(debug_device), max_rounds=3, slack=0.0,
                            agree=0.0, margin=0.05)
    m = loop.deploy(cfg)
    hist = m["deploy"]["history"]
    assert hist[0]["measured"]["median_ms"] < 0.3 and "repeat_of" not in hist[1]
    assert "margin" not in hist[0] and 0 < hist[1]["margin"] < 0.5
    if len(hist) == 3 and "repeat_of" not in hist[2]:
        assert hist[2]["margin"] == pytest.approx(hist[1]["margin"] / 2, abs=1e-4)
    real_measure, calls = deployment.measure_bundle, []

    def second_over(*a, **k):
        lat = real_measure(*a, **k)
        calls.append(lat)
        if len(calls) == 2:
            lat = replace(lat, latency=replace(lat.latency, median_ms=2 * lat.median_ms),
                          raw=replace(lat.raw, median_ms=2 * lat.raw.median_ms))
        return lat

    monkeypatch.setattr(deployment, "measure_bundle", second_over)
    m = loop.deploy(replace(cfg, out=tmp_path / "b"))
    hist = m["deploy"]["history"]
    assert "repeat_of" not in hist[1]
    assert len(hist) == 2 and hist[1]["stop"] == "probe" and hist[1]["margin"] > 0
    assert hist[1]["measured"]["median_ms"] > 0.3 and m["deploy"]["chosen_round"] == 1
    assert m["latency"]["within_budget"] and m["arch"] == hist[0]["arch"]


@needs_checkpoint
@pytest.mark.tvm
def test_a_real_deploy_under_a_budget_that_binds(tmp_path):
    """The main path (the target's own predictor and tuning database, real TVM code, this
    host) under a budget between the smallest and the largest subnet's measured latency: the
    bundle meets it, and the budget ruled out the largest subnet."""
    from hwnas import api
    from hwnas.compiler import compile_onnx, export_library
    from hwnas.compiler.database import database_dir, load_database
    from hwnas.compiler.onnx_export import network_to_onnx
    from hwnas.profile.networks import random_input
    from hwnas.runtime import connect
    from hwnas.targets import load_target
    from hwnas.train.checkpoint import load_supernet

    target = load_target("x86-host")
    space = load_supernet(DEFAULT_CHECKPOINT).space
    runtime = connect(target)
    db = load_database(database_dir(target), target=target)

    def measured(arch, name):
        shape = space.input_shape(arch)
        onnx = network_to_onnx(space, arch, tmp_path / f"{name}.onnx")
        lib = export_library(compile_onnx(onnx, {"input": shape}, target, db).executable,
                             tmp_path / f"{name}.so", target)
        return runtime.measure(lib, {"input": random_input(shape)}).median_ms

    small, large = measured(space.smallest(), "small"), measured(space.largest(), "large")
    assert large > 1.5 * small
    # 60% of the way up: at their geometric mean the budget sat under what the predictor's p90
    # bound allows the smallest subnet when the host was slow, and deploy refused it at once
    budget = round(small + 0.6 * (large - small), 4)
    m = api.deploy("x86-host", budget, tmp_path / "bundle", max_rounds=4,
                   profile_networks=10)
    meas = m["latency"]["measured"]
    judged = m["latency"].get("judged_ms", meas["median_ms"])
    assert judged <= budget and m["arch"] != str(space.largest())
    assert m["deploy"]["rounds"] >= 1 and m["tuning"]
    # timed as a program runs it too (its runner.py, a fresh process), and judged no faster
    # (the manifest keeps judged_ms to 5 decimals, the raw median unrounded)
    slowest = max(meas["median_ms"], meas["raw"]["median_ms"], meas["shipped"]["median_ms"])
    assert meas["shipped"]["n"] > 0 and judged == pytest.approx(slowest, abs=1e-5)


@pytest.mark.tvm
def test_deploy_a_space_without_a_checkpoint_says_random_weights(tmp_path, monkeypatch):
    from hwnas.deploy.loop import DeployConfig, deploy
    from hwnas.runtime import connect
    from hwnas.spaces import get_space
    from hwnas.targets import load_target

    monkeypatch.setenv("HWNAS_TABLES", str(tmp_path / "tables"))
    space = get_space("ofa-mbv3-fmnist")
    _synthetic_table(tmp_path / "tables" / "x86-host" / f"{space.name}.json", space, 0.001)
    target = load_target("x86-host")
    cfg = DeployConfig(target=target, budget_ms=25.0, out=tmp_path / "bundle",
                       space="ofa-mbv3-fmnist", runtime=connect(target), max_rounds=1,
                       predictor="table", strategy_options={"population": 20, "generations": 5})
    manifest = deploy(cfg)
    assert manifest["weights"] == {"source": "random weights (untrained)", "trained": False,
                                   "accuracy": None}
    assert "**random weights**" in (tmp_path / "bundle" / "report.md").read_text()
    assert not (tmp_path / "bundle" / "sample_input.npy").exists()
    # no sample input: the as-shipped timing feeds its own input of the bundle's shape
    assert manifest["latency"]["measured"]["shipped"]["median_ms"] > 0


def test_deploy_refuses_a_space_and_a_checkpoint_together(tmp_path):
    from hwnas.deploy.loop import DeployConfig
    from hwnas.errors import BudgetError
    from hwnas.targets import load_target

    cfg = DeployConfig(target=load_target("x86-host"), budget_ms=5.0, out=tmp_path / "b",
                       space="ofa-mbv3-imagenet", checkpoint="ofa-mbv3-fmnist")
    with pytest.raises(BudgetError, match="a space or a checkpoint, not both"):
        cfg.validate()


def test_deploy_an_unknown_space_is_one_line(tmp_path, capsys):
    rc = main(["deploy", "--target", "x86-host", "--latency-ms", "5", "--space", "ofa-mbv3-r9",
               "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(err) == 1 and "unknown search space 'ofa-mbv3-r9'" in err[0]
