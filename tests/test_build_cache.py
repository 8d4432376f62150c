"""Compiled networks kept across runs: built once per key, rebuilt when the key changes or the
cached file is gone."""
from __future__ import annotations

from pathlib import Path

import pytest

from hwnas.profile.build import BuildTask
from hwnas.profile.build_cache import cache_key, cached_network, drop
from hwnas.profile.pool import BuildPool
from hwnas.spaces import get_space
from hwnas.targets import load_target


class CountingPool(BuildPool):
    def __init__(self) -> None:
        super().__init__(0)
        self.tasks = 0

    def run(self, tasks):
        tasks = list(tasks)
        self.tasks += len(tasks)
        return super().run(tasks)


@pytest.fixture()
def task(tmp_path, monkeypatch):
    monkeypatch.setenv("HWNAS_CACHE", str(tmp_path / "cache"))
    space = get_space("ofa-mbv3", resolutions=[16], num_classes=10, in_chans=1,
                      width_mult=0.5)
    out = tmp_path / "build"
    out.mkdir()
    return BuildTask("reference", load_target("x86-host"), str(out), "onnxruntime",
                     arch=str(space.smallest()), space_config=space.config())


def test_a_network_is_built_once_then_read_from_the_cache(task, tmp_path):
    pool = CountingPool()
    first, cached = cached_network(pool, task)
    assert not cached and pool.tasks == 1
    assert Path(first.path).parent == tmp_path / "cache" / "networks"
    assert not list(Path(task.out_dir).iterdir())          # moved into the cache
    again, cached = cached_network(pool, task)
    assert cached and pool.tasks == 1 and again.path == first.path
    assert again.input_shape == first.input_shape and again.func == "main"


def test_a_changed_key_or_a_dropped_file_builds_again(task):
    from dataclasses import replace

    pool = CountingPool()
    item, _ = cached_network(pool, task)
    other = replace(task, arch=task.arch.replace("r16", "r16", 1), runtime="tvm")
    assert cache_key(other) != cache_key(task)
    assert cache_key(replace(task, runtime="debug")) is None
    assert cache_key(replace(task, arch=None, keys=("x",))) is None
    drop(item)
    again, cached = cached_network(pool, task)
    assert not cached and pool.tasks == 2 and Path(again.path).is_file()
