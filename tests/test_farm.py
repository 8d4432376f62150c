"""Device farm: TVM's own RPC tracker and servers on 127.0.0.1, a scheduler that spreads
operators over every free device under a key, and re-queues the work of a device that dies."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from types import SimpleNamespace

import pytest

from hwnas.cli import main
from hwnas.errors import TargetError
from hwnas.commands._fanout import plan_keys
from hwnas.farm.scheduler import DeviceMeasurement, WorkQueue
from hwnas.profile import LatencyTable
from hwnas.runtime.latency import Latency
from hwnas.runtime.protocol import merge_rounds
from hwnas.spaces import get_space

SMALL = ["profile", "--target", "x86-host", "--resolutions", "32", "--num-classes", "10",
         "--workers", "0", "--networks", "0", "--untuned"]


def _item(path: str, key: str) -> SimpleNamespace:
    return SimpleNamespace(path=path, key=key)


# ---- no device needed

def test_queue_prefers_the_loaded_library_and_waits_for_items_in_flight():
    q = WorkQueue([_item("a.so", "a0"), _item("b.so", "b0"), _item("a.so", "a1")])
    first = q.take()
    assert first.key == "a0"
    assert q.take("b.so").key == "b0"          # affinity: no second upload
    got: list = []
    waiter = threading.Thread(target=lambda: (q.take(), got.append(q.take())))
    waiter.start()                              # takes a1, then waits: a0 and b0 are in flight
    time.sleep(0.2)
    assert waiter.is_alive() and not got
    q.put_back(first)                           # a device died while timing a0
    waiter.join(timeout=5)
    assert got and got[0].key == "a0"
    for _ in range(3):
        q.done()
    assert q.take() is None and q.left == []


def test_queue_spreads_fresh_devices_over_libraries():
    q = WorkQueue([_item("a.so", "a0"), _item("a.so", "a1"), _item("b.so", "b0")])
    assert [q.take().key, q.take().key, q.take().key] == ["a0", "b0", "a1"]


def test_queue_abort_releases_waiters():
    q = WorkQueue([_item("a.so", "a0")])
    q.take()
    out: list = []
    t = threading.Thread(target=lambda: out.append(q.take()))
    t.start()
    q.abort()
    t.join(timeout=5)
    assert out == [None]


def test_measurement_records_its_device():
    m = DeviceMeasurement(Latency(1.0, 1.1, 0.01, 10), 4, 1, "127.0.0.1:9000")
    assert m.extra()["device"] == "127.0.0.1:9000" and m.extra()["number"] == 4
    merged = merge_rounds([m, m])               # rounds of a farm keep their device
    assert merged.extra()["device"] == "127.0.0.1:9000" and merged.latency.n == 20


def test_keys_map_to_targets_and_tables(tmp_path):
    plans = plan_keys(["rpi4", "jetson-orin"], None, None)
    assert [(p.key, p.target, p.out) for p in plans] == [("rpi4", "rpi4", None),
                                                         ("jetson-orin", "jetson-orin", None)]
    plans = plan_keys(["a=x86-host", "b"], "rpi4", tmp_path / "{key}.json")
    assert [(p.target, p.out.name) for p in plans] == [("x86-host", "a.json"), ("rpi4", "b.json")]
    with pytest.raises(TargetError, match="no target for key 'pixel'"):
        plan_keys(["pixel"], None, None)
    with pytest.raises(TargetError, match=r"\{key\}"):
        plan_keys(["a", "b"], "x86-host", tmp_path / "t.json")
    with pytest.raises(TargetError, match="same table"):
        plan_keys(["a", "b"], "x86-host", None)


def test_tracker_cli_errors_are_one_line(tmp_path, capsys):
    out = str(tmp_path / "t.json")
    assert main([*SMALL, "--tracker", "127.0.0.1:1", "--out", out]) == TargetError.exit_code
    assert main([*SMALL, "--tracker", "127.0.0.1:1", "--key", "k", "--out", out]) == 3
    assert main([*SMALL, "--tracker", "127.0.0.1:1", "--key", "k", "--runtime", "onnxruntime",
                 "--out", out]) == TargetError.exit_code
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 3 and all(ln.startswith("hwnas: error:") for ln in err), err
    assert "--key" in err[0] and "cannot reach RPC tracker 127.0.0.1:1" in err[1]
    assert "onnxruntime" in err[2]


# ---- a real tracker and real servers

@pytest.fixture(scope="module")
def farm():
    from hwnas.farm import start_farm

    f = start_farm(0, {"x86": 2, "alt": 1})
    try:
        yield f
    finally:
        f.stop()
    assert all(not s.alive for s in f.servers) and f.tracker.poll() is not None


def _ops(n: int) -> set[str]:
    return {op.key for op in get_space("ofa-mbv3", resolutions=[32], num_classes=10).op_list[:n]}


@pytest.mark.rpc
def test_server_killed_mid_run_is_requeued_and_the_table_completes(farm, tmp_path, capsys,
                                                                    monkeypatch):
    out = tmp_path / "t.json"
    added: list[tuple[str, str]] = []
    killed: list[str] = []
    real_add = LatencyTable.add

    def add_then_maybe_kill(self, key, latency, **extra):
        real_add(self, key, latency, **extra)
        added.append((key, extra["device"]))
        # once both devices have measured something, kill the one that is busy timing
        if not killed and len({d for _, d in added}) == 2:
            victim = next(s for s in farm.servers if s.key == "x86" and s.address != extra["device"])
            farm.kill_server(victim)
            killed.append(victim.address)

    monkeypatch.setattr(LatencyTable, "add", add_then_maybe_kill)
    code = main([*SMALL, "--limit", "6", "--batch", "3", "--tracker", farm.address,
                 "--key", "x86", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    assert killed, "the run finished before both devices had measured"
    keys = [k for k, _ in added]
    assert sorted(keys) == sorted(_ops(6))                  # none lost, none measured twice
    table = LatencyTable.load(out)
    assert set(table.entries) == _ops(6) and table.meta["coverage"]["n_measured"] == 6
    devices = {e["device"] for e in table.entries.values()}
    survivor = next(s.address for s in farm.servers if s.key == "x86" and s.address != killed[0])
    assert devices == {killed[0], survivor}
    assert f"lost: {killed[0]}" in printed                  # its pending work went back
    assert table.meta["address"] == f"tracker://{farm.address}/x86"


@pytest.mark.rpc
def test_several_keys_profile_into_one_table_each(farm, tmp_path, capsys):
    out = tmp_path / "{key}.json"
    code = main([*SMALL, "--limit", "3", "--tracker", farm.address, "--key", "x86",
                 "--key", "alt", "--parallel", "1", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    alt = next(s.address for s in farm.servers if s.key == "alt")
    x86 = {s.address for s in farm.servers if s.key == "x86"}
    devices = {}
    for key in ("x86", "alt"):
        table = LatencyTable.load(tmp_path / f"{key}.json")
        assert set(table.entries) == _ops(3)
        assert table.meta["address"].endswith(f"/{key}")
        devices[key] = {e["device"] for e in table.entries.values()}
    assert devices["alt"] == {alt}
    assert len(devices["x86"]) == 1 and devices["x86"] <= x86      # --parallel 1: one device


@pytest.mark.rpc
def test_losing_every_device_stops_with_one_line_and_keeps_the_entries(farm, tmp_path, capsys,
                                                                      monkeypatch):
    out = tmp_path / "t.json"
    real_add = LatencyTable.add
    alt = next(s for s in farm.servers if s.key == "alt")

    def add_then_kill(self, key, latency, **extra):
        real_add(self, key, latency, **extra)
        if alt.alive:
            farm.kill_server(alt)

    monkeypatch.setattr(LatencyTable, "add", add_then_kill)
    code = main([*SMALL, "--limit", "3", "--tracker", farm.address, "--key", "alt",
                 "--out", str(out)])
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("hwnas: error:")]
    assert code == 3 and len(err) == 1 and "all devices under key 'alt'" in err[0], err
    assert "resume the profile" in err[0]
    assert len(LatencyTable.load(out)) == 1


@contextmanager
def _farm_up(*args: str):
    """``hwnas farm up --port 0 ARGS`` in the background: (process, its lines up to ``use``)."""
    proc = subprocess.Popen([sys.executable, "-m", "hwnas", "farm", "up", "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            start_new_session=True)
    try:
        lines = []
        while not lines or not lines[-1].startswith("use"):
            line = proc.stdout.readline()
            assert line, f"farm up exited early: {lines}"
            lines.append(line)
        yield proc, lines
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.mark.rpc
@pytest.mark.slow
def test_farm_up_serves_until_sigterm_and_stops_everything():
    with _farm_up("--servers", "1", "--key", "demo") as (proc, lines):
        tracker = lines[0].split()[1]
        assert lines[-1].split()[1:] == ["hwnas", "profile", "--tracker", tracker, "--key",
                                         "demo", "--target", "x86-host", "..."]
        status = subprocess.run([sys.executable, "-m", "hwnas", "farm", "status", "--tracker",
                                 tracker], capture_output=True, text=True, timeout=120)
        assert status.returncode == 0 and "demo: 1 servers, 1 free" in status.stdout
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        assert "stopped" in proc.stdout.read()
        gone = subprocess.run([sys.executable, "-m", "hwnas", "farm", "status", "--tracker",
                               tracker], capture_output=True, text=True, timeout=120)
        assert gone.returncode != 0 and "cannot reach RPC tracker" in gone.stderr


@pytest.mark.rpc
@pytest.mark.tvm
@pytest.mark.slow
def test_the_readme_farm_example_profiles_through_the_tracker(tmp_path):
    """The README's farm journey, with a port of its own and a few operators: two servers
    under key x86-host, then ``hwnas profile --tracker ... --key x86-host`` (the key names the
    target) measures on them. ``--out`` keeps the table out of the data folders."""
    with _farm_up("--servers", "2", "--key", "x86-host") as (proc, lines):
        tracker = lines[0].split()[1]
        assert lines[-1].split()[1:] == ["hwnas", "profile", "--tracker", tracker, "--key",
                                         "x86-host", "..."]
        servers = set(lines[1].split(": ", 1)[1].strip().split(", "))
        out = tmp_path / "table.json"
        r = subprocess.run([sys.executable, "-m", "hwnas", "profile", "--tracker", tracker,
                            "--key", "x86-host", "--limit", "2", "--networks", "0",
                            "--workers", "0", "--out", str(out)],
                           capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, r.stderr[-2000:]
        assert "devices" in r.stdout
        table = LatencyTable.load(out)
        assert table.meta["address"] == f"tracker://{tracker}/x86-host"
        assert table.meta["target"] == "x86-host" and len(table.entries) == 2
        assert {e["device"] for e in table.entries.values()} <= servers
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0


def test_farm_up_refuses_a_key_of_a_target_that_runs_elsewhere(capsys):
    """``rpi4``'s profiles would reach servers running this machine's code: one line, and
    nothing is started."""
    assert main(["farm", "up", "--servers", "2", "--key", "rpi4", "--port", "0"]) \
        == TargetError.exit_code
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "key 'rpi4' names target 'rpi4', whose code does not run on this machine" in err
