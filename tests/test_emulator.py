"""Emulated devices (``hwnas.farm.emulator``): setup state, refusal of emulated timings, and a
real aarch64 device under qemu-user serving TVM RPC (``-m emulated``).

The emulated tests share one server per module. They need ``qemu-user-static`` and network
access to Debian's mirror and PyPI for the first setup (cached afterwards, in
``$HWNAS_CACHE/emulated/aarch64``); when either is missing they fail and say why.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hwnas.cli import main
from hwnas.errors import DeviceError, HwnasError, TableError
from hwnas.farm.emulated_state import STEPS, read_state
from hwnas.profile.table import LatencyTable
from hwnas.runtime.debug import DebugRuntime

PLAN = {"format": "f/1", "arch": "aarch64", "debian": "arm64", "python": "3.11",
        "wheels": {"apache-tvm": "0.27.0.post1", "numpy": "2.4.6"}, "qemu": "/usr/bin/q",
        "device_files": "abc"}


def _record(cache: Path, done, plan=PLAN, complete=None) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "setup.json").write_text(json.dumps({
        "plan": plan, "done": list(done),
        "complete": len(done) == len(STEPS) if complete is None else complete}))


def _finished_root(cache: Path) -> None:
    launcher = cache / "root" / "usr" / "bin" / "python3"
    launcher.parent.mkdir(parents=True, exist_ok=True)
    launcher.write_text("#!/bin/sh\n")


# ---------------------------------------------------------------------------- setup state
def test_setup_state_resumes_half_built_roots_and_redoes_what_a_changed_plan_touches(tmp_path):
    cache = tmp_path / "aarch64"
    s = read_state(cache, PLAN)
    assert not s.complete and s.next_step == "index" and s.reason == "not set up yet"
    (cache / "root.partial").mkdir(parents=True)               # killed while unpacking
    s = read_state(cache, PLAN)
    assert not s.complete and s.next_step == "index" and "half-built" in s.reason

    _record(cache, ["index", "packages"])                       # interrupted while downloading
    s = read_state(cache, PLAN)
    assert not s.complete and s.done == ("index", "packages") and s.next_step == "wheels"
    assert "half-built" in s.reason

    _record(cache, STEPS)                                       # recorded done, root missing
    s = read_state(cache, PLAN)
    assert not s.complete and s.next_step == "root" and "missing" in s.reason
    _finished_root(cache)
    assert read_state(cache, PLAN).complete

    _record(cache, STEPS, complete=False)                      # steps done, never finished
    assert not read_state(cache, PLAN).complete

    _record(cache, STEPS)
    new_tvm = {**PLAN, "wheels": {**PLAN["wheels"], "apache-tvm": "0.28.0"}}
    s = read_state(cache, new_tvm)                             # the host's TVM changed
    assert s.done == ("index", "packages") and s.next_step == "wheels"
    assert "apache-tvm changes from 0.27.0.post1 to 0.28.0" in s.reason
    s = read_state(cache, {**PLAN, "qemu": "/usr/local/bin/q"})  # another emulator: root only
    assert s.done == ("index", "packages", "wheels") and s.next_step == "root"
    s = read_state(cache, {**PLAN, "python": "3.12"})
    assert s.done == ("index",)

    (cache / "setup.json").write_text("{not json")
    assert read_state(cache, PLAN).next_step == "index"


def test_an_interrupted_setup_resumes_at_the_step_it_stopped_in(tmp_path, monkeypatch):
    """The steps' order and bookkeeping, with stand-ins for the downloads and the root."""
    from hwnas.farm import emulated_root

    qemu = tmp_path / "bin" / "qemu-aarch64-static"
    qemu.parent.mkdir()
    qemu.write_text("#!/bin/sh\n")
    qemu.chmod(0o755)
    monkeypatch.setenv("PATH", str(qemu.parent))
    calls: list[str] = []
    stop_at = {"wheels"}

    def fake(step):
        def run(arch, cache, plan, record):
            calls.append(step)
            if step in stop_at:
                stop_at.discard(step)
                raise KeyboardInterrupt            # killed in the middle of the download
            if step == "root":
                _finished_root(cache)
                return {"device": {"machine": "aarch64", "python": "3.11", "tvm": "x"}}
            return {f"{step}_bytes": 1}
        return run

    monkeypatch.setattr(emulated_root, "_STEP_FUNCS", {s: fake(s) for s in STEPS})
    cache = tmp_path / "cache"
    with pytest.raises(KeyboardInterrupt):
        emulated_root.ensure_root("aarch64", cache)
    assert calls == ["index", "packages", "wheels"]
    assert not (cache / "root").exists()
    root = emulated_root.ensure_root("aarch64", cache)          # completes, from the wheels
    assert calls[3:] == ["wheels", "root"] and not root.cached
    assert root.device["machine"] == "aarch64" and root.python.is_file()
    again = emulated_root.ensure_root("aarch64", cache)         # cached: nothing runs
    assert again.cached and len(calls) == 5
    record = json.loads((cache / "setup.json").read_text())
    assert record["complete"] and record["index_bytes"] == 1 and set(record["seconds"]) == set(STEPS)


def test_missing_qemu_is_one_line_naming_the_debian_package(tmp_path, monkeypatch, capsys):
    from hwnas.farm import ensure_root

    monkeypatch.setenv("PATH", str(tmp_path))                   # no qemu-aarch64-static here
    with pytest.raises(DeviceError, match="Debian package qemu-user-static"):
        ensure_root("aarch64", tmp_path / "cache")
    assert not (tmp_path / "cache").exists()                    # nothing half-made
    assert main(["device", "emulate", "--setup-only", "--cache", str(tmp_path / "c")]) == 3
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and "qemu-user-static" in err[0] and err[0].startswith("hwnas: error:")
    assert main(["device", "emulate", "--arch", "sparc64"]) == 2
    assert "aarch64" in capsys.readouterr().err


def test_library_architecture_is_read_from_its_elf_header(tmp_path):
    from hwnas.runtime.elf import elf_machine, same_machine

    assert elf_machine(sys.executable) == os.uname().machine
    arm = bytearray(64)
    arm[:6] = b"\x7fELF\x02\x01"
    arm[18:20] = (183).to_bytes(2, "little")
    (tmp_path / "a.so").write_bytes(bytes(arm))
    (tmp_path / "m.tar").write_bytes(b"not an elf file at all")
    assert elf_machine(tmp_path / "a.so") == "aarch64"
    assert elf_machine(tmp_path / "m.tar") is None and elf_machine(tmp_path / "none") is None
    assert same_machine("arm64", "aarch64") and not same_machine("x86_64", "aarch64")


def test_device_info_reports_this_machine_when_not_emulated(monkeypatch):
    from hwnas.farm import device_info

    monkeypatch.delenv("HWNAS_EMULATOR", raising=False)
    info = device_info.info()
    assert info["machine"] == os.uname().machine and info["emulator"] is None
    assert info["cpu"] and not info["cpu"].isdigit()


# ---------------------------------------------------------------------------- emulated timings
DEBUG = ["profile", "--target", "debugdev", "--resolutions", "32", "--workers", "0",
         "--networks", "0"]


@pytest.fixture()
def emulated_debug(debug_device, monkeypatch):
    """The debug device, reporting that it is an emulator."""
    monkeypatch.setattr(DebugRuntime, "emulator", property(lambda self: "qemu-test 1.0"))
    return debug_device


def test_emulated_tables_are_marked_and_refused_unless_allowed(emulated_debug, tmp_path, capsys,
                                                              monkeypatch):
    import hwnas

    assert main(DEBUG) == 0
    path = tmp_path / "tables" / "debugdev" / "ofa-mbv3.json"
    meta = LatencyTable.load(path).meta
    assert meta["emulated"] is True and meta["emulator"] == "qemu-test 1.0"
    space = hwnas.get_space("ofa-mbv3", resolutions=[32])
    with pytest.raises(TableError, match=r"emulated device \(qemu-test 1.0\)"):
        hwnas.load_predictor("debugdev", space)
    assert hwnas.load_predictor("debugdev", space, allow_emulated=True).name == "table"
    with pytest.raises(TableError, match="emulated"):
        hwnas.search("debugdev", 50.0, space=space, objective="mflops")
    best = hwnas.search("debugdev", 50.0, space=space, objective="mflops", allow_emulated=True,
                        generations=3, population=16)
    assert best["arch"]

    capsys.readouterr()
    args = ["search", "--target", "debugdev", "--latency-ms", "50", "--objective", "mflops",
            "--out", str(tmp_path / "s"), "-O", "generations=3", "-O", "population=16"]
    assert main(args) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and "emulated" in err[0] and "--" not in err[0]   # no flag named
    assert main([*args, "--allow-emulated"]) == 0

    monkeypatch.setattr(DebugRuntime, "emulator", property(lambda self: None))
    assert main([*DEBUG, "--resume"]) == 2                      # real and emulated never mix
    assert "measured on an emulated device" in capsys.readouterr().err


def test_deploy_refuses_an_emulated_device_at_once_unless_allowed(emulated_debug, tmp_path):
    import hwnas

    with pytest.raises(DeviceError, match="is emulated"):
        hwnas.deploy("debugdev", latency_ms=1.0, out=tmp_path / "b")
    # refused before profiling: no table written (the tables folder deploy writes into is
    # created up front when it does not exist yet; it stays empty)
    assert not [p for p in (tmp_path / "tables").rglob("*") if p.is_file()]


def test_report_says_when_latencies_are_an_emulators(tmp_path):
    from hwnas.deploy.report import emulation_line, write_report

    measured = {"median_ms": 9.0, "p90_ms": 9.5, "std_ms": 0.2, "n": 10, "device": "d",
                "emulated": True, "emulator": "qemu-aarch64-static 7.2"}
    manifest = {"arch": "a", "target": {"name": "rpi4"}, "weights": {"accuracy": None},
                "latency": {"measured": measured, "predicted_ms": 8.0, "predictor": "table"}}
    rounds = [{"arch": "a", "predicted_ms": 8.0, "measured": measured}]
    text = write_report(tmp_path, manifest, rounds, 10.0).read_text()
    assert "Emulated device" in text and "qemu-aarch64-static 7.2" in text and "rpi4" in text
    manifest["latency"]["measured"] = {**measured, "emulated": False, "emulator": None}
    assert emulation_line(manifest) is None


def test_a_real_table_is_never_replaced_by_an_emulated_device(debug_device, tmp_path,
                                                              monkeypatch):
    from hwnas.deploy.table_reuse import ensure_table
    from hwnas.runtime import connect
    from hwnas.spaces import get_space

    assert main(DEBUG) == 0                                     # a real (debug) device's table
    space = get_space("ofa-mbv3", resolutions=[32])
    monkeypatch.setattr(DebugRuntime, "emulator", property(lambda self: "qemu-test 1.0"))
    with pytest.raises(TableError, match="real device"):
        ensure_table(debug_device, space, connect(debug_device), None, 0)


# ---------------------------------------------------------------------------- a real emulator
TINY = ("ofa-mbv3", {"resolutions": [16], "num_classes": 10, "in_chans": 1})


@pytest.fixture(scope="module")
def device():
    from hwnas.farm import start_emulated_device

    try:
        dev = start_emulated_device("aarch64")
    except HwnasError as exc:
        pytest.fail(f"the emulated aarch64 device could not be started (CI installs "
                    f"qemu-user-static and reaches Debian's mirror and PyPI): {exc}")
    try:
        yield dev
    finally:
        dev.stop()
    assert not dev.alive


def _tiny_libraries(tmp_path: Path) -> dict[str, Path]:
    """A 3x3 convolution compiled for this machine and for the rpi4 (aarch64)."""
    import torch

    from hwnas.compiler import compile_onnx, export_library, library_suffix
    from hwnas.compiler.onnx_export import INPUT_NAME, export_onnx
    from hwnas.targets import load_target

    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU()).eval()
    onnx_path = export_onnx(model, (1, 1, 8, 8), tmp_path / "conv.onnx")
    out = {}
    for name in ("x86-host", "rpi4"):
        target = load_target(name)
        compiled = compile_onnx(onnx_path, {INPUT_NAME: (1, 1, 8, 8)}, target, None)
        out[name] = export_library(compiled.executable,
                                   tmp_path / f"conv-{name}{library_suffix(target)}", target)
    return out


@pytest.mark.emulated
def test_bundle_runs_on_the_emulated_device_as_in_onnxruntime(device, tmp_path):
    import hwnas
    from hwnas.deploy.run_script import write_run_scripts

    space = hwnas.get_space(TINY[0], **TINY[1])
    arch = space.smallest()
    runtime = hwnas.connect("rpi4", rpc=device.address)
    try:
        m = hwnas.export(str(arch), "rpi4", tmp_path / "bundle", space=space, tuning_db=None,
                         runtime=runtime)
    finally:
        runtime.close()
    assert m["parity"]["tvm_ran_on"] == f"rpc://{device.address}"
    assert m["parity"]["tvm_vs_onnxruntime_max_abs"] <= 1e-4
    measured = m["latency"]["measured"]
    assert measured["emulated"] is True and "qemu-aarch64" in measured["emulator"]
    assert "emulated: aarch64" in measured["device"]

    bundle = tmp_path / "bundle"                                # run.py on the device's Python
    write_run_scripts(bundle)
    np.save(bundle / "sample_input.npy",
            np.random.default_rng(0).standard_normal(m["input"]["shape"]).astype("float32"))
    out = subprocess.run([str(device.root.python), "run.py"], cwd=bundle, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    import onnxruntime as ort                                   # as the host classifies it

    x = np.load(bundle / "sample_input.npy")
    logits = ort.InferenceSession(str(bundle / "model.onnx")).run(None, {"input": x})[0][0]
    prob = np.exp(logits - logits.max())
    prob /= prob.sum()
    top = int(prob.argmax())
    assert out.stdout.startswith(f"class {top} ") and f"p={prob[top]:.3f}" in out.stdout


@pytest.mark.emulated
def test_profile_over_the_emulated_device_is_marked_and_refused(device, tmp_path, monkeypatch,
                                                                capsys):
    monkeypatch.setenv("HWNAS_TABLES", str(tmp_path / "tables"))
    args = ["profile", "--target", "rpi4", "--rpc", device.address, "--resolutions", "16",
            "--num-classes", "10", "--in-chans", "1", "--limit", "3", "--networks", "0",
            "--workers", "0", "--untuned"]
    assert main(args) == 0
    table = LatencyTable.load(tmp_path / "tables" / "rpi4" / "ofa-mbv3.json")
    assert len(table) == 3 and table.meta["emulated"] is True
    assert "qemu-aarch64-static" in table.meta["emulator"]
    assert "emulated: aarch64" in table.meta["device"]
    capsys.readouterr()
    assert main(["predict", "--target", "rpi4", "--arch", str(_tiny_space().smallest())]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "emulated device" in err[0]


def _tiny_space():
    from hwnas.spaces import get_space

    return get_space(TINY[0], **TINY[1])


@pytest.mark.emulated
def test_a_library_of_another_architecture_is_one_line_and_the_server_survives(device,
                                                                               tmp_path):
    from hwnas.runtime import connect
    from hwnas.targets import load_target

    libs = _tiny_libraries(tmp_path)
    x = {"input": np.random.default_rng(0).standard_normal((1, 1, 8, 8)).astype("float32")}
    rt = connect(load_target("rpi4"), rpc=device.address)
    try:
        with pytest.raises(DeviceError) as err:                 # caught before the upload
            rt.run(libs["x86-host"], x)
        msg = str(err.value)
        assert "\n" not in msg and "built for x86_64" in msg and "is aarch64" in msg
        rt.device_info = {}                                     # as a stock server: it tries
        with pytest.raises(DeviceError) as err:
            rt.run(libs["x86-host"], x)
        msg = str(err.value)
        assert "\n" not in msg and "failed loading" in msg and "lost" not in msg
        assert rt.run(libs["rpi4"], x)[0].shape == (1, 4, 6, 6)   # same session still serves
    finally:
        rt.close()
    rt = connect(load_target("rpi4"), rpc=device.address)      # and so does the server
    try:
        assert rt.run(libs["rpi4"], x)[0].shape == (1, 4, 6, 6) and device.alive
    finally:
        rt.close()


@pytest.mark.emulated
def test_emulated_server_killed_mid_profile_resumes_without_losing_entries(device, tmp_path,
                                                                          capsys, monkeypatch):
    from hwnas.farm import start_emulated_device

    out = tmp_path / "t.json"
    base = ["profile", "--target", "rpi4", "--resolutions", "16", "--num-classes", "10",
            "--in-chans", "1", "--limit", "6", "--batch", "1", "--networks", "0",
            "--workers", "0", "--untuned", "--out", str(out)]
    victim = start_emulated_device("aarch64")
    real_save = LatencyTable.save

    def save_then_maybe_kill(self, path):       # kill it once the first wave is measured
        res = real_save(self, path)
        if self.entries and victim.alive:
            victim.kill()
        return res

    monkeypatch.setattr(LatencyTable, "save", save_then_maybe_kill)
    try:
        code = main([*base, "--rpc", victim.address])
    finally:
        victim.stop()
    monkeypatch.undo()
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("hwnas: error:")]
    assert code == 3 and len(err) == 1 and victim.address in err[0], err
    first = LatencyTable.load(out)
    assert 0 < len(first) < 6 and first.meta["runs"][-1]["finished"] is False

    assert main([*base, "--resume", "--rpc", device.address]) == 0   # another emulated device
    table = LatencyTable.load(out)
    assert len(table) == 6 and table.meta["emulated"] is True
    assert all(table.entries[k] == v for k, v in first.entries.items())  # nothing lost or redone
    assert table.meta["runs"][-1]["ops_measured"] == 6 - len(first)


@pytest.mark.emulated
@pytest.mark.slow
def test_device_emulate_serves_until_sigterm_and_stops_its_process_group():
    proc = subprocess.Popen([sys.executable, "-m", "hwnas", "device", "emulate", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            start_new_session=True)
    try:
        lines: list[str] = []
        while not lines or not lines[-1].startswith("use"):
            line = proc.stdout.readline()
            assert line, f"device emulate exited early: {lines}"
            lines.append(line)
        server = next(ln.split()[1] for ln in lines if ln.startswith("server"))
        host, _, port = server.rpartition(":")
        socket.create_connection((host, int(port)), timeout=5).close()
        assert "--allow-emulated" in lines[-1] and "rpi4" in lines[-1]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        assert "stopped" in proc.stdout.read()
        with pytest.raises(OSError):
            socket.create_connection((host, int(port)), timeout=5).close()
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
