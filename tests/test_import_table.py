"""Published tables (../shared/data/external) → hwnas latency tables."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from hwnas.cli import main
from hwnas.errors import TableError
from hwnas.predict.table import TablePredictor
from hwnas.profile import LatencyTable
from hwnas.profile.importers import import_table
from hwnas.spaces import space_from_config

EXTERNAL = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "external"
NOTE10 = EXTERNAL / "ofa_note10_lut"
PIXEL1 = EXTERNAL / "proxylessnas_lut" / "mobile_trim.yaml"
pytestmark = pytest.mark.skipif(not NOTE10.is_dir(), reason="published tables not present")


def test_note10_import_covers_the_width_1_2_space_at_all_17_resolutions(tmp_path, capsys):
    out = tmp_path / "note10.json"
    assert main(["import-table", "--source", str(NOTE10), "--target", "note10",
                 "--out", str(out)]) == 0
    t = LatencyTable.load(out)
    m = t.meta
    assert m["target"] == "note10" and m["space"] == "ofa-mbv3" and not m["measured_here"]
    assert m["imported"]["source"].endswith("ofa_note10_lut") and len(m["imported"]["files"]) == 17
    (cfg,) = m["spaces"]
    assert cfg["width_mult"] == 1.2 and cfg["resolutions"] == list(range(160, 225, 4))
    assert m["coverage"]["complete"] and m["coverage"]["n_ops"] == len(t)
    # a value straight from the published file
    pub = yaml.safe_load((NOTE10 / "224_lookup_table.yaml").read_text())
    key = "Conv-input:224x224x3-output:112x112x24"
    assert t.entries[key]["median_ms"] == pytest.approx(pub[key]["mean"])
    assert t.entries[key]["p90_ms"] > t.entries[key]["median_ms"]
    # search can price any subnet of the space with it
    space = space_from_config(cfg)
    ms = TablePredictor(space, t).predict(space.sample_many(np.random.default_rng(0), 20))
    assert np.all((ms > 5) & (ms < 200))
    assert "870" in capsys.readouterr().out


def test_keys_in_several_files_are_pooled_by_count():
    t = import_table(NOTE10, "note10")
    key = "Logits-input:1x1x1536-output:1000"
    pubs = [yaml.safe_load(f.read_text())[key] for f in sorted(NOTE10.glob("*.yaml"))]
    n = sum(p["count"] for p in pubs)
    assert t.entries[key]["n"] == n
    assert t.entries[key]["median_ms"] == pytest.approx(sum(p["count"] * p["mean"] for p in pubs) / n)


def test_proxyless_pixel1_import_turns_var_into_std(tmp_path):
    out = tmp_path / "p1.json"
    assert main(["import-table", "--source", str(PIXEL1), "--target", "pixel1",
                 "--space", "proxyless", "--out", str(out)]) == 0
    t = LatencyTable.load(out)
    pub = yaml.safe_load(PIXEL1.read_text())
    assert len(t) == len(pub) == 72 and t.meta["imported"]["format"] == "proxyless-lut"
    key = "Conv-input:224x224x3-output:112x112x32"
    assert t.entries[key]["std_ms"] == pytest.approx(pub[key]["var"] ** 0.5)
    assert t.meta["coverage"]["complete"]
    # refusing to overwrite without --force
    assert main(["import-table", "--source", str(PIXEL1), "--target", "pixel1",
                 "--out", str(out)]) != 0


def test_malformed_source_is_a_clear_error(tmp_path):
    bad = tmp_path / "x.yaml"
    bad.write_text("Conv-input:8x8x3-output:4x4x8: {count: 3}\n")
    with pytest.raises(TableError, match="lacks a numeric mean"):
        import_table(bad, "x")
    with pytest.raises(TableError, match="not found"):
        import_table(tmp_path / "missing.yaml", "x")
