"""The bad inputs that used to cost a user their work: an ``--out`` that swapped away the
user's files, a silent device that hung forever, a resume that crashed or silently started
afresh, two runs into one folder that both said they succeeded, a bool taken for a number,
environment folders silently ignored, a CSV averaged into nonsense, a tuning database
emptied, SIGTERM leaving temporary folders. Each is refused with one line (or now works), and
nothing the user had is lost.

The world the cases run in is ``_bad_world.py``.
"""
from __future__ import annotations

import json
import lzma
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from _bad_world import (ROOT, Case, arch_string, check_refused, snapshot, valid_world,  # noqa: F401
                        world)
from hwnas.cli import main
from hwnas.errors import HwnasError

ARCH = arch_string(resolutions=[128])
SEARCH = "search --target toy --latency-ms 5 --objective mflops --option generations=2 " \
         "--option population=10"
EXPORT = f"export --arch {ARCH} --target debugdev"


def _write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def _run(argv: str, w: Path, capsys) -> tuple[int, str]:
    import shlex

    capsys.readouterr()
    try:
        code = main([a.format(w=w) for a in shlex.split(argv)])
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


# ---------------------------------------------------------------------------- 1. --out
def _user_folders(w: Path) -> None:
    """An earlier search holding the user's notes, a project folder holding a copied
    arch.json beside the user's train.py, an earlier bundle holding notes and a folder."""
    _write(w / "oldsearch/my_notes.txt", "notes on this search\n")
    _write(w / "project/arch.json", json.dumps({"arch": ARCH, "strategy": "evolution"}))
    _write(w / "project/train.py", "print('my training script')\n")
    _write(w / "oldbundle/DEPLOY_NOTES.md", "how we deploy\n")
    _write(w / "oldbundle/calib/batch0.npy", b"\x93NUMPY calibration")


@pytest.mark.parametrize("case", [
    Case("search-out-earlier-search-with-notes", f"{SEARCH} --out {{w}}/oldsearch",
         needle="earlier hwnas search, but it also holds files hwnas did not write "
                "(my_notes.txt)").param(),
    Case("search-out-project-with-copied-arch", f"{SEARCH} --out {{w}}/project",
         needle="did not write (train.py)").param(),
    Case("export-out-earlier-bundle-with-notes", f"{EXPORT} --out {{w}}/oldbundle",
         needle="did not write (DEPLOY_NOTES.md and 1 more)").param(),
    Case("deploy-out-earlier-bundle-with-notes", "deploy --target debugdev --latency-ms 5 "
         "--out {w}/oldbundle", needle="did not write (DEPLOY_NOTES.md and 1 more)").param(),
])
def test_out_never_swaps_away_the_users_files(case, world, capsys, monkeypatch):
    _user_folders(world)
    check_refused(case, world, capsys, monkeypatch)


def test_forced_out_keeps_the_users_files_and_replaces_only_its_own(valid_world, capsys):
    w = valid_world
    _user_folders(w)
    before = snapshot(w)
    code, err = _run(f"{EXPORT} --out {{w}}/oldbundle --force", w, capsys)
    assert code == 0, err
    for name in ("DEPLOY_NOTES.md", "calib/batch0.npy"):      # kept, byte for byte
        assert (w / "oldbundle" / name).read_bytes() == before[w / "oldbundle" / name]
    assert not (w / "oldbundle/model.onnx").read_bytes() == b"onnx bytes"   # hwnas's: new
    assert json.loads((w / "oldbundle/manifest.json").read_text())["arch"] == ARCH
    # the next export into it needs no force: the user's files are known not to be hwnas's,
    # and are refused again rather than swapped away
    code, err = _run(f"{EXPORT} --out {{w}}/oldbundle", w, capsys)
    assert code == 2 and "DEPLOY_NOTES.md" in err
    # a copied arch.json is replaced with force (the user asked), train.py is kept
    code, err = _run(f"{SEARCH} --out {{w}}/project --force", w, capsys)
    assert code == 0, err
    assert (w / "project/train.py").read_bytes() == before[w / "project/train.py"]
    assert (w / "project/pareto.json").exists()


def test_out_of_its_own_is_replaced_without_force(valid_world, capsys):
    w = valid_world
    for _ in range(2):
        code, err = _run(f"{EXPORT} --out {{w}}/b", w, capsys)
        assert code == 0, err
    assert not [p for p in w.iterdir() if ".partial" in p.name or p.name.endswith(".lock")]


def test_a_read_only_out_fails_before_anything_is_built(world, capsys, monkeypatch):
    import tempfile

    locked = world / "readonly"
    locked.mkdir()
    real = tempfile.mkstemp

    def refuse_there(*args, dir=None, **kwargs):    # root ignores permission bits
        if dir is not None and Path(dir) == locked:
            raise PermissionError(13, "Permission denied")
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", refuse_there)
    for verb in (f"export --arch {ARCH} --target x86-host --no-measure", SEARCH):
        line = check_refused(Case("read-only-out", f"{verb} --out {{w}}/readonly/out",
                                  needle="cannot write output"), world, capsys, monkeypatch)
        assert "Permission denied" in line and ".partial" not in line


# ---------------------------------------------------------------------------- a lock per --out
def test_a_second_run_into_the_same_out_is_refused_while_the_first_writes(world, capsys,
                                                                          monkeypatch):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom hwnas._outputs import claim_output\n"
         "with claim_output(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(60)\n",
         str(world / "s")], stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert holder.stdout.readline().strip() == "held"
        line = check_refused(Case("search-out-being-written", f"{SEARCH} --out {{w}}/s",
                                  needle="is being written by another hwnas run"),
                             world, capsys, monkeypatch)
        assert str(holder.pid) in line
    finally:
        holder.kill()
        holder.wait()


def test_two_searches_into_one_out_do_not_both_succeed(valid_world, capsys, monkeypatch):
    """The first search is held while it writes; the second, at the same time, is refused."""
    import importlib

    import hwnas

    assemble = importlib.import_module("hwnas.search.assemble")   # hwnas.search: the function

    writing, release = threading.Event(), threading.Event()
    real = assemble._write

    def slow_write(*args, **kwargs):
        writing.set()
        release.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(assemble, "_write", slow_write)
    first: dict = {}

    def run_first() -> None:
        try:
            first["best"] = hwnas.search("toy", 5, objective="mflops", generations=2,
                                         population=10, out=valid_world / "s")
        except HwnasError as exc:
            first["error"] = exc

    t = threading.Thread(target=run_first)
    t.start()
    try:
        assert writing.wait(60)
        with pytest.raises(HwnasError, match="being written by another hwnas run"):
            hwnas.search("toy", 5, objective="mflops", generations=2, population=10,
                         out=valid_world / "s")
    finally:
        release.set()
        t.join(60)
    assert "best" in first and (valid_world / "s/arch.json").exists()
    assert not (valid_world / ".s.lock").exists()


def test_a_lock_left_by_a_killed_run_is_taken_over(valid_world, capsys):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _write(valid_world / ".s.lock", f"{dead.pid}\n")
    code, err = _run(f"{SEARCH} --out {{w}}/s", valid_world, capsys)
    assert code == 0, err
    assert not (valid_world / ".s.lock").exists()


# ---------------------------------------------------------------------------- 2. a silent device
@pytest.fixture()
def silent_server():
    """A TCP server on 127.0.0.1 that accepts every connection and never says a word."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(srv.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield srv.getsockname()[1]
    for c in held:
        c.close()
    srv.close()


@pytest.mark.parametrize("verb", [
    "profile --target x86-host --untuned --out {w}/t.json",
    "deploy --target x86-host --untuned --latency-ms 5 --out {w}/b",
])
def test_a_device_that_never_answers_is_one_line_within_seconds(verb, silent_server, world,
                                                                 capsys, monkeypatch):
    import hwnas.runtime.tvm_rpc as tvm_rpc

    monkeypatch.setattr(tvm_rpc, "CONNECT_TIMEOUT_S", 1.0)
    t0 = time.monotonic()
    line = check_refused(Case("silent-device", f"{verb} --rpc 127.0.0.1:{silent_server}", 3,
                              f"127.0.0.1:{silent_server} accepted the connection but did not "
                              "answer TVM's RPC handshake within 1 s"),
                         world, capsys, monkeypatch)
    assert time.monotonic() - t0 < 30, line
    assert tvm_rpc.CONNECT_TIMEOUT_S == 1.0


def test_the_handshake_deadline_is_bounded_by_default():
    import hwnas.runtime.tvm_rpc as tvm_rpc

    assert 0 < tvm_rpc.CONNECT_TIMEOUT_S <= 60


# ---------------------------------------------------------------------------- 3. resume
def test_profile_resume_of_an_nb201_table_completes_it(valid_world, capsys):
    args = "profile --target debugdev --space nb201 --workers 0 --networks 0 --out {w}/n.json"
    code, err = _run(f"{args} --limit 3", valid_world, capsys)
    assert code == 0, err
    code, err = _run(f"{args} --resume", valid_world, capsys)
    assert code == 0, err
    table = json.loads((valid_world / "n.json").read_text())
    assert table["meta"]["coverage"]["complete"] and len(table["entries"]) > 3


# ---------------------------------------------------------------------------- files and folders
def _tuning_files(w: Path) -> None:
    """A published database whose xz is valid but holds a garbage record, and a work folder
    with a garbage line among complete records (and none cut short)."""
    from hwnas.compiler.database import target_identity
    from hwnas.targets import load_target

    workload = json.dumps([123456789, "AAAA"]) + "\n"
    record = json.dumps([0, [[[], []], [0.001], {"kind": "llvm"}, []]]) + "\n"
    pub = w / "tuning/garbage-xz"
    _write(pub / "database_workload.json.xz", lzma.compress(workload.encode()))
    _write(pub / "database_tuning_record.json.xz",
           lzma.compress((record + "garbage, not a record\n").encode()))
    _write(pub / "tuning.json", json.dumps({"format": "hwnas-tuning-db/1",
                                            "target": target_identity(load_target("x86-host")),
                                            "module_equality": "structural"}))
    work = w / "tuning/garbage-work"
    _write(work / "database_workload.json", workload)
    _write(work / "database_tuning_record.json", record + "{\"not\": \"a record\"}\n" + record)


def _csv_files(w: Path) -> list[str]:
    from hwnas.spaces import get_space
    import numpy as np

    archs = [str(a) for a in get_space("nb201").sample_many(np.random.default_rng(0), 4)]
    _write(w / "csv/huge.csv", "".join(f"{a},{v}\n" for a, v in zip(archs, [1, 2, 3, 1e300])))
    _write(w / "csv/conflict.csv",
           "".join(f"{a},{v}\n" for a, v in zip(archs + archs[:1], [1, 2, 3, 4, 100])))
    _write(w / "csv/badheader.csv", "network,ms\n" + "".join(f"{a},1\n" for a in archs))
    return archs


CASES = [
    # ---- counts and rounds: 0 and negatives refused before anything is compiled
    *[Case(f"adapt-{opt}-{v}", f"adapt --target debugdev --space nb201 --measure 3 --{opt} {v}",
           needle=needle)
      for opt, v, needle in (("rounds", "0", "rounds"), ("rounds", "-2", "rounds"),
                             ("workers", "-1", "workers"), ("seed", "-1", "seed"))],
    Case("tune-resume-missing-work-dir", "tune --target x86-host --resume "
         "--work-dir {w}/nowork --out {w}/db", needle="nothing to resume: the tuning work "
         "folder"),
    # ---- environment folders: missing (for a verb that reads) or a file
    *[Case(f"env-{var}-{state}", argv, needle=needle.format(path=path, var=var),
           env={var: f"{{w}}/{path}", **({"HWNAS_TARGETS": ""} if var == "HWNAS_DATA" else {})})
      for var, argv in (("HWNAS_TARGETS", "profile --target debugdev --workers 0 --out t.json"),
                        ("HWNAS_TABLES", f"predict --target toy --arch {ARCH}"),
                        ("HWNAS_CHECKPOINTS", "search --target toy --latency-ms 5 "
                                              "--checkpoint some-name"),
                        ("HWNAS_DATA", "targets"))
      for state, path, needle in (
          ("missing", "no-such-folder", "{path}, which does not exist; create it, or unset {var}"),
          ("file", "notes.md", "{path}, a file, not a folder"))],
    # ---- CSV measurements
    Case("adapt-csv-absurd-latency", "adapt --target toy --space nb201 --from-csv "
         "{w}/csv/huge.csv", needle="huge.csv:4: latency 1e+300 ms is outside"),
    Case("adapt-csv-conflicting-repeats", "adapt --target toy --space nb201 --from-csv "
         "{w}/csv/conflict.csv", needle="disagree by more than 10% of their mean (line 1: "
         "1 ms, line 5: 100 ms)"),
    Case("adapt-csv-header-without-arch", "adapt --target toy --space nb201 --from-csv "
         "{w}/csv/badheader.csv", needle="expected arch,latency_ms"),
    # ---- tuning databases: the user's file is named; garbage is no cut-short line
    Case("export-garbage-in-xz", f"export --arch {ARCH} --target x86-host --no-measure "
         "--out {w}/b --tuning-db {w}/tuning/garbage-xz",
         needle="tuning/garbage-xz/database_tuning_record.json.xz: line 2 is not a "
                "MetaSchedule record"),
    Case("tune-garbage-in-work-dir", "tune --target x86-host --resume --work-dir "
         "{w}/tuning/garbage-work --out {w}/db",
         needle="garbage-work/database_tuning_record.json: line 2 is not a MetaSchedule record"),
    # ---- --out naming a user's file or folder: no advice to resume it, not "corrupt"
    Case("profile-out-user-json", "profile --target debugdev --workers 0 --out {w}/user.json",
         needle="exists and is not an hwnas latency table"),
    Case("profile-out-user-folder", "profile --target debugdev --workers 0 --out {w}/mywork",
         needle="is a folder, not a latency table file"),
    Case("adapt-out-user-text", "adapt --target debugdev --space nb201 --measure 3 "
         "--out {w}/notes.md", needle="exists and is not a few-shot predictor; choose another"),
    Case("adapt-out-user-folder", "adapt --target debugdev --space nb201 --measure 3 "
         "--out {w}/mywork", needle="is a folder, not a few-shot predictor file"),
    Case("import-out-user-json-forced", "import-table --source {w}/lut/ofa --target t "
         "--out {w}/user.json --force", needle="exists and is not an hwnas latency table"),
    Case("import-out-user-folder", "import-table --source {w}/lut/ofa --target t "
         "--out {w}/mywork", needle="is a folder"),
    # ---- fail before the expensive part; say what is meant
    Case("search-truncated-checkpoint", "search --target toy --latency-ms 5 --objective mflops "
         "--checkpoint {w}/ckpt/truncated", needle="truncated"),
    Case("train-pad-to-below-image", "train-supernet --data digits --out {w}/ck --pad-to 5",
         needle="pad_to 5 is smaller than the 8×8 images"),
    Case("search-two-bare-budgets", "search --target toy --latency-ms 0.6,0.9 --objective "
         "mflops", needle="2 budgets without a target name"),
]


@pytest.mark.parametrize("case", [c.param() for c in CASES])
def test_bad_input_that_cost_work_is_one_line_and_keeps_every_file(case, world, capsys,
                                                                   monkeypatch):
    _tuning_files(world)
    _csv_files(world)
    _write(world / "user.json", json.dumps({"mine": True}))
    line = check_refused(case, world, capsys, monkeypatch)
    assert "cut short" not in line and "resume it" not in line


def test_a_cut_short_last_record_is_dropped_and_the_rest_kept(tmp_path):
    from hwnas.compiler.database import DB_FILES, repair_work_dir

    record = json.dumps([0, [[], [0.001]]]) + "\n"
    f = _write(tmp_path / DB_FILES[1], record * 2 + record[:9])
    _write(tmp_path / DB_FILES[0], json.dumps([1, "AAAA"]))       # complete, no newline
    assert repair_work_dir(tmp_path) == 1
    assert f.read_text() == record * 2
    assert (tmp_path / DB_FILES[0]).read_text() == json.dumps([1, "AAAA"]) + "\n"


# ---------------------------------------------------------------------------- environment
def test_a_verb_that_writes_creates_a_missing_tables_folder(valid_world, capsys, monkeypatch):
    monkeypatch.setenv("HWNAS_TABLES", str(valid_world / "new/tables"))
    code, err = _run("profile --target debugdev --space nb201 --workers 0 --networks 0",
                     valid_world, capsys)
    assert code == 0, err
    assert (valid_world / "new/tables/debugdev/nb201.json").is_file()


# ---------------------------------------------------------------------------- CSV
def test_csv_header_by_name_bom_and_crlf(tmp_path):
    from hwnas.predict.adapt import read_measurements
    from hwnas.spaces import get_space
    import numpy as np

    sp = get_space("nb201")
    archs = [str(a) for a in sp.sample_many(np.random.default_rng(0), 3)]
    rows = ["batch,latency_ms,device,arch"] + [f"1,{i + 1},pi,{a}" for i, a in enumerate(archs)]
    path = _write(tmp_path / "m.csv", b"\xef\xbb\xbf" + "\r\n".join(rows).encode() + b"\r\n")
    m = read_measurements(path, sp)
    assert m.archs == archs and list(m.latency_ms) == [1.0, 2.0, 3.0] and m.batch == 1
    path.write_bytes(b"\xef\xbb\xbf" + "\n".join(f"{a},{i + 1}" for i, a in
                                                 enumerate(archs)).encode())
    assert read_measurements(path, sp).archs == archs          # a BOM and no header


# ---------------------------------------------------------------------------- the front door
def _api_calls(w: Path) -> list:
    import hwnas

    nan, inf = math.nan, math.inf
    out = str(w / "api-out")
    search = lambda *a, **k: hwnas.search(*a, objective="mflops", out=out, **k)  # noqa: E731
    deploy = lambda *a, **k: hwnas.deploy(*a, out=out, **k)                   # noqa: E731
    return [
        ("search-bool-budget", lambda: search("toy", True)),
        ("search-bool-budget-in-dict", lambda: search(None, {"toy": True})),
        ("search-list-target", lambda: search(["x86-host"], 5)),
        ("search-list-budget", lambda: search("toy", [5])),
        ("search-bool-margin", lambda: search("toy", 5, margin=True)),
        ("search-nan-margin", lambda: search("toy", 5, margin=nan)),
        ("search-inf-quantile", lambda: search("toy", 5, quantile=inf)),
        ("search-none-quantile", lambda: search("toy", 5, quantile=None)),
        ("search-bool-max-params", lambda: search("toy", 5, max_params=True)),
        ("search-text-max-mflops", lambda: search("toy", 5, max_mflops="lots")),
        ("search-bool-seed", lambda: search("toy", 5, seed=True)),
        ("search-report-targets-text", lambda: search("toy", 5, report_targets="x86-host")),
        ("search-bool-float-option", lambda: search("toy", 5, mutate_prob=True)),
        ("deploy-none-target", lambda: deploy(None, 5)),
        ("deploy-bool-budget", lambda: deploy("debugdev", True)),
        ("deploy-bool-rounds", lambda: deploy("debugdev", 5, max_rounds=True)),
        ("deploy-false-slack", lambda: deploy("debugdev", 5, slack=False)),
        ("deploy-bool-agree", lambda: deploy("debugdev", 5, agree=True)),
        ("deploy-nan-margin", lambda: deploy("debugdev", 5, margin=nan)),
        ("deploy-bool-tune", lambda: deploy("debugdev", 5, tune=True)),
        ("deploy-bool-networks", lambda: deploy("debugdev", 5, profile_networks=True)),
        ("deploy-inf-contended", lambda: deploy("debugdev", 5, contended_margin=inf)),
        ("deploy-nan-seed", lambda: deploy("debugdev", 5, seed=nan)),
        ("adapt-bool-measure", lambda: hwnas.adapt("debugdev", "nb201", measure=True)),
        ("adapt-zero-rounds", lambda: hwnas.adapt("debugdev", "nb201", measure=3, rounds=0)),
        ("adapt-bool-rounds", lambda: hwnas.adapt("debugdev", "nb201", measure=3, rounds=True)),
        ("adapt-negative-workers", lambda: hwnas.adapt("debugdev", "nb201", measure=3,
                                                       workers=-1)),
        ("adapt-none-target", lambda: hwnas.adapt(None, "nb201", measure=3)),
        ("export-none-target", lambda: hwnas.export(ARCH, None, out)),
        ("connect-none", lambda: hwnas.connect(None)),
        ("load-target-none", lambda: hwnas.load_target(None)),
        ("load-predictor-list", lambda: hwnas.load_predictor(["toy"])),
    ]


def test_the_front_door_refuses_bools_nan_and_wrong_types_with_hwnas_errors(world):
    before = snapshot(world)
    for name, call in _api_calls(world):
        with pytest.raises(HwnasError) as info:
            call()
        assert "\n" not in str(info.value), name
    assert snapshot(world) == before
    assert not (world / "api-out").exists()


# ---------------------------------------------------------------------------- SIGTERM
def test_sigterm_is_handled_like_ctrl_c(world, capsys, monkeypatch):
    import tempfile

    import hwnas.profile.profiler as profiler

    tmp = world / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))

    def terminated_while_measuring(*_a, **_k):
        assert any(tmp.iterdir())                 # the temporary folder is in use now
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(10)
        raise AssertionError("SIGTERM was not raised")

    monkeypatch.setattr(profiler, "run_waves", terminated_while_measuring)
    before = signal.getsignal(signal.SIGTERM)
    code, err = _run("adapt --target debugdev --space nb201 --measure 3 --sources ''",
                     world, capsys)
    lines = err.strip().splitlines()
    assert code == 143 and lines[-1].startswith("hwnas: terminated (SIGTERM)"), err
    assert not list(tmp.iterdir())                # temporary folders removed
    assert signal.getsignal(signal.SIGTERM) is before
