"""A CPU model with no data of its own: the other CPU models' tables are few-shot sources, and
this CPU's few-shot predictor is kept apart from theirs and preferred to their tables."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from hwnas.errors import HwnasError
from hwnas.profile.table import LatencyTable, tables_by_cpu
from hwnas.spaces import default_checkpoint
from hwnas.targets import load_target


@pytest.fixture()
def foreign_cpus(tmp_path, monkeypatch):
    """``x86-host``'s shipped table copied twice into a user tables folder, relabelled as
    measured on two CPU models this machine is not (``cpu-cpua/``, ``cpu-cpub/``)."""
    from hwnas._data import shipped_dir
    from hwnas.train.checkpoint import load_supernet

    host = load_target("x86-host")
    space = load_supernet(default_checkpoint()).space
    # the shared table of the checkpoint's configuration (a CPU folder may hold another's)
    shipped = shipped_dir("latency_tables") / "x86-host" / f"{space.name}.json"
    tables = tmp_path / "tables"
    for cpu in ("cpua", "cpub"):
        dest = tables / "x86-host" / f"cpu-{cpu}" / shipped.name
        dest.parent.mkdir(parents=True)
        obj = json.loads(shipped.read_text())
        obj["meta"]["target_config"]["tvm"]["mcpu"] = cpu
        if cpu == "cpub":                       # another CPU: another speed, other ratios
            for e in obj["entries"].values():
                e["median_ms"] *= 1.5
        dest.write_text(json.dumps(obj))
    monkeypatch.setenv("HWNAS_TABLES", str(tables))
    return host, space, tables


def test_other_cpu_models_tables_are_sources_and_this_ones_is_not(foreign_cpus):
    from hwnas.predict.adapt import default_sources, resolve_sources

    host, space, tables = foreign_cpus
    found = tables_by_cpu("x86-host", space.name)
    assert {"cpua", "cpub"} <= set(found) and host.mcpu not in {"cpua", "cpub"}
    names = default_sources("x86-host", space)
    assert "x86-host@cpua" in names and "x86-host@cpub" in names
    assert f"x86-host@{host.mcpu}" not in names and "x86-host" not in names
    src = resolve_sources("x86-host", space, ["x86-host@cpua", "x86-host@cpub"])
    assert src.used == ["x86-host@cpua", "x86-host@cpub"] and src.factors is not None
    # this CPU's own table would leak its measurements into its own predictor
    own = tables / "x86-host" / f"cpu-{host.cpu_slug}" / found["cpua"].name
    own.parent.mkdir(parents=True)
    obj = json.loads(found["cpua"].read_text())
    obj["meta"]["target_config"]["tvm"]["mcpu"] = host.mcpu
    own.write_text(json.dumps(obj))
    with pytest.raises(HwnasError, match="leak"):
        resolve_sources("x86-host", space, [f"x86-host@{host.mcpu}"])


def test_this_cpus_fewshot_predictor_is_its_own_and_beats_another_cpus_table(
        foreign_cpus, tmp_path):
    import hwnas
    from hwnas.predict import load_predictor
    from hwnas.predict.adapt import fewshot_file

    host, space, tables = foreign_cpus
    # the shared table of the target is another CPU model's
    src = tables_by_cpu("x86-host", space.name)["cpua"]
    shared = tables / "x86-host" / src.name
    shutil.copy2(src, shared)
    path = fewshot_file("x86-host", space.name)
    assert path.parent.name == f"cpu-{host.cpu_slug}"
    # "measured" here: cpua's table sums times 0.7, as if this CPU were faster
    table = LatencyTable.load(shared)
    rng = np.random.default_rng(0)
    archs = space.sample_many(rng, 12)
    sums = space.op_values(space.to_genomes(archs), table.space_values(space)).sum(1)
    csv = tmp_path / "m.csv"
    csv.write_text("arch,latency_ms\n" + "".join(f"{a},{0.7 * s:.6f}\n"
                                                  for a, s in zip(archs, sums)))
    hwnas.adapt("x86-host", space, csv=str(csv))
    assert path.is_file() and not (shared.parent / path.name).exists()
    pred = load_predictor("x86-host", space)
    assert pred.selection.startswith("fewshot") and "cpua" in pred.selection
    got = pred.predict_genomes(space.to_genomes(archs))
    assert np.allclose(got, 0.7 * sums, rtol=0.1)
