"""The wheel carries its data: installed outside the checkout, it finds its targets, latency
tables and checkpoint (``hwnas._data``), with no ``HWNAS_*`` variable set."""
from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.wheel


@pytest.fixture(scope="module")
def wheel_env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--no-build-isolation", "-w", str(tmp / "dist"), str(ROOT)], check=True)
    wheel, = (tmp / "dist").glob("hwnas-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()"
                                "['purelib'])"], capture_output=True, text=True,
                               check=True).stdout.strip())
    # the dependencies (torch, TVM, ...) come from this environment as a plain path entry, so
    # that its editable install of hwnas (a .pth hook there) is not picked up
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                    str(site), str(wheel)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HWNAS_")
           and k != "PYTHONPATH"}
    env["XDG_DATA_HOME"] = str(tmp / "user-data")    # the default user folder, empty
    return py, env, tmp


def _run(wheel_env, *args):
    py, env, tmp = wheel_env
    return subprocess.run([str(py), "-m", "hwnas", *args], capture_output=True, text=True,
                          cwd=tmp, env=env, timeout=300)


def test_installed_package_is_not_the_checkout(wheel_env):
    py, env, tmp = wheel_env
    out = subprocess.run([str(py), "-c", "import hwnas, hwnas._data as d; print(hwnas.__file__);"
                          "print(d.shipped_dir('targets'))"], capture_output=True, text=True,
                         cwd=tmp, env=env, check=True).stdout.split()
    assert not out[0].startswith(str(ROOT)) and not out[1].startswith(str(ROOT))


def test_targets_from_the_wheel(wheel_env):
    r = _run(wheel_env, "targets")
    assert r.returncode == 0, r.stderr
    assert "x86-host" in r.stdout and "rpi4" in r.stdout


def test_predict_from_the_wheel(wheel_env):
    r = _run(wheel_env, "predict", "--target", "x86-host", "--checkpoint", "ofa-mbv3-fmnist",
             "--arch", "r28-k35.357.3577.35.357-e34.634.3466.44.666")
    assert r.returncode == 0, r.stderr
    assert " ms " in r.stdout and "x86-host" in r.stdout
