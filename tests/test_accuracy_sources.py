"""Accuracy sources (hwnas.predict.accuracy_sources): the registry, the ImageNet
configurations of ofa-mbv3, OFA's published predictor and what every result says of them.

Data from ../shared/data/external is imported by the tests themselves, into temporary folders.
"""
from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from hwnas.cli import main
from hwnas.errors import ArchError, DataError, SpaceError
from hwnas.predict.accuracy_sources import (ACCURACY_SOURCES, accepted_sources,
                                            find_accuracy_source, load_accuracy_source)
from hwnas.spaces import SPACES, get_space

EXTERNAL = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "external"
OFA_DIR = EXTERNAL / "ofa_imagenet"
OFA_PTH = OFA_DIR / "ofa_acc_predictor.pth"
NOTE10 = EXTERNAL / "ofa_note10_lut"
needs_ofa = pytest.mark.skipif(not OFA_PTH.is_file(), reason="OFA's predictor not present")
#: OFA's tutorial subnet at r192, in our notation; OFA's predictor gives it 81.713 %
TUTORIAL = "r192-k53.53.773.5573.335-e33.44.634.4443.666"
CONFIGS = [(p, c) for p in SPACES.names() for c in SPACES.get(p).configs]


@pytest.fixture()
def note10(tmp_path, monkeypatch):
    """OFA's Note10 table imported into an empty tables folder."""
    if not NOTE10.is_dir():
        pytest.skip("OFA's Note10 table not present")
    monkeypatch.setenv("HWNAS_TABLES", str(tmp_path / "tables"))
    assert main(["import-table", "--source", str(NOTE10), "--target", "note10"]) == 0
    return tmp_path / "tables" / "note10"


@pytest.fixture()
def ofa_imported(tmp_path, monkeypatch):
    """OFA's predictor imported (by the verb) into an empty accuracy folder."""
    if not OFA_PTH.is_file():
        pytest.skip("OFA's predictor not present")
    monkeypatch.setenv("HWNAS_ACCURACY", str(tmp_path / "accuracy"))
    assert main(["import-accuracy", "--source", str(OFA_PTH)]) == 0
    path = tmp_path / "accuracy" / "ofa-mbv3" / "ofa-predictor.npz"
    assert path.is_file()
    return path


# ---------------------------------------------------------------------------- registry
@pytest.mark.parametrize("plugin,config", CONFIGS)
def test_every_source_a_configuration_names_is_registered(plugin, config):
    named = SPACES.get(plugin).config(config).accuracy_sources
    assert [n for n in named if n not in ACCURACY_SOURCES] == []


def test_the_imagenet_configuration_accepts_ofas_predictor_and_fmnist_the_supernet():
    assert accepted_sources(get_space("ofa-mbv3-imagenet"))[0] == "ofa-predictor"
    assert accepted_sources(get_space("ofa-mbv3-fmnist")) == ("supernet",)
    # a configuration that is no named one accepts the sources of all of them
    assert set(accepted_sources(get_space("ofa-mbv3", num_classes=7))) >= {"supernet",
                                                                          "ofa-predictor"}


def test_a_source_the_configuration_does_not_accept_is_refused():
    with pytest.raises(SpaceError, match="not one that ofa-mbv3-fmnist accepts"):
        load_accuracy_source("ofa-predictor", get_space("ofa-mbv3-fmnist"))


def test_a_source_not_imported_yet_says_how_to_import_it():
    with pytest.raises(DataError, match="hwnas import-accuracy"):
        load_accuracy_source("ofa-predictor", get_space("ofa-mbv3-imagenet"))
    assert find_accuracy_source(get_space("ofa-mbv3-imagenet")) is None


# ---------------------------------------------------------------------------- archs
def _ofa_dict(arch_json: dict, junk: int) -> dict:
    """OFA's form of an arch, with ``junk`` in the slots past each stage's depth."""
    ks, es = list(arch_json["ks"]), list(arch_json["e"])
    for s, d in enumerate(arch_json["d"]):
        for j in range(d, 4):
            ks[4 * s + j] = es[4 * s + j] = junk
    return {"ks": ks, "e": es, "d": list(arch_json["d"]), "r": arch_json["r"]}


@pytest.mark.parametrize("name", ["ofa-mbv3-imagenet", "ofa-mbv3-fmnist"])
def test_archs_round_trip_through_string_and_ofas_dict_form(name):
    space = get_space(name)
    rng = np.random.default_rng(0)
    for _ in range(50):
        arch = space.sample(rng)
        obj = arch.to_json()
        assert space.parse(str(arch)) == arch
        assert space.from_json(json.loads(json.dumps(obj))) == arch
        for junk in (0, 3, 7):              # OFA writes 0 or any choice in unused slots
            assert space.from_json(_ofa_dict(obj, junk)) == arch


def test_dynast_csv_dict_form_parses():
    space = get_space("ofa-mbv3", width_mult=1.0, resolutions=[224])
    text = ("{'wid': None, 'ks': [5, 7, 5, 5, 3, 3, 3, 7, 5, 5, 3, 7, 7, 3, 3, 3, 5, 5, 5, 5], "
            "'e': [4, 3, 4, 4, 4, 6, 3, 4, 4, 3, 4, 3, 3, 6, 6, 6, 4, 3, 4, 4], "
            "'d': [2, 3, 2, 4, 3], 'r': [224]}")
    arch = space.from_json(ast.literal_eval(text))
    assert str(arch) == "r224-k57.333.55.7333.555-e43.463.43.3666.434"


@pytest.mark.parametrize("text,needle", [
    ("r150-k53.53.773.5573.335-e33.44.634.4443.666", "resolution 150 not in this space"),
    ("r192-k93.53.773.5573.335-e33.44.634.4443.666", "kernel 9 in stage 1 not in"),
])
def test_an_arch_outside_the_imagenet_configuration_is_one_line(text, needle, note10, capsys):
    with pytest.raises(ArchError, match=needle):
        get_space("ofa-mbv3-imagenet").parse(text)
    assert main(["predict", "--target", "note10", "--space", "ofa-mbv3-imagenet",
                 "--arch", text]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1


@pytest.mark.parametrize("bad,needle", [
    ({"d": [5, 2, 2, 2, 2]}, "depth 5 of stage 1"),
    ({"r": [150]}, "resolution 150"),
    ({"wid": [1, 2]}, "elastic width"),
    ({"ks": [9] * 20}, "kernel not in"),
    ({"d": [2, 2, 2]}, r"needs d\[5\]"),
])
def test_a_bad_ofa_dict_is_one_line(bad, needle):
    space = get_space("ofa-mbv3-imagenet")
    obj = {**_ofa_dict(space.parse(TUTORIAL).to_json(), 0), **bad}
    with pytest.raises(ArchError, match=needle) as exc:
        space.from_json(obj)
    assert "\n" not in str(exc.value)


# ---------------------------------------------------------------------------- OFA's predictor
def test_ofas_predictor_gives_the_tutorial_subnet_its_published_figure(ofa_imported):
    space = get_space("ofa-mbv3-imagenet")
    src = load_accuracy_source("ofa-predictor", space)
    acc = src.predict_genomes(space.to_genomes([space.parse(TUTORIAL)]))
    assert acc[0] == pytest.approx(0.81713, abs=5e-6)
    label = src.label(space.to_genomes([space.parse(TUTORIAL)])[0])
    assert label["source"] == "ofa-predictor" and label["kind"] == "predicted"
    assert label["extrapolation"] is None


def test_ofas_predictor_matches_its_torch_mlp_over_many_subnets(ofa_imported):
    import torch

    space = get_space("ofa-mbv3-imagenet")
    sd = torch.load(OFA_PTH, map_location="cpu", weights_only=True)
    mlp = torch.nn.Sequential(torch.nn.Linear(128, 400), torch.nn.ReLU(),
                              torch.nn.Linear(400, 400), torch.nn.ReLU(),
                              torch.nn.Linear(400, 400), torch.nn.ReLU(), torch.nn.Linear(400, 1))
    mlp.load_state_dict(sd)
    archs = space.sample_many(np.random.default_rng(1), 200)
    feats = []
    for a in archs:                         # OFA's spec2feats, written out
        obj = a.to_json()
        f = np.zeros(128, np.float32)
        for i, (k, e) in enumerate(zip(obj["ks"], obj["e"])):
            if k:
                f[3 * i + (3, 5, 7).index(k)] = 1
                f[60 + 3 * i + (3, 4, 6).index(e)] = 1
        f[120 + (obj["r"] - 112) // 16] = 1
        feats.append(f)
    with torch.no_grad():
        want = mlp(torch.from_numpy(np.stack(feats)))[:, 0].numpy()
    got = load_accuracy_source("ofa-predictor", space).predict_genomes(space.to_genomes(archs))
    assert np.abs(got - want).max() < 1e-5


def test_ofas_predictor_on_another_width_is_labelled_an_extrapolation(ofa_imported):
    space = get_space("ofa-mbv3", width_mult=1.0, resolutions=[224])
    src = load_accuracy_source("ofa-predictor", space, path=ofa_imported)
    assert "extrapolation" in src.extrapolation and "width_mult 1" in src.extrapolation


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _bad_pth(kind: str, folder: Path) -> Path:
    import torch

    path = folder / f"{kind}.pth"
    if kind == "truncated":
        path.write_bytes(OFA_PTH.read_bytes()[:5000])
    elif kind == "text":
        path.write_text("not a torch file\n")
    elif kind == "other-keys":
        torch.save({"fc.weight": torch.zeros(4, 4)}, path)
    elif kind == "other-shapes":
        torch.save({f"{i}.{p}": torch.zeros(3) for i in (0, 2, 4, 6)
                    for p in ("weight", "bias")}, path)
    elif kind == "a-pickle":
        torch.save({"0.weight": object()}, path)
    return path


@pytest.mark.parametrize("kind,needle", [
    ("truncated", "not a readable torch file"), ("text", "not a readable torch file"),
    ("other-keys", "missing key '0.weight'"), ("other-shapes", "key '0.weight' has shape"),
    ("a-pickle", "not a readable torch file"),
])
def test_a_pth_not_in_ofas_layout_is_one_line_and_keeps_the_import(kind, needle, ofa_imported,
                                                                   tmp_path, capsys):
    before = _sha(ofa_imported)
    capsys.readouterr()
    bad = _bad_pth(kind, tmp_path)
    assert main(["import-accuracy", "--source", str(bad), "--format", "ofa-predictor",
                 "--force"]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err
    assert _sha(ofa_imported) == before


def test_an_existing_import_is_replaced_only_with_force(ofa_imported, capsys):
    assert main(["import-accuracy", "--source", str(OFA_PTH)]) == 2
    assert "--force" in capsys.readouterr().err


def test_the_predictor_is_read_with_weights_only():
    import re

    root = Path(__file__).resolve().parents[1] / "hwnas"
    loads = [(p.name, m.group(0)) for p in root.rglob("*.py")
             for m in re.finditer(r"torch\.load\(.*", p.read_text(encoding="utf-8"))]
    mine = [text for name, text in loads if name == "ofa_predictor.py"]
    assert mine and all("weights_only=True" in t for t in mine)


def test_a_corrupt_import_is_one_line(ofa_imported):
    ofa_imported.write_bytes(b"PK\x03\x04 garbage")
    with pytest.raises(DataError, match="corrupt imported OFA accuracy predictor"):
        load_accuracy_source("ofa-predictor", get_space("ofa-mbv3-imagenet"))


# ---------------------------------------------------------------------------- every verb
def test_every_verb_takes_the_imagenet_configuration_by_name(note10, ofa_imported, tmp_path,
                                                              capsys):
    assert main(["predict", "--target", "note10", "--space", "ofa-mbv3-imagenet",
                 "--arch", TUTORIAL]) == 0
    assert "24." in capsys.readouterr().out
    out = tmp_path / "s"
    assert main(["search", "--target", "note10", "--space", "ofa-mbv3-imagenet",
                 "--latency-ms", "25", "-O", "generations=20", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "predicted (source ofa-predictor)" in printed
    best = json.loads((out / "arch.json").read_text())
    assert best["space_config"]["resolutions"] == [160, 176, 192, 208, 224]
    assert best["space_config"]["width_mult"] == 1.2
    acc = best["accuracy"]
    assert acc["source"] == "ofa-predictor" and acc["kind"] == "predicted"
    assert acc["top1"] == pytest.approx(best["objective"]["value"]) and acc["top1"] > 0.78
    pareto = json.loads((out / "pareto.json").read_text())
    assert pareto["accuracy_source"]["source"] == "ofa-predictor"
    # the arch round-trips through OFA's dict form
    space = get_space("ofa-mbv3-imagenet")
    assert str(space.from_json(_ofa_dict(best, 5))) == best["arch"]
    # import-table and profile name it too
    table = tmp_path / "t.json"
    assert main(["import-table", "--source", str(NOTE10), "--target", "note10",
                 "--space", "ofa-mbv3-imagenet", "--out", str(table)]) == 0
    meta = json.loads(table.read_text())["meta"]
    assert meta["space"] == "ofa-mbv3" and meta["spaces"][0]["width_mult"] == 1.2


def test_a_named_source_the_space_lacks_data_for_is_an_error(note10, tmp_path, capsys):
    assert main(["search", "--target", "note10", "--space", "ofa-mbv3-imagenet",
                 "--latency-ms", "25", "--accuracy", "ofa-predictor",
                 "--out", str(tmp_path / "s")]) == 2
    assert "hwnas import-accuracy" in capsys.readouterr().err


def test_with_no_source_imported_the_search_says_its_objective_is_no_accuracy(note10,
                                                                              tmp_path):
    import hwnas

    best = hwnas.search("note10", 25, space="ofa-mbv3-imagenet", generations=5)
    assert best["objective"]["name"] == "mflops"
    assert best["accuracy"]["source"] is None and "MACs" in best["accuracy"]["note"]


def test_profile_and_export_take_the_imagenet_configuration_by_name(debug_device, tmp_path,
                                                                    capsys):
    out = tmp_path / "t.json"
    assert main(["profile", "--target", "debugdev", "--space", "ofa-mbv3-imagenet",
                 "--workers", "0", "--limit", "4", "--networks", "0", "--out", str(out)]) == 0
    (cfg,) = json.loads(out.read_text())["meta"]["spaces"]
    assert cfg["width_mult"] == 1.2 and cfg["resolutions"] == [160, 176, 192, 208, 224]
    capsys.readouterr()
    bad = TUTORIAL.replace("r192", "r150")
    assert main(["export", "--arch", bad, "--target", "debugdev", "--space",
                 "ofa-mbv3-imagenet", "--no-measure", "--out", str(tmp_path / "b")]) == 2
    assert "resolution 150 not in this space (160..224" in capsys.readouterr().err


# ---------------------------------------------------------------------------- measured top-1
DYNAST = OFA_DIR / "dynast_top1"
needs_dynast = pytest.mark.skipif(not DYNAST.is_dir(), reason="DyNAS-T's top-1 not present")
HEADER = "Sub-network,Date,Model Parameters,Latency (ms),MACs,Top-1 Acc (%)\n"


def _dict_text(arch) -> str:
    obj = arch.to_json()
    return repr({"wid": None, "ks": obj["ks"], "e": obj["e"], "d": obj["d"], "r": [obj["r"]]})


def _synthetic_rows(n: int = 60, seed: int = 0) -> list[tuple[str, float]]:
    """Subnets of the w1.0/r224 configuration with a top-1 that grows with their size."""
    space = get_space("ofa-mbv3-imagenet-w10")
    rng = np.random.default_rng(seed)
    archs = list({str(a): a for a in space.sample_many(rng, n)}.values())
    macs = space.flops_genomes(space.to_genomes(archs))
    top1 = 70 + 6 * (np.log(macs) - np.log(macs).min()) / np.ptp(np.log(macs))
    return [(_dict_text(a), round(float(v), 3)) for a, v in zip(archs, top1)]


def _csv(path: Path, rows: list[tuple[str, float]]) -> Path:
    body = "".join(f'"{a}",2022-11-01,0,0,0,{v}\n' for a, v in rows)
    path.write_text(HEADER + body)
    return path


@pytest.fixture()
def measured_imported(tmp_path, monkeypatch):
    """A synthetic measured-top-1 CSV imported (by the verb) into an empty accuracy folder."""
    monkeypatch.setenv("HWNAS_ACCURACY", str(tmp_path / "accuracy"))
    rows = _synthetic_rows()
    src = _csv(tmp_path / "m.csv", rows + [(rows[0][0], rows[0][1] + 0.1)])   # one repeat
    assert main(["import-accuracy", "--source", str(src)]) == 0
    path = tmp_path / "accuracy" / "ofa-mbv3" / "measured.json"
    assert path.is_file()
    return path, rows


@needs_dynast
def test_dynast_rows_parse_and_their_repeats_are_averaged():
    from hwnas.predict.measured_csv import read_measured_csv

    space = get_space("ofa-mbv3-imagenet-w10")
    table = read_measured_csv([DYNAST], space)
    s = table.summary()
    # 1,265 rows, 1,215 distinct dict strings; OFA's unused slots differ in 12 more, so 1,203
    assert s["rows"] == 1265 and s["subnets"] == 1203
    assert s["max_repeat_spread"] <= 0.09 + 1e-9 and s["repeated"] == 59
    assert 71.9 <= s["top1_range"][0] and s["top1_range"][1] <= 77.5
    rep = next(r for r in table.rows if r.n > 1)
    assert len(rep.lines) == rep.n and all(":" in w for w in rep.lines)


@needs_dynast
def test_the_measured_model_ranks_dynasts_subnets_better_than_ofas_predictor():
    """The goal of the ImageNet objective check: cross-validated τ above OFA's 0.856."""
    from hwnas.predict.measured_csv import read_measured_csv
    from hwnas.predict.measured_model import cross_validate, front_analysis

    space = get_space("ofa-mbv3-imagenet-w10")
    table = read_measured_csv([DYNAST], space)
    genomes = space.to_genomes(table.archs(space))
    cv = cross_validate(space, genomes, table.top1 / 100)
    assert cv.tau > 0.856
    front = front_analysis(space, genomes, cv)
    assert front["n_far"] > 200 and front["tau_cv_far"] > 0.8


def test_the_measured_source_gives_measured_figures_where_measured(measured_imported):
    path, rows = measured_imported
    space = get_space("ofa-mbv3-imagenet-w10")
    src = load_accuracy_source("measured", space)
    assert src.kind == "measured" and src.extrapolation is None
    archs = [space.from_json(ast.literal_eval(a)) for a, _ in rows[:5]]
    g = space.to_genomes(archs)
    got = src.predict_genomes(g)
    want = np.array([v for _, v in rows[:5]]) / 100
    want[0] += 0.0005                         # the mean of 2 repeats 0.1 points apart
    assert np.allclose(got, want) and list(src.kind_genomes(g)) == ["measured"] * 5
    other = space.to_genomes(space.sample_many(np.random.default_rng(9), 3))
    assert set(src.kind_genomes(other)) == {"predicted"}
    assert np.all((src.predict_genomes(other) > 0.6) & (src.predict_genomes(other) < 0.8))
    data = json.loads(path.read_text())
    assert data["summary"]["repeated"] == 1 and data["cv"]["folds"] == 5


def test_the_measured_source_elsewhere_is_an_extrapolation(measured_imported):
    path, rows = measured_imported
    space = get_space("ofa-mbv3-imagenet")
    src = load_accuracy_source("measured", space)
    assert "width_mult 1.2 (source: 1.0)" in src.extrapolation
    assert "resolution 160, 176, 192, 208" in src.extrapolation
    arch = space.from_json(ast.literal_eval(rows[0][0]) | {"r": 224})
    label = src.label(space.to_genomes([arch])[0])     # this arch: its width, not its size
    assert label["kind"] == "predicted" and "width_mult 1.2" in label["extrapolation"]
    assert "resolution" not in label["extrapolation"]


@pytest.mark.parametrize("line,needle", [
    ("\"{'ks': [3, 5\",2022,0,0,0,75.0", "m.csv:3: malformed arch dict"),
    ("\"__import__('os').getcwd()\",2022,0,0,0,75.0", "m.csv:3: malformed"),
    ("\"{'ks': 1}\",2022,0,0,0,75.0", "m.csv:3: arch JSON lacks a valid field"),
    ("ROW,2022,0,0,0,150", "m.csv:3: top-1 150 outside 0-100"),
    ("ROW,2022,0,0,0,n/a", "m.csv:3: top-1 'n/a' is not a number"),
    ("R150,2022,0,0,0,75.0", "m.csv:3: resolution 150 not in this space"),
    ("K9,2022,0,0,0,75.0", "m.csv:3: stage 1: kernel not in"),
    ("REPEAT,2022,0,0,0,71.0", "2 times"),
])
def test_a_bad_csv_row_is_one_line_naming_it_and_keeps_the_import(line, needle,
                                                                  measured_imported, tmp_path,
                                                                  capsys):
    path, rows = measured_imported
    before = _sha(path)
    first = rows[1][0]
    obj = ast.literal_eval(first)
    line = (line.replace("ROW", f'"{first}"')
            .replace("R150", '"' + repr({**obj, "r": [150]}) + '"')
            .replace("K9", '"' + repr({**obj, "ks": [9] + obj["ks"][1:]}) + '"')
            .replace("REPEAT", f'"{first}"'))
    bad = tmp_path / "bad" / "m.csv"
    bad.parent.mkdir()
    bad.write_text(HEADER + f'"{first}",2022,0,0,0,{rows[1][1]}\n' + line + "\n")
    capsys.readouterr()
    assert main(["import-accuracy", "--source", str(bad), "--force"]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1, err
    assert _sha(path) == before


def test_repeats_within_the_stated_tolerance_are_averaged(tmp_path):
    from hwnas.predict.measured_csv import read_measured_csv

    rows = _synthetic_rows(5)
    src = _csv(tmp_path / "m.csv", rows + [(rows[0][0], rows[0][1] + 0.5)])
    space = get_space("ofa-mbv3-imagenet-w10")
    with pytest.raises(DataError, match="more than the tolerance 0.25"):
        read_measured_csv([src], space)
    table = read_measured_csv([src], space, tolerance=0.6)
    assert table.rows[0].n == 2 and table.rows[0].top1 == pytest.approx(rows[0][1] + 0.25)


def test_a_search_names_the_measured_source_and_its_kind(measured_imported, tmp_path,
                                                         monkeypatch):
    import hwnas
    from hwnas.profile.table import LatencyTable
    from hwnas.runtime.latency import Latency

    space = get_space("ofa-mbv3-imagenet-w10")
    t = LatencyTable({"target": "toy", "space": space.name, "spaces": [space.config()]})
    macs = space.cost_vectors()["macs"]
    for i, op in enumerate(space.op_list):
        ms = 1e-7 * macs[i] + 0.01
        t.add(op.key, Latency(ms, ms * 1.1, ms * 0.05, 10))
    monkeypatch.setenv("HWNAS_TABLES", str(tmp_path / "tables"))
    t.save(tmp_path / "tables" / "toy" / f"{space.name}.json")
    best = hwnas.search("toy", 60, space="ofa-mbv3-imagenet-w10", generations=5,
                        out=tmp_path / "s")
    acc = best["accuracy"]
    assert acc["source"] == "measured" and acc["kind"] in ("measured", "predicted")
    assert acc["extrapolation"] is None and best["objective"]["name"] == "accuracy"
    assert json.loads((tmp_path / "s" / "pareto.json").read_text())["accuracy_source"][
        "source"] == "measured"


# ---------------------------------------------------------------------------- manifests
SEARCHED = {"source": "ofa-predictor", "kind": "predicted", "top1": 0.8171, "origin": "x.npz",
            "domain": {}, "extrapolation": None, "note": "OFA's predictor"}


def test_a_manifest_states_measured_weights_and_keeps_the_searchs_figure_beside():
    from hwnas.export.accuracy import manifest_accuracy

    weights = {"trained": True, "accuracy": 0.85, "split": "test", "dataset": "fashion-mnist",
               "n_eval": 10000, "source": "ck"}
    acc = manifest_accuracy(weights, SEARCHED)
    assert acc["kind"] == "measured" and acc["source"] == "supernet" and acc["top1"] == 0.85
    assert acc["search"] == SEARCHED


def test_a_manifest_of_untrained_weights_states_the_searchs_figure_or_none():
    from hwnas.export.accuracy import manifest_accuracy

    acc = manifest_accuracy({"trained": False}, SEARCHED)
    assert acc["kind"] == "predicted" and acc["source"] == "ofa-predictor"
    assert acc["top1"] == 0.8171 and "not evaluated" in acc["note"]
    none = manifest_accuracy({"trained": False}, None)
    assert none["kind"] is None and none["top1"] is None and "not known" in none["note"]


def test_the_deploy_report_says_measured_or_predicted_and_the_source():
    from hwnas.deploy.report import _accuracy_line
    from hwnas.export.accuracy import manifest_accuracy

    line = _accuracy_line({"accuracy": manifest_accuracy({"trained": False}, {
        **SEARCHED, "extrapolation": "extrapolation: width_mult 1.0 (source: 1.2)"})})
    assert "81.71% predicted (source ofa-predictor) [extrapolation: width_mult 1.0" in line
    old = _accuracy_line({"weights": {"accuracy": 0.8, "dataset": "d"}})   # an older manifest
    assert "0.8000 on the held-out split of d" in old
