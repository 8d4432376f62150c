"""One CPU's folder may hold a table of one configuration of a space and the few-shot predictor
of another (an ImageNet profile beside the shipped small configuration's adapt): each request
gets the predictor of its own configuration, and a deploy of the other one is not sent to
profile its operators into the table."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hwnas.predict.loading import fewshot_fits, load_predictor
from hwnas.profile.table import LatencyTable
from hwnas.runtime.latency import Latency
from hwnas.spaces import get_space

FEWSHOT = (Path(__file__).resolve().parents[1] / "latency_tables" / "x86-host" / "cpu-znver4"
           / "ofa-mbv3.fewshot.json")


def _table(path: Path, space) -> None:
    from hwnas._versions import versions

    meta = {"target": "x86-host", "space": space.name, "spaces": [space.config()],
            "versions": versions(), "compiler": {"tuning_dir": None}, "measured_here": True,
            "device": "synthetic (test)", "networks": []}
    t = LatencyTable(meta)
    for op, m in zip(space.op_list, space.cost_vectors()["macs"]):
        v = 0.01 + 1e-6 * m
        t.add(op.key, Latency(v, v * 1.02, v * 0.01, 10))
    t.save(path)


@pytest.fixture()
def folder(tmp_path):
    d = tmp_path / "x86-host"
    d.mkdir()
    _table(d / "ofa-mbv3.json", get_space("ofa-mbv3-imagenet"))
    shutil.copy(FEWSHOT, d / "ofa-mbv3.fewshot.json")
    return d


def test_fewshot_fits_only_its_own_configuration(folder):
    few = folder / "ofa-mbv3.fewshot.json"
    assert fewshot_fits(few, get_space("ofa-mbv3-fmnist"))
    assert not fewshot_fits(few, get_space("ofa-mbv3-imagenet"))
    assert not fewshot_fits(folder / "none.json", get_space("ofa-mbv3-fmnist"))


def test_each_configuration_gets_its_own_predictor(folder):
    imagenet = load_predictor("x86-host", get_space("ofa-mbv3-imagenet"), "auto",
                              path=folder / "ofa-mbv3.json")
    assert imagenet.selection.startswith("table") and imagenet.space.num_classes == 1000
    small = load_predictor("x86-host", get_space("ofa-mbv3-fmnist"), "auto",
                           path=folder / "ofa-mbv3.json")
    assert small.selection.startswith("fewshot") and small.space.num_classes == 10


def test_a_deploy_of_the_other_configuration_takes_its_fewshot_predictor(folder):
    from hwnas.deploy.config import DeployConfig
    from hwnas.deploy.deployment import _base_predictor
    from hwnas.targets import load_target

    cfg = DeployConfig(target=load_target("x86-host"), budget_ms=1.0, out=folder / "b",
                       table=folder / "ofa-mbv3.json")
    base, record = _base_predictor(cfg, get_space("ofa-mbv3-fmnist"))
    assert base.name == "fewshot" and record.table is None
