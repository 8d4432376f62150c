"""Profiling: tables measured through real TVM, resumable, over a real RPC server."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from hwnas.cli import main
from hwnas.errors import TableError
from hwnas.profile import LatencyTable, ProfileOptions, profile, validation
from hwnas.runtime.latency import Latency
from hwnas.runtime import Protocol, connect
from hwnas.spaces import get_space
from hwnas.targets import load_target

SMALL = ["profile", "--target", "x86-host", "--resolutions", "32", "--workers", "0", "--untuned"]


@pytest.fixture(scope="module")
def host():
    return load_target("x86-host")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_rpc_server() -> tuple[subprocess.Popen, int]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tvm.exec.rpc_server", "--host", "127.0.0.1",
                             "--port", str(port), "--port-end", str(port + 1)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.2)
    _kill(proc)
    pytest.fail("the TVM RPC server did not come up")


def _kill(proc: subprocess.Popen) -> None:
    # The server forks a worker that keeps the port open: stop the whole group.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


@pytest.mark.tvm
def test_profile_writes_a_table_with_its_provenance_and_resumes(tmp_path, host):
    out = tmp_path / "t.json"
    assert main([*SMALL, "--limit", "3", "--networks", "0", "--out", str(out)]) == 0
    t = LatencyTable.load(out)
    space = get_space("ofa-mbv3", resolutions=[32])
    assert set(t.entries) == {op.key for op in space.op_list[:3]}
    m = t.meta
    assert m["target"] == "x86-host" and m["space"] == "ofa-mbv3" and m["runtime"] == "tvm"
    assert "logical CPUs" in m["device"]
    assert {"tvm", "onnxruntime", "torch"} <= set(m["versions"])
    assert m["protocol"]["repeats"] >= 10 and m["protocol"]["min_repeat_ms"] == 1.0
    assert m["spaces"] == [space.config()] and m["coverage"]["n_measured"] == 3
    assert m["created"] and not m["coverage"]["complete"] and m["networks"] == []
    for e in t.entries.values():
        assert e["n"] >= 10 and e["number"] >= 1 and e["p90_ms"] >= e["median_ms"] > 0

    # exists without --resume: refused; with it: only the new operators and networks are measured
    assert main([*SMALL, "--limit", "5", "--networks", "1", "--out", str(out)]) != 0
    before = dict(t.entries)
    rep = profile(space, host, connect(host), out,
                  ProfileOptions(resume=True, limit=5, networks=0, workers=0))
    assert rep.n_new == 2
    t2 = LatencyTable.load(out)
    assert len(t2) == 5 and all(t2.entries[k] == v for k, v in before.items())


def _check_networks(out, space, n):
    t = LatencyTable.load(out)
    nets = t.meta["networks"]
    assert len(nets) == n and len({r["arch"] for r in nets}) == n
    for r in nets:
        assert space.parse(r["arch"]) and r["median_ms"] > 0 and r["n"] >= 10
        assert r["space"] == space.config()
    return t


@pytest.mark.tvm
def test_networks_are_measured_after_the_operators_and_kept_on_resume(tmp_path):
    """Whole subnets on the fast runtime (onnxruntime); the TVM path is the same code."""
    space = get_space("ofa-mbv3", resolutions=[32])
    out = tmp_path / "ort.json"
    small = [*SMALL, "--runtime", "onnxruntime", "--limit", "1", "--out", str(out)]
    assert main([*small, "--networks", "2", "--network-rounds", "1"]) == 0
    t = _check_networks(out, space, 2)
    assert t.meta["runtime"] == "onnxruntime" and len(t) == 1
    assert t.meta["validation"]["n"] == 0           # the table cannot price them yet
    assert t.meta["networks"][0]["network_rounds"] == 1
    # the calibration set spans the latency range: it opens with the two ends of the space
    assert [r["arch"] for r in t.meta["networks"]] == [str(space.largest()),
                                                        str(space.smallest())]
    assert main([*small, "--networks", "3", "--resume", "--network-rounds", "1"]) == 0
    t3 = _check_networks(out, space, 3)
    assert t3.meta["networks"][:2] == t.meta["networks"][:2]
    # networks timed in fewer rounds than asked are timed again on request, and only then
    assert main([*small, "--networks", "3", "--resume"]) == 0
    assert _check_networks(out, space, 3).meta["networks"] == t3.meta["networks"]
    assert main([*small, "--networks", "3", "--resume", "--remeasure-networks"]) == 0
    t5 = _check_networks(out, space, 3)
    # 5 rounds: at least 5x ``repeats`` interleaved blocks (a noisy try adds more blocks,
    # so the count is a floor, not a multiple of the first run's)
    reps = Protocol().repeats
    assert all(r["network_rounds"] == 5 and r["n"] >= 5 * reps for r in t5.meta["networks"])
    assert t5.meta["network_rounds"] == 5


@pytest.mark.slow
def test_tvm_network_is_measured_end_to_end(tmp_path, host):
    from hwnas.profile import measure_network

    space = get_space("ofa-mbv3", resolutions=[32])
    with connect(host) as rt:
        lat = measure_network(space, space.smallest(), host, rt)
    assert lat.n >= 10 and lat.median_ms > 0


def test_resume_refuses_a_table_measured_differently(tmp_path, host):
    out = tmp_path / "t.json"
    t = LatencyTable({"target": "rpi4", "space": "ofa-mbv3", "runtime": "tvm",
                      "measured_here": True})
    t.save(out)
    with pytest.raises(TableError, match="target 'rpi4'"):
        profile(get_space("ofa-mbv3", resolutions=[32]), host, connect(host), out,
                ProfileOptions(resume=True, limit=1, networks=0, workers=0))


@pytest.mark.parametrize("text", ['{"format": "hwnas-latency-table/1", "meta": {"tar',
                                  '', '[1, 2]',
                                  '{"format": "hwnas-latency-table/1", "meta": {"target": "x", '
                                  '"space": "s"}, "entries": {"k": {"median_ms": "fast"}}}'])
def test_corrupt_or_truncated_table_is_a_clear_error(tmp_path, capsys, text):
    bad = tmp_path / "t.json"
    bad.write_text(text)
    with pytest.raises(TableError, match=str(bad)):
        LatencyTable.load(bad)
    assert main([*SMALL, "--limit", "1", "--networks", "0", "--resume", "--out", str(bad)]) != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("hwnas: error:") and len(err.splitlines()) == 1
    assert bad.read_text() == text                  # never overwritten by a partial load


def test_zero_network_rounds_is_refused_before_anything_is_written(tmp_path, capsys):
    out = tmp_path / "t.json"
    assert main([*SMALL, "--network-rounds", "0", "--out", str(out)]) != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("hwnas: error:") and len(err.splitlines()) == 1
    assert "network_rounds must be an integer ≥ 1, got 0" in err
    assert not out.exists()


def test_validation_scores_the_table_sum_against_measured_networks():
    space = get_space("ofa-mbv3", resolutions=[32])
    archs = space.sample_many(np.random.default_rng(0), 2)
    t = LatencyTable({"target": "x", "space": space.name})
    for arch in archs:
        for op in space.ops(arch):
            t.add(op.key, Latency(1.0, 1.0, 0.0, 10))
    sums = [len(space.ops(a)) for a in archs]
    t.meta["networks"] = [
        {"arch": str(archs[0]), "median_ms": sums[0] * 1.05, "space": space.config()},
        {"arch": str(archs[1]), "median_ms": sums[1] * 2.0, "space": space.config()}]
    v = validation(t)
    assert v["n"] == 2 and v["within10"] == 0.5
    assert v["mape"] == pytest.approx(100 * (0.05 / 1.05 + 0.5) / 2)
    assert t.meta["networks"][0]["table_ms"] == sums[0]


def _freeze(proc: subprocess.Popen) -> None:
    """The device stops answering: its processes are stopped, their sockets stay open."""
    os.killpg(proc.pid, signal.SIGSTOP)


@pytest.mark.rpc
@pytest.mark.parametrize("lose", [_kill, _freeze], ids=["killed", "silent"])
def test_rpc_device_lost_mid_run_then_resume_completes(lose, tmp_path, capsys, monkeypatch):
    """The device dies, or stops answering with its connection open: one line naming it (the
    silent one within the per-call deadline), what was measured is kept, resume completes."""
    import hwnas.runtime.tvm_rpc as tvm_rpc

    monkeypatch.setattr(tvm_rpc, "CALL_TIMEOUT_S", 5.0)
    out = tmp_path / "rpc.json"
    # one operator per module, three modules per wave: two waves of three operators
    args = [*SMALL, "--limit", "6", "--batch", "1", "--networks", "0", "--out", str(out)]
    server, port = _start_rpc_server()
    real_save = LatencyTable.save

    def save_then_maybe_lose(self, path):        # lose the device once the first wave is saved
        res = real_save(self, path)
        if len(self.entries) == 3 and server.poll() is None:
            lose(server)
        return res

    monkeypatch.setattr(LatencyTable, "save", save_then_maybe_lose)
    t0 = time.monotonic()
    try:
        code = main([*args, "--rpc", f"127.0.0.1:{port}"])
    finally:
        _kill(server)
    assert time.monotonic() - t0 < 120
    monkeypatch.undo()
    err = capsys.readouterr().err.strip().splitlines()
    errors = [ln for ln in err if ln.startswith("hwnas: error:")]
    assert code != 0 and "Traceback" not in "\n".join(err)
    assert len(errors) == 1 and "RPC" in errors[0] and str(port) in errors[0], err
    if lose is _freeze:
        assert "stopped answering while" in errors[0] and "5 s" in errors[0], errors
    assert len(LatencyTable.load(out)) == 3
    assert LatencyTable.load(out).meta["address"] == f"rpc://127.0.0.1:{port}"
    assert LatencyTable.load(out).meta["runs"][-1]["finished"] is False

    server, port = _start_rpc_server()
    try:
        assert main([*args, "--resume", "--rpc", f"127.0.0.1:{port}"]) == 0
    finally:
        _kill(server)
    t = LatencyTable.load(out)
    assert len(t) == 6 and t.meta["coverage"]["n_measured"] == 6
    printed = capsys.readouterr().out
    assert "3 measured now" in printed and json.loads(out.read_text())["format"]
    assert t.meta["runs"][-1]["finished"] is True and t.meta["runs"][-1]["ops_measured"] == 3


def test_every_remote_call_has_a_bounded_deadline():
    import hwnas.runtime.tvm_rpc as tvm_rpc

    assert 0 < tvm_rpc.CALL_TIMEOUT_S <= 300



def test_items_of_a_wave_are_timed_interleaved_round_after_round():
    """Each round times every item of the wave once, so one item's blocks lie apart and a
    drift of the device is spread over all of them."""
    from types import SimpleNamespace

    from hwnas.profile.build import BuiltItem
    from hwnas.profile.profiler import _measure

    order: list[str] = []

    class Clock:                       # a fake device whose latency drifts over time
        def contention(self):
            return None

        def timer(self, path, inputs, func):
            def t(number, repeat):
                order.append(path)
                return [100.0 + len(order)] * repeat
            return t

    items = [BuiltItem(k, k, "main", (1, 3, 8, 8)) for k in ("a", "b")]
    got = {}
    bar = SimpleNamespace(update=lambda n: None)
    _measure(Clock(), items, Protocol(warmup=1, repeats=10), lambda it, m: got.setdefault(it.key, m),
             bar, rounds=2)
    blocks = order[4:]                 # after a warm-up and a size estimate of each
    assert blocks == ["a", "b"] * 20
    assert got["a"].latency.n == 20 and got["a"].latency.median_ms < got["b"].latency.median_ms


DEBUG = ["profile", "--target", "debugdev", "--resolutions", "32", "--workers", "0"]


def test_debug_profile_writes_resumes_and_scores_networks(debug_device, tmp_path):
    """The profile loop on the compiler-free debug runtime: operators, then whole networks,
    resumable without re-measuring anything."""
    space = get_space("ofa-mbv3", resolutions=[32])
    assert main([*DEBUG, "--limit", "10", "--networks", "0"]) == 0
    path = tmp_path / "tables" / "debugdev" / "ofa-mbv3.json"
    t = LatencyTable.load(path)
    assert set(t.entries) == {op.key for op in space.op_list[:10]}
    assert t.meta["runtime"] == "debug" and t.meta["target"] == "debugdev"
    assert main([*DEBUG, "--networks", "6"]) != 0               # exists: needs --resume
    before = dict(t.entries)
    assert main([*DEBUG, "--networks", "6", "--resume", "--network-rounds", "3"]) == 0
    t2 = LatencyTable.load(path)
    assert len(t2) == len(space.op_list) and all(t2.entries[k] == v for k, v in before.items())
    nets = t2.meta["networks"]
    assert len(nets) == 6 and all(r["network_rounds"] == 3 and r["n"] == 30 for r in nets)
    # every entry was timed against the reference network and stored drift-corrected
    ref = t2.meta["reference"]
    assert ref["quiet_ms"] > 0 and ref["arch"] and ref["waves"]
    assert all("ratio" in e and "raw_ms" in e for e in t2.entries.values())
    assert all(e["median_ms"] == pytest.approx(e["ratio"] * ref["quiet_ms"], rel=1e-3)
               for e in t2.entries.values())
    assert t2.meta["validation"]["n"] == 6 and t2.meta["coverage"]["complete"]
    # the table sum misses what the debug device models for whole networks (fusion saves
    # 10%, a fixed cost is added): the calibrated predictor has a gap to learn
    assert 0.8 < t2.meta["validation"]["bias"] < 1.2 and t2.meta["validation"]["bias"] != 1.0
    assert (path.parent / "ofa-mbv3.calibrated.json").exists()


def test_debug_profile_interrupted_keeps_every_measured_entry(debug_device, tmp_path,
                                                             monkeypatch):
    from hwnas.runtime.debug import DebugRuntime

    space = get_space("ofa-mbv3", resolutions=[32])
    calls = {"n": 0}
    real = DebugRuntime.timer

    def flaky(self, *a, **k):          # the reference, a first wave of 24 operators, then stop
        calls["n"] += 1
        if calls["n"] == 30:
            raise KeyboardInterrupt
        return real(self, *a, **k)

    monkeypatch.setattr(DebugRuntime, "timer", flaky)
    assert main([*DEBUG, "--networks", "0"]) == 130
    path = tmp_path / "tables" / "debugdev" / "ofa-mbv3.json"
    t = LatencyTable.load(path)
    assert len(t) == 24 and t.meta["runs"][-1]["finished"] is False
    monkeypatch.setattr(DebugRuntime, "timer", real)
    assert main([*DEBUG, "--networks", "0", "--resume"]) == 0
    t2 = LatencyTable.load(path)
    assert len(t2) == len(space.op_list)
    assert all(t2.entries[k] == v for k, v in t.entries.items())


def test_a_reference_that_fails_leaves_the_profile_raw_and_saying_so(debug_device, tmp_path,
                                                                     monkeypatch, capsys):
    """The reference network cannot run: one warning line, and every operator is still
    measured, raw, in a table marked uncorrected."""
    from hwnas.errors import HwnasError
    from hwnas.runtime.debug import DebugRuntime

    real = DebugRuntime.timer
    calls = {"n": 0}

    def broken_first(self, *a, **k):   # the first library timed is the reference
        calls["n"] += 1
        if calls["n"] == 1:
            raise HwnasError("library would not load")
        return real(self, *a, **k)

    monkeypatch.setattr(DebugRuntime, "timer", broken_first)
    assert main([*DEBUG, "--limit", "6", "--networks", "0"]) == 0
    said = [ln for ln in capsys.readouterr().err.splitlines() if "reference network" in ln]
    assert len(said) == 1 and "failed (library would not load)" in said[0]
    assert "uncorrected" in said[0]
    t = LatencyTable.load(tmp_path / "tables" / "debugdev" / "ofa-mbv3.json")
    assert len(t) == 6 and t.meta["corrected"] is False and "reference" not in t.meta
    assert all("ratio" not in e and e["median_ms"] > 0 for e in t.entries.values())


def test_compile_workers_end_when_their_parent_is_killed(tmp_path):
    """A run killed with SIGTERM never closes its pool: its idle workers must still go."""
    script = tmp_path / "parent.py"
    script.write_text(
        "import os, time\n"
        "from hwnas.profile.pool import BuildPool\n"
        "if __name__ == '__main__':\n"
        "    pool = BuildPool(1)\n"
        "    print(pool._executor().submit(os.getpid).result(), flush=True)\n"
        "    time.sleep(120)\n")
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        worker = int(parent.stdout.readline())
        parent.send_signal(signal.SIGTERM)
        parent.wait(timeout=30)

        def alive() -> bool:
            try:
                state = Path(f"/proc/{worker}/status").read_text()
            except OSError:
                return False
            return "\nState:\tZ" not in state

        deadline = time.monotonic() + 15
        while alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not alive()
    finally:
        parent.kill()


def test_each_cpu_model_keeps_its_own_table_beside_the_others(tmp_path, host, monkeypatch):
    """A target that runs on whichever CPU the machine has: a table measured on another CPU
    model stays where it is, this CPU's profile goes to ``cpu-<mcpu>/`` beside it, and from
    then on every lookup (and what is derived beside a table) finds this CPU's."""
    from hwnas.profile.holdout import holdout_path
    from hwnas.profile.table import table_path

    monkeypatch.setenv("HWNAS_TABLES", str(tmp_path))
    base, mine = tmp_path / host.name, tmp_path / host.name / f"cpu-{host.mcpu}"

    def table(path: Path, mcpu: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        LatencyTable({"target": host.name, "space": "ofa-mbv3", "runtime": "tvm",
                      "target_config": {"tvm": {"kind": "llvm", "mcpu": mcpu}}}).save(path)

    name = "ofa-mbv3.cpu-probe.json"            # a name no shipped table has
    assert table_path(host.name, "ofa-mbv3", ".cpu-probe", for_writing=True) == base / name
    table(base / name, "some-other-cpu")
    assert table_path(host.name, "ofa-mbv3", ".cpu-probe") == base / name
    assert table_path(host.name, "ofa-mbv3", ".cpu-probe", for_writing=True) == mine / name
    table(mine / name, host.mcpu)
    assert table_path(host.name, "ofa-mbv3", ".cpu-probe") == mine / name
    assert holdout_path(table_path(host.name, "ofa-mbv3", ".cpu-probe")).parent == mine
    assert LatencyTable.load(base / name).mcpu == "some-other-cpu"      # left as it was
    # a shared table measured on this CPU model is written where it is
    table(tmp_path / "b" / host.name / name, host.mcpu)
    monkeypatch.setenv("HWNAS_TABLES", str(tmp_path / "b"))
    assert table_path(host.name, "ofa-mbv3", ".cpu-probe", for_writing=True) == \
        tmp_path / "b" / host.name / name


def _two_resolution_table(space) -> LatencyTable:
    """Entries per resolution that disagree on the keys both resolutions share (the head), and
    pooled entries that match neither."""
    by_res = {}
    for ri, r in enumerate(space.resolutions):
        by_res[r] = {space.op_list[i].key: Latency(1.0 + ri, 1.5 + ri, 0.1, 5).to_json()
                     for i in space.op_ids_at(ri)}
    pooled = {op.key: Latency(10.0, 11.0, 0.1, 10).to_json() for op in space.op_list}
    return LatencyTable({"target": "t", "space": space.name, "spaces": [space.config()]},
                        pooled, by_res)


def test_table_format_2_keeps_per_resolution_entries_and_format_1_still_reads(tmp_path):
    from hwnas.predict.table_sum import TablePredictor
    from hwnas.profile.table import FORMAT

    space = get_space("ofa-mbv3", resolutions=[128, 160])
    shared = set(space.op_ids_at(0)) & set(space.op_ids_at(1))
    assert shared and set(space.op_ids_at(0)) != set(space.op_ids_at(1))
    t = _two_resolution_table(space)
    t.save(tmp_path / "v2.json")
    data = json.loads((tmp_path / "v2.json").read_text())
    assert data["format"] == FORMAT == "hwnas-latency-table/2" and set(data["by_resolution"]) == {"128", "160"}
    back = LatencyTable.load(tmp_path / "v2.json")
    assert back.per_resolution and back.by_resolution == t.by_resolution and back.entries == t.entries
    archs = [space.parse("r128-k33.33.33.33.33-e33.33.33.33.33"),
             space.parse("r160-k33.33.33.33.33-e33.33.33.33.33")]
    n_ops = len(space.ops(archs[0]))
    # each arch is priced from its own resolution's entries, shared keys included
    assert TablePredictor(space, back).predict(archs) == pytest.approx([n_ops * 1.0, n_ops * 2.0])
    assert TablePredictor(space, back).predict_upper_genomes(space.to_genomes(archs)) == \
        pytest.approx([n_ops * 1.5, n_ops * 2.5])
    # a table of format 1 (no per-resolution part) reads, and sums its one value per key
    old = {"format": "hwnas-latency-table/1", "meta": data["meta"], "entries": data["entries"],
           "by_resolution": data["by_resolution"]}          # ignored: /1 had no such part
    (tmp_path / "v1.json").write_text(json.dumps(old))
    v1 = LatencyTable.load(tmp_path / "v1.json")
    assert not v1.per_resolution and TablePredictor(space, v1).predict(archs) == \
        pytest.approx([n_ops * 10.0] * 2)
    v1.save(tmp_path / "v1-saved.json")                  # saved again: the current format
    assert json.loads((tmp_path / "v1-saved.json").read_text())["format"] == FORMAT


def test_per_resolution_table_names_a_missing_key_and_resolution(tmp_path):
    from hwnas.predict.table_sum import TablePredictor

    space = get_space("ofa-mbv3", resolutions=[128, 160])
    t = _two_resolution_table(space)
    key = space.op_list[int(space.op_ids_at(1)[-1])].key
    del t.by_resolution[160][key]
    with pytest.raises(TableError, match=f"lacks operator '{key}' at input resolution 160"):
        TablePredictor(space, t)
    with pytest.raises(TableError, match=r"no entries for input resolution 192; it has \[128, 160\]"):
        TablePredictor(get_space("ofa-mbv3", resolutions=[128, 192]), t)
    t.save(tmp_path / "t.json")
    text = (tmp_path / "t.json").read_text().replace('"160": {', '"16x": {', 1)
    (tmp_path / "t.json").write_text(text)
    with pytest.raises(TableError, match="by_resolution '16x' must be a positive input size"):
        LatencyTable.load(tmp_path / "t.json")
