"""CLI: bad input gives one line on stderr and a non-zero exit, no traceback."""
import subprocess
import sys

import pytest

GOOD = "r64-k35.37.357.35.73-e36.43.346.66.34"


def hwnas(*args, **kw):
    return subprocess.run([sys.executable, "-m", "hwnas", *args], capture_output=True, text=True,
                          timeout=300, **kw)


def test_help_lists_verbs():
    r = hwnas("--help")
    assert r.returncode == 0
    for verb in ("targets", "export"):
        assert verb in r.stdout


def test_targets_lists_shipped():
    r = hwnas("targets")
    assert r.returncode == 0
    for name in ("x86-host", "rpi4", "cortex-a76", "jetson-orin", "server-gpu"):
        assert name in r.stdout


@pytest.mark.parametrize("args,needle", [
    (["export", "--arch", "r64-k35.37.357.35.7x-e36.43.346.66.34", "--target", "x86-host"],
     "field 'kernel'"),
    (["export", "--arch", "r65-k35.37.357.35.73-e36.43.346.66.34", "--target", "x86-host"],
     "resolution 65"),
    (["export", "--arch", GOOD, "--target", "no-such-device"], "unknown target 'no-such-device'"),
    (["export", "--arch", GOOD, "--target", "x86-host", "--space", "nope"], "unknown search space 'nope'"),
])
def test_bad_input_one_line(tmp_path, args, needle):
    r = hwnas(*args, "--out", str(tmp_path / "b"), "--resolutions", "64")
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "b").exists()


def test_malformed_target_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[tvm]\nkind = 3\n")
    r = hwnas("export", "--arch", GOOD, "--target", str(bad), "--out", str(tmp_path / "b"),
              "--resolutions", "64")
    assert r.returncode != 0 and "tvm.kind" in r.stderr and str(bad) in r.stderr
