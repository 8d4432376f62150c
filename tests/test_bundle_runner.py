"""The bundle's ``runner.py``: its thread pool follows the cores other work leaves free."""
from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

from hwnas.runtime.bundle_runner import OtherWork, threads_for
from hwnas.deploy.run_script import write_run_scripts
from hwnas.runtime.load import LoadGenerator

ARCH = "r64-k35.37.357.35.73-e36.43.346.66.34"


@pytest.mark.parametrize("cores, busy, most, want", [
    (2, 0.0, None, 2), (2, 0.2, None, 2), (2, 0.3, None, 1), (2, 1.0, None, 1),
    (2, 2.0, None, 1), (4, 1.0, None, 3), (4, 1.3, None, 2), (8, 0.0, 4, 4),
    (2, None, None, 2), (1, 3.0, None, 1)])
def test_a_core_counts_as_taken_once_other_work_holds_a_quarter_of_it(cores, busy, most, want):
    assert threads_for(cores, busy, most) == want


def test_other_work_is_seen_and_our_own_is_not():
    import os

    cpus = tuple(sorted(os.sched_getaffinity(0)))
    work = OtherWork(cpus)
    end = time.monotonic() + 0.5               # our own busy loop: not other work
    while time.monotonic() < end:
        pass
    own = work.sample()
    with LoadGenerator(cores=1, seconds=30):
        time.sleep(0.2)
        work.sample()
        time.sleep(0.6)
        other = work.sample()
    if own is None or other is None:
        pytest.skip("/proc/stat is not readable here")
    assert own < 0.5 and other > 0.6


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    from hwnas.export import BundleRequest, export_bundle
    from hwnas.spaces import get_space
    from hwnas.targets import load_target

    space = get_space("ofa-mbv3", resolutions=[64], num_classes=10)
    arch = space.parse(ARCH)
    out = tmp_path_factory.mktemp("runner") / "bundle"
    export_bundle(BundleRequest(space, arch, space.build(arch).eval(), load_target("x86-host"),
                                out))
    write_run_scripts(out)
    return out


@pytest.mark.tvm
def test_the_pool_shrinks_while_other_work_holds_the_cores_and_grows_back(bundle):
    """In a fresh process: the runner's output matches the library's, its pool drops to one
    thread with every core busy, and returns to all of them once the work stops."""
    import os

    cores = len(os.sched_getaffinity(0))
    if cores < 2:
        pytest.skip("one CPU: nothing to shrink")
    code = f"""
import sys, time, numpy as np
sys.path.insert(0, {str(bundle)!r})
from runner import Model
from hwnas.runtime.load import LoadGenerator
net = Model(check_every_s=0.2)
x = np.random.default_rng(0).standard_normal(net.shape).astype("float32")
quiet = net.threads_now
def run(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        y = net(x)
    return y
with LoadGenerator(cores={cores}, seconds=60):
    time.sleep(0.3)
    run(1.0)
    busy = net.threads_now
run(1.0)
print(quiet, busy, net.threads_now, float(np.abs(net(x)).sum()))
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    quiet, busy, after, total = r.stdout.split()
    assert (int(quiet), int(busy), int(after)) == (cores, 1, cores)
    from hwnas.export import run_tvm_library

    x = np.random.default_rng(0).standard_normal((1, 3, 64, 64)).astype("float32")
    assert float(total) == pytest.approx(float(np.abs(run_tvm_library(bundle / "model.so",
                                                                      x)).sum()), rel=1e-4)
