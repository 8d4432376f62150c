"""Once-for-All's published checkpoint format (``hwnas.train.ofa_checkpoint``).

OFA's real weights are not here; the forward fixture in the shared data is: every key and shape
of ``ofa_mbv3_d234_e346_k357_w1.2``, two numpy recipes that fill them (``synthetic_weights.py``,
imported from the shared folder, not copied), and OFA's own logits of 4 subnets under each.
A loader passes when hwnas's supernet forward and its extracted subnet reproduce those logits
within 1e-3 of the largest logit's magnitude (the fixture's rule), from a file written as OFA
writes its own: ``torch.save({"state_dict": ...})``.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from _bad_world import Case, _table, check_refused, valid_world, world  # noqa: F401  (fixtures)
from test_accuracy_sources import note10, ofa_imported  # noqa: F401  (fixtures)
from conftest import EXTERNAL
from hwnas.cli import main
from hwnas.spaces import get_space
from hwnas.train.checkpoint import load_supernet
from hwnas.spaces.ofa_checkpoint import KEY_RULES, to_hwnas_key, to_ofa_key

FIXTURE = EXTERNAL / "ofa_imagenet" / "forward_fixture"
RECIPES = {"v1": "ofa_forward_fixture.json", "v2": "ofa_forward_fixture_v2.json"}
SUBNETS = ("largest", "smallest", "mixed_a", "mixed_b")
RULE = 1e-3                                   # max |Δ| ≤ RULE · max |OFA's logit|

needs_fixture = pytest.mark.skipif(not FIXTURE.is_dir(), reason=f"no fixture at {FIXTURE}")


def _recipe_module():
    spec = importlib.util.spec_from_file_location("synthetic_weights",
                                                  FIXTURE / "synthetic_weights.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _fixture(recipe: str) -> dict:
    return json.loads((FIXTURE / RECIPES[recipe]).read_text())


@pytest.fixture(scope="module")
def ofa_files(tmp_path_factory) -> dict[str, Path]:
    """Each recipe's weights, checked bit for bit against the fixture's digest, in OFA's file
    format."""
    synth = _recipe_module()
    out = {}
    for recipe in RECIPES:
        sd = synth.make_state_dict(str(FIXTURE / "keys_w12.txt"), recipe)
        digest = hashlib.sha256(b"".join(np.ascontiguousarray(v).tobytes() for v in sd.values()))
        assert digest.hexdigest() == _fixture(recipe)["state_dict_raw_sha256"]
        path = tmp_path_factory.mktemp("ofa") / f"ofa_mbv3_w12_{recipe}.pth"
        torch.save({"state_dict": {k: torch.from_numpy(np.asarray(v)) for k, v in sd.items()}},
                   path)
        out[recipe] = path
    return out


@pytest.fixture(scope="module")
def loaded(ofa_files):
    return {recipe: load_supernet(path) for recipe, path in ofa_files.items()}


def _arch(space, config: dict):
    d = config["d"]
    return space.make(config["r"], [config["ks"][4 * s:4 * s + d[s]] for s in range(5)],
                      [config["e"][4 * s:4 * s + d[s]] for s in range(5)])


def _input(r: int) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(0).standard_normal((1, 3, r, r))
                            .astype(np.float32))


def _rel(y: np.ndarray, ref: np.ndarray) -> float:
    return float(np.abs(y - ref).max() / np.abs(ref).max())


@needs_fixture
def test_every_key_of_ofa_w12_maps_to_the_imagenet_supernet_and_back():
    from hwnas.spaces import space_plugin

    keys = [ln.split(" ", 1) for ln in (FIXTURE / "keys_w12.txt").read_text().splitlines() if ln]
    space = get_space("ofa-mbv3-imagenet")
    own = space_plugin(space).build_supernet(space).state_dict()
    mapped = {}
    for key, shape in keys:
        name = to_hwnas_key(key)
        assert name in own, key
        assert tuple(own[name].shape) == tuple(json.loads(shape.replace("(", "[").replace(
            ",)", "]").replace(")", "]"))), key
        assert to_ofa_key(name) == key
        mapped[name] = key
    assert len(mapped) == len(keys) == 475
    assert set(own) - set(mapped) == {"feature_mix.0.bias"}      # OFA's has no bias: zeros
    assert len(KEY_RULES) == len({o for o, _ in KEY_RULES})


@needs_fixture
def test_the_file_names_its_configuration_and_weights(loaded, ofa_files):
    space, net, meta = loaded["v1"]
    assert space.config() == get_space("ofa-mbv3-imagenet").config()
    assert meta["configuration"] == "ofa-mbv3-imagenet"
    assert meta["weights"] == f"Once-for-All checkpoint {ofa_files['v1']}"
    assert "dataset" not in meta and not net.training
    assert torch.count_nonzero(net.feature_mix[0].bias) == 0
    t = net.blocks[0].dw.transform_7to5                     # OFA's blocks.1 7to5_matrix
    synth = _recipe_module()
    ref = synth.synth("blocks.1.conv.depth_conv.conv.7to5_matrix", (25, 25), "v1")
    assert torch.equal(t.detach(), torch.from_numpy(ref))


@needs_fixture
@pytest.mark.parametrize("recipe", sorted(RECIPES))
@pytest.mark.parametrize("name", SUBNETS)
def test_supernet_and_extracted_subnet_reproduce_ofa_logits(loaded, recipe, name):
    space, net, _ = loaded[recipe]
    sub = next(s for s in _fixture(recipe)["subnets"] if s["name"] == name)
    arch = _arch(space, sub["config"])
    x = _input(arch.r)
    ref = np.asarray(sub["supernet_forward"]["logits"], np.float32)
    with torch.no_grad():
        net.set_active_subnet(arch)
        y_super = net(x).numpy()[0]
        static = net.get_active_subnet(arch).eval()
        y_sub = static(x).numpy()[0]
    assert _rel(y_super, ref) <= RULE, f"supernet forward: {_rel(y_super, ref):.2e}"
    assert _rel(y_sub, ref) <= RULE, f"extracted subnet: {_rel(y_sub, ref):.2e}"


@needs_fixture
def test_the_check_catches_a_loader_that_transposes_the_transform_matrices(ofa_files):
    """One of the fixture's catalogued loader mistakes, made on purpose, fails the rule: the
    comparison has teeth where recipe v2 says it does."""
    space, net, _ = load_supernet(ofa_files["v2"])
    with torch.no_grad():
        for name, value in net.named_parameters():
            if ".transform_" in name:
                value.copy_(value.t().clone())
        sub = next(s for s in _fixture("v2")["subnets"] if s["name"] == "mixed_a")
        arch = _arch(space, sub["config"])
        net.set_active_subnet(arch)
        y = net(_input(arch.r)).numpy()[0]
    assert _rel(y, np.asarray(sub["supernet_forward"]["logits"], np.float32)) > 10 * RULE


@needs_fixture
def test_older_ofa_key_names_load_the_same_weights(ofa_files, tmp_path):
    """OFA's earlier releases name blocks ``.mobile_inverted_conv.`` and wrap BN one level
    less deep; OFA's own loader reads them, and so does hwnas."""
    state = torch.load(ofa_files["v2"], weights_only=True)["state_dict"]
    old = {k.replace(".conv.", ".mobile_inverted_conv.", 1) if k.startswith("blocks.") else k: v
           for k, v in state.items()}
    old = {k.replace(".bn.bn.", ".bn."): v for k, v in old.items()}
    path = tmp_path / "old_names.pth"
    torch.save({"state_dict": old, "epoch": 179}, path)
    a = load_supernet(ofa_files["v2"]).supernet.state_dict()
    b = load_supernet(path).supernet.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_file_of_the_w10_supernet_loads_as_its_configuration(tmp_path):
    """OFA's w1.0 supernet (``ofa_mbv3_d234_e346_k357_w1.0``) has the widths of the
    configuration DyNAS-T's measured subnets are in; its shapes select it."""
    from hwnas.spaces import space_plugin

    space = get_space("ofa-mbv3-imagenet-w10")
    own = space_plugin(space).build_supernet(space).state_dict()
    path = tmp_path / "w10.pth"
    torch.save({"state_dict": {to_ofa_key(k): v for k, v in own.items()
                               if to_ofa_key(k) is not None}}, path)
    loaded = load_supernet(path)
    assert loaded.meta["configuration"] == "ofa-mbv3-imagenet-w10"
    assert loaded.meta["format"] == "once-for-all"
    assert loaded.space.config() == space.config()


@needs_fixture
def test_a_search_with_ofas_file_scores_by_its_configurations_sources(ofa_files, note10,
                                                                      ofa_imported, tmp_path,
                                                                      capsys):
    """The file brings weights only: the search of its configuration (ofa-mbv3-imagenet,
    from the shapes) goes by the source that configuration accepts, OFA's predictor."""
    out = tmp_path / "s"
    assert main(["search", "--target", "note10", "--checkpoint", str(ofa_files["v1"]),
                 "--latency-ms", "25", "-O", "generations=5", "--out", str(out)]) == 0
    best = json.loads((out / "arch.json").read_text())
    assert best["space_config"] == get_space("ofa-mbv3-imagenet").config()
    assert best["accuracy"]["source"] == "ofa-predictor"
    assert "predicted (source ofa-predictor)" in capsys.readouterr().out


# ---------------------------------------------------------------------------- every verb
def _small_ofa_file(path: Path, **edit) -> Path:
    """A file in OFA's format at the shipped small configuration's shapes (fast to load):
    hwnas's own supernet renamed into OFA's keys, then ``edit``ed."""
    from hwnas.spaces import space_plugin

    torch.manual_seed(0)
    space = get_space("ofa-mbv3-fmnist")
    own = space_plugin(space).build_supernet(space).state_dict()
    state = {to_ofa_key(k): v for k, v in own.items() if to_ofa_key(k) is not None}
    for key, value in edit.items():
        state = {(value if k == key and isinstance(value, str) else k):
                 (value if k == key and torch.is_tensor(value) else v)
                 for k, v in state.items() if not (k == key and value is None)}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": state}, path)
    return path


def test_every_verb_takes_an_ofa_file(valid_world, capsys):
    space = get_space("ofa-mbv3-fmnist")
    (valid_world / "tables/ofatoy").mkdir(parents=True)
    (valid_world / "tables/ofatoy/ofa-mbv3.json").write_text(json.dumps(_table("ofatoy", space)))
    ckpt = str(_small_ofa_file(valid_world / "ofa" / "small.pth"))
    arch = str(space.sample(np.random.default_rng(0)))

    def ok(*argv: str) -> str:
        code = main(list(argv))
        out, err = capsys.readouterr()
        assert code == 0, err
        return out

    assert f"{arch}  " in ok("predict", "--target", "ofatoy", "--arch", arch, "--checkpoint", ckpt)
    found = ok("search", "--target", "ofatoy", "--latency-ms", "5", "--checkpoint", ckpt,
               "--option", "generations=3", "--option", "population=20")
    assert "mflops" in found
    ok("export", "--arch", arch, "--target", "debugdev", "--checkpoint", ckpt, "--out",
       str(valid_world / "b"), "--no-measure")
    m = json.loads((valid_world / "b/manifest.json").read_text())
    assert m["weights"]["source"] == f"Once-for-All checkpoint {ckpt}"
    assert m["weights"]["accuracy"] is None and m["space"] == space.config()
    ok("profile", "--target", "debugdev", "--workers", "0", "--networks", "0", "--limit", "3",
       "--checkpoint", ckpt, "--out", str(valid_world / "t.json"))
    assert json.loads((valid_world / "t.json").read_text())["meta"]["spaces"] == [space.config()]


def test_deploy_takes_an_ofa_file(debug_device, tmp_path):
    import hwnas

    ckpt = _small_ofa_file(tmp_path / "small.pth")
    m = hwnas.deploy("debugdev", latency_ms=5, out=tmp_path / "bundle", checkpoint=ckpt,
                     max_rounds=1)
    assert m["weights"]["source"] == f"Once-for-All checkpoint {ckpt}"
    assert m["latency"]["within_budget"] and "sample" not in m
    assert "Once-for-All checkpoint" in (tmp_path / "bundle/report.md").read_text()


# ---------------------------------------------------------------------------- bad files
def _bad_files(w: Path) -> None:
    from hwnas.spaces import space_plugin

    d = w / "ofa"
    good = _small_ofa_file(d / "good.pth")
    space = get_space("ofa-mbv3-fmnist")
    torch.save(space_plugin(space).build_supernet(space).state_dict(), d / "hwnas_layout.pth")
    _small_ofa_file(d / "renamed.pth", **{"blocks.6.conv.depth_conv.conv.conv.weight":
                                          "blocks.6.conv.depth_conv.dw.weight"})
    _small_ofa_file(d / "missing.pth", **{"blocks.9.conv.point_linear.bn.bn.running_var": None})
    _small_ofa_file(d / "shape.pth", **{"blocks.9.conv.depth_conv.conv.7to5_matrix":
                                        torch.eye(16)})
    _small_ofa_file(d / "classes.pth", **{"classifier.linear.weight": torch.zeros(7, 1280),
                                          "classifier.linear.bias": torch.zeros(7)})
    (d / "truncated.pth").write_bytes(good.read_bytes()[:4000])
    torch.save({"state_dict": {"first_conv.conv.weight": [1, 2]}}, d / "list_value.pth")


BAD = [
    ("export", "hwnas_layout", "key 'stem.0.weight' does not fit Once-for-All's"),
    ("search", "renamed", "key 'blocks.6.conv.depth_conv.dw.weight' does not fit"),
    ("predict", "missing", ("key 'blocks.9.conv.point_linear.bn.bn.running_var' of the "
                            "ofa-mbv3-fmnist supernet is missing")),
    ("tune", "shape", "key 'blocks.9.conv.depth_conv.conv.7to5_matrix' has shape (16, 16)"),
    ("profile", "classes", "7 classes and 1-channel input fits no configuration"),
    ("deploy", "truncated", "truncated"),
    ("export", "list_value", "holds a list, not a tensor"),
]
ARGV = {"export": "export --arch {arch} --target x86-host --no-measure --out {w}/b",
        "search": "search --target toy --latency-ms 5",
        "predict": "predict --target toy --arch {arch}",
        "tune": "tune --target x86-host",
        "profile": "profile --target debugdev --workers 0 --out {w}/t.json",
        "deploy": "deploy --target debugdev --latency-ms 5 --out {w}/b"}


@pytest.mark.parametrize("verb,name,needle", BAD, ids=[f"{v}-{n}" for v, n, _ in BAD])
def test_a_file_of_another_layout_is_one_line_and_keeps_every_file(world, capsys, monkeypatch,
                                                                   verb, name, needle):
    _bad_files(world)
    arch = str(get_space("ofa-mbv3-fmnist").smallest())
    argv = ARGV[verb].format(arch=arch, w="{w}") + f" --checkpoint {{w}}/ofa/{name}.pth"
    line = check_refused(Case(f"{verb}-{name}", argv, needle=needle), world, capsys, monkeypatch)
    assert "weights_only" not in line


# ---------------------------------------------------------------------------- export
@needs_fixture
def test_an_exported_onnx_model_carries_ofa_weights(ofa_files, debug_device, tmp_path):
    """A bundle exported with OFA's file: its ONNX model (onnxruntime) agrees with torch, as
    every bundle's does, and gives OFA's own logits."""
    import hwnas
    from hwnas.compiler.onnx_export import run_ort

    sub = next(s for s in _fixture("v2")["subnets"] if s["name"] == "mixed_a")
    space = get_space("ofa-mbv3-imagenet")
    arch = _arch(space, sub["config"])
    m = hwnas.export(str(arch), "debugdev", tmp_path / "b", checkpoint=ofa_files["v2"],
                     tuning_db=None)
    assert m["weights"]["source"] == f"Once-for-All checkpoint {ofa_files['v2']}"
    assert m["space"] == space.config() and m["accuracy"]["top1"] is None
    assert m["parity"]["onnxruntime_vs_torch_max_abs"] <= 1e-4
    ref = np.asarray(sub["supernet_forward"]["logits"], np.float32)
    assert _rel(run_ort(tmp_path / "b/model.onnx", _input(arch.r).numpy())[0], ref) <= RULE


@needs_fixture
@pytest.mark.tvm
def test_the_tvm_library_carries_ofa_weights(ofa_files, tmp_path):
    """The TVM library of a subnet with OFA's weights gives OFA's own logits, and agrees with
    onnxruntime as every bundle's does."""
    import hwnas
    from hwnas.export import run_tvm_library

    sub = next(s for s in _fixture("v2")["subnets"] if s["name"] == "mixed_a")
    space = get_space("ofa-mbv3-imagenet")
    arch = _arch(space, sub["config"])
    m = hwnas.export(str(arch), "x86-host", tmp_path / "b", checkpoint=ofa_files["v2"],
                     tuning_db=None)
    assert m["parity"]["tvm_vs_onnxruntime_max_abs"] <= 1e-4
    ref = np.asarray(sub["supernet_forward"]["logits"], np.float32)
    x = _input(arch.r).numpy()
    assert _rel(run_tvm_library(tmp_path / "b" / m["files"]["library"], x)[0], ref) <= RULE
