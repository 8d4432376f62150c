"""A small world of a user's files for the bad-input tests, and the checks every case makes.

``world`` is a temporary folder that holds everything a case may point at: a debug device
target (``debugdev``), valid latency tables (``toy``, ``debugdev``), a user's own folder and
file, an earlier bundle and search result, and malformed files of every kind a user passes
(arch.json, checkpoint metadata and weights, tables and their metadata, target TOML, tuning
databases, datasets, published lookup tables and accuracy data). ``HWNAS_TARGETS``,
``HWNAS_TABLES``, ``HWNAS_CHECKPOINTS``, ``HWNAS_ACCURACY`` and ``HWNAS_CACHE`` point into it,
and the working folder is it, so that nothing under the checkout is touched. Compiling is made impossible: a case that reached the
compiler fails with exit 1 instead of compiling.
"""
from __future__ import annotations

import io
import json
import shlex
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from hwnas.cli import main
from conftest import DEBUG_TARGET          # the debug device the other tests use

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ("latency_tables", "targets", "checkpoints")


@dataclass(frozen=True)
class Case:
    """``argv`` is split like a shell line after ``{w}`` becomes the world folder."""

    id: str
    argv: str
    code: int = 2
    needle: str = ""                  # a part of the error line that says why
    env: dict = field(default_factory=dict)

    def param(self):
        return pytest.param(self, id=self.id)


def _table(target: str, space, slope: float = 0.02, **meta) -> dict:
    macs = space.cost_vectors()["macs"]
    entries = {}
    for i, op in enumerate(space.op_list):
        ms = slope * macs[i] * 1e-6 + 0.005
        entries[op.key] = {"median_ms": ms, "p90_ms": ms * 1.1, "std_ms": ms * 0.05, "n": 10}
    return {"format": "hwnas-latency-table/1",
            "meta": {"target": target, "space": space.name, "spaces": [space.config()],
                     "measured_here": True, "networks": [], **meta},
            "entries": entries}


def _write(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def _tables(w: Path, space) -> None:
    good = _table("toy", space)
    _write(w / "tables/toy/ofa-mbv3.json", good)
    text = json.dumps(good)
    _write(w / "tables/corrupt/ofa-mbv3.json", "{\"format\": [1, 2")
    _write(w / "tables/truncated/ofa-mbv3.json", text[: len(text) // 2])
    _write(w / "tables/notable/ofa-mbv3.json", [1, 2, 3])
    _write(w / "tables/foreign/ofa-mbv3.json", _table("x86-host", space))
    bad_meta = {"spaces-not-list": {"spaces": "ofa-mbv3"},
                "spaces-item": {"spaces": [3]},
                "networks-not-list": {"networks": {"a": 1}},
                "networks-record": {"networks": [{"median_ms": 1.0}]},
                "networks-ms": {"networks": [{"arch": "x", "median_ms": -1}]},
                "reference": {"reference": {"arch": "x", "quiet_ms": "fast"}},
                "target-type": {"target": ["toy"]}}
    for name, meta in bad_meta.items():
        t = _table(name, space)
        t["meta"].update(meta)
        _write(w / f"tables/{name}/ofa-mbv3.json", t)
    t = _table("badentry", space)
    t["entries"][next(iter(t["entries"]))]["median_ms"] = float("nan")
    _write(w / "tables/badentry/ofa-mbv3.json", json.dumps(t))       # NaN is not JSON: Python's
    # a calibrated predictor fitted on another device's table, lying beside this one's
    _write(w / "tables/calforeign/ofa-mbv3.json", _table("calforeign", space))
    _write(w / "tables/calforeign/ofa-mbv3.calibrated.json",
           {"format": "hwnas-predictor/1", "kind": "calibrated", "space": space.config(),
            "provenance": {"table_target": "x86-host"}, "model": {}})
    _write(w / "tables/calbroken/ofa-mbv3.json", _table("calbroken", space))
    _write(w / "tables/calbroken/ofa-mbv3.calibrated.json", "[[[")


def _checkpoints(w: Path) -> None:
    shipped = json.loads((ROOT / "checkpoints/ofa-mbv3-fmnist/meta.json").read_text())
    c = w / "ckpt"
    (c / "nometa").mkdir(parents=True)
    _write(c / "badjson/meta.json", "{space: ofa}")
    _write(c / "metalist/meta.json", [1, 2])
    _write(c / "nospace/meta.json", {"dataset": {}})
    _write(c / "spacenum/meta.json", {"space": 3})
    _write(c / "spacebad/meta.json", {"space": {"name": "ofa-mbv3", "resolutions": [-4]}})
    _write(c / "garbage/meta.json", shipped)
    _write(c / "garbage/supernet.pt", b"\x80\x04not a torch file at all" * 10)
    _write(c / "pickled/meta.json", shipped)
    _write(c / "pickled/supernet.pt", _pickled_state())
    _write(c / "truncated/meta.json", shipped)
    _write(c / "truncated/supernet.pt", _pickled_state()[:300])


def _pickled_state() -> bytes:
    """A torch file that holds a non-tensor object: loading it fully would run its pickle."""
    import torch

    buf = io.BytesIO()
    torch.save({"weight": torch.zeros(2), "hook": Path("/tmp")}, buf)
    return buf.getvalue()


def _arch_files(w: Path) -> None:
    a = w / "arch"
    _write(a / "notjson.json", "r128-k3")
    _write(a / "list.json", ["r128"])
    _write(a / "noarch.json", {"space": "ofa-mbv3"})
    _write(a / "archnum.json", {"arch": 128})
    _write(a / "spacecfg.json", {"arch": "r128-k33.33.33.33.33-e33.33.33.33.33",
                                 "space_config": {"name": "ofa-mbv3", "width_mult": "wide"}})
    _write(a / "spacename.json", {"arch": "x", "space_config": {"name": "nope"}})


def _targets(w: Path) -> None:
    t = w / "badtargets"
    _write(t / "syntax.toml", "runtime = \n[tvm\n")
    _write(t / "nokind.toml", "[tvm]\nmcpu = \"x\"\n")
    _write(t / "threads.toml", "threads = 0\n[tvm]\nkind = \"llvm\"\n")
    _write(t / "affinity.toml",
           "device = \"rpc\"\naffinity = \"shared\"\n[tvm]\nkind = \"llvm\"\n")
    _write(t / "runtime.toml", "runtime = \"gpu\"\n[tvm]\nkind = \"llvm\"\n")
    _write(t / "binary.toml", b"\xff\xfe\x00\x00garbage")
    _write(t / "crosscc.toml", "[tvm]\nkind = \"llvm\"\n[export]\ncross_compiler = 3\n")
    _write(w / "mixed/good.toml", DEBUG_TARGET)
    _write(w / "mixed/broken.toml", "[tvm\n")


def _datasets(w: Path) -> None:
    d = w / "data"
    _write(d / "garbage.npz", b"PK\x03\x04 not really a zip")
    buf = io.BytesIO()
    np.savez(buf, x_train=np.zeros((4, 8, 8)), y_train=np.zeros(4))
    _write(d / "partial.npz", buf.getvalue())
    buf = io.BytesIO()
    np.savez(buf, x_train=np.zeros(4), y_train=np.zeros(4), x_test=np.zeros(4), y_test=np.zeros(4))
    _write(d / "flat.npz", buf.getvalue())
    buf = io.BytesIO()
    np.savez(buf, x_train=np.zeros((8, 8, 8)), y_train=np.array(["a"] * 8),
             x_test=np.zeros((2, 8, 8)), y_test=np.array(["b"] * 2))
    _write(d / "strlabels.npz", buf.getvalue())
    _write(d / "badimage/cat/0.npy", b"\x93NUMPY garbage")
    _write(d / "badimage/dog/0.npy", b"not numpy")
    (d / "noclasses").mkdir(parents=True)


def _tuning(w: Path) -> None:
    db = w / "tuning"
    _write(db / "corrupt/tuning.json", "{{")
    for f in ("database_workload.json", "database_tuning_record.json"):
        _write(db / f"foreign/{f}", "[]\n")
        _write(db / f"corrupt/{f}", "[]\n")
    _write(db / "foreign/tuning.json", {"format": "hwnas-tuning-db/1",
                                        "target": {"name": "rpi4", "kind": "llvm",
                                                   "mtriple": "aarch64-linux-gnu"}})


def _luts(w: Path) -> None:
    from hwnas.spaces import get_space

    sp = get_space("ofa-mbv3", width_mult=1.2, resolutions=[160])
    body = "".join(f"{op.key}:\n  count: 3\n  mean: 0.5\n  std: 0.01\n" for op in sp.op_list)
    _write(w / "lut/ofa/160_lookup_table.yaml", body)
    _write(w / "lut/bad.yaml", "Conv-input:8x8x3-output:4x4x8: {count: 3}\n")
    _write(w / "lut/notyaml.yaml", "a: [1, 2\n")


def _accuracy(w: Path) -> None:
    """A small state_dict in OFA's accuracy predictor layout (imported before, as the user's
    earlier import), one truncated and one of another layout; measured-top-1 CSVs with a
    top-1 outside 0-100 and with a malformed arch dict."""
    import torch

    from hwnas.predict.ofa_predictor import read_ofa_pth
    from hwnas.spaces import get_space

    g = torch.Generator().manual_seed(0)
    sizes = [(4, 128), (4, 4), (4, 4), (1, 4)]
    sd = {}
    for i, (o, n) in enumerate(sizes):
        sd[f"{2 * i}.weight"] = torch.randn(o, n, generator=g)
        sd[f"{2 * i}.bias"] = torch.randn(o, generator=g)
    buf = io.BytesIO()
    torch.save(sd, buf)
    good = _write(w / "acc/good.pth", buf.getvalue())
    _write(w / "acc/truncated.pth", buf.getvalue()[: len(buf.getvalue()) // 2])
    buf = io.BytesIO()
    torch.save({"fc.weight": torch.zeros(4, 4)}, buf)
    _write(w / "acc/other.pth", buf.getvalue())
    read_ofa_pth(good, get_space("ofa-mbv3-imagenet").config()).save(
        w / "accuracy/ofa-mbv3/ofa-predictor.npz")
    arch = get_space("ofa-mbv3-imagenet-w10").sample(np.random.default_rng(0)).to_json()
    row = repr({k: arch[k] for k in ("ks", "e", "d")} | {"wid": None, "r": [224]})
    head = "Sub-network,Top-1 Acc (%)\n"
    _write(w / "acc/top1.csv", f'{head}"{row}",75.1\n"{row}",175.1\n')
    _write(w / "acc/dict.csv", f'{head}"{row}",75.1\n"{row[:40]}",75.1\n')


def _user_outputs(w: Path) -> None:
    _write(w / "mywork/notes.md", "my notes\n")
    _write(w / "mywork/results.csv", "a,b\n1,2\n")
    _write(w / "notes.md", "a file named like --out\n")
    _write(w / "oldbundle/manifest.json", {"format": "hwnas-bundle/1", "arch": "x"})
    _write(w / "oldbundle/model.onnx", b"onnx bytes")
    _write(w / "oldsearch/arch.json", {"arch": "x", "strategy": "evolution"})
    _write(w / "ckptout/notes.md", "not a checkpoint\n")


@pytest.fixture()
def world(tmp_path, monkeypatch):
    """The world of the refusal cases: nothing may compile, train, measure or start a farm."""
    return _world(tmp_path, monkeypatch, strict=True)


@pytest.fixture()
def valid_world(tmp_path, monkeypatch):
    """The same world for valid input: the debug device measures; still nothing compiles."""
    return _world(tmp_path, monkeypatch, strict=False)


def _world(tmp_path, monkeypatch, strict: bool) -> Path:
    from hwnas.spaces import get_space

    w = tmp_path
    space = get_space("ofa-mbv3", resolutions=[128])
    _write(w / "targets/debugdev.toml", DEBUG_TARGET)
    _tables(w, space)
    _checkpoints(w)
    _arch_files(w)
    _targets(w)
    _datasets(w)
    _tuning(w)
    _luts(w)
    _accuracy(w)
    _user_outputs(w)
    monkeypatch.setenv("HWNAS_TARGETS", str(w / "targets"))
    monkeypatch.setenv("HWNAS_TABLES", str(w / "tables"))
    (w / "checkpoints").mkdir()
    monkeypatch.setenv("HWNAS_CHECKPOINTS", str(w / "checkpoints"))
    monkeypatch.setenv("HWNAS_CACHE", str(w / "cache"))
    monkeypatch.setenv("HWNAS_ACCURACY", str(w / "accuracy"))
    monkeypatch.chdir(w)
    _no_compiler(monkeypatch, strict)
    return w


def _no_compiler(monkeypatch, strict: bool) -> None:
    """A case that gets as far as compiling, tuning, training, measuring or starting a farm
    fails with exit 1 instead."""
    def refuse(*_a, **_k):
        raise AssertionError("reached the compiler: the bad input was not refused first")

    import importlib

    heavy = [("hwnas.compiler", "compile_onnx"), ("hwnas.compiler", "compile_relax"),
             ("hwnas.compiler.tune", "tune_onnx"),
             ("hwnas.compiler.space_tuning", "enumerate_kernels"), ("hwnas.farm.local", "_spawn")]
    if strict:
        heavy += [("hwnas.train.trainer", "train_step"), ("hwnas.profile.profiler", "run_waves"),
                  ("hwnas.deploy.loop", "_time_reference")]
    for mod, name in heavy:
        monkeypatch.setattr(importlib.import_module(mod), name, refuse)


def arch_string(space_name: str = "ofa-mbv3", **config) -> str:
    from hwnas.spaces import get_space

    sp = get_space(space_name, **config)
    return str(sp.sample(np.random.default_rng(0)))


def snapshot(w: Path) -> dict:
    """Every file of the world (bytes) and of the checkout's data folders (size, mtime)."""
    files = {p: p.read_bytes() for p in w.rglob("*") if p.is_file()}
    for kind in SHIPPED:
        files.update({p: (p.stat().st_size, p.stat().st_mtime_ns)
                      for p in (ROOT / kind).rglob("*") if p.is_file()})
    return files


def check_refused(case: Case, w: Path, capsys, monkeypatch) -> str:
    """Run ``case`` through ``hwnas.cli.main``: its exit code, one ``hwnas: error:`` line on
    stderr and no traceback, and every file that existed before byte-identical after."""
    for k, v in case.env.items():
        monkeypatch.setenv(k, v.format(w=w))
    before = snapshot(w)
    argv = [a.format(w=w) for a in shlex.split(case.argv)]
    capsys.readouterr()
    with warnings.catch_warnings(record=True) as warned:   # a warning is one more line
        warnings.simplefilter("always")
        try:
            code = main(argv)
        except SystemExit as exc:           # argparse
            code = exc.code
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == case.code, f"exit {code}, expected {case.code}; stderr: {err}"
    assert len(lines) == 1 and lines[0].startswith("hwnas: error: "), err
    assert "Traceback" not in err
    shown = [str(w.message) for w in warned       # what Python prints outside tests
             if not issubclass(w.category, (ResourceWarning, DeprecationWarning))]
    assert not shown, shown
    assert case.needle in lines[0], f"'{case.needle}' not in: {lines[0]}"
    after = snapshot(w)
    changed = [str(p) for p, v in before.items() if after.get(p) != v]
    assert not changed, f"pre-existing files changed or lost: {changed}"
    return lines[0]
