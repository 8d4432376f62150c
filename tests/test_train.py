"""Data loading, checkpoints, BN recalibration, the accuracy predictor and resume-after-kill."""
from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from hwnas.errors import DataError, RegistryError
from hwnas.spaces import get_space
from hwnas.predict.accuracy import AccuracyPredictor, fit_accuracy_predictor, kendall_tau
from hwnas.train.bn import recalibrate_bn
from hwnas.train.checkpoint import load_state, load_supernet, save_state
from hwnas.train.data import load_dataset, resize


# ---------------------------------------------------------------------------- data
def _write_idx(path: Path, arr: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + arr.astype(np.uint8).tobytes())


def test_fashion_mnist_reader_parses_idx_files(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 24), ("t10k", 6)):
        _write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 255, (n, 28, 28)))
        _write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    monkeypatch.setenv("HWNAS_FASHION_MNIST", str(tmp_path))
    ds = load_dataset("fashion-mnist", val_fraction=0.25, pad_to=32)
    assert ds.name == "fashion-mnist" and ds.num_classes == 10
    assert ds.sizes() == {"train": 18, "val": 6, "test": 6}
    assert ds.x_train.shape == (18, 1, 32, 32) and ds.x_train.dtype == torch.float32
    assert ds.y_test.tolist() == [0, 1, 2, 3, 4, 5]
    assert ds.classes[9] == "Ankle boot"
    assert abs(float(ds.x_train.mean())) < 0.05


def test_fashion_mnist_missing_files_name_the_package(tmp_path, monkeypatch):
    monkeypatch.setenv("HWNAS_FASHION_MNIST", str(tmp_path))
    with pytest.raises(DataError, match="dataset-fashion-mnist"):
        load_dataset("fashion-mnist")


def test_digits_splits_and_normalises():
    ds = load_dataset("digits")
    assert ds.in_chans == 1 and ds.image_size == 8 and ds.num_classes == 10
    assert sum(ds.sizes().values()) == 1797
    assert ds.y_train.dtype == torch.int64
    assert abs(float(ds.x_train.mean())) < 1e-3 and abs(float(ds.x_train.std()) - 1) < 1e-2


def test_npz_and_image_folder(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x_train=rng.random((20, 6, 6, 3)), y_train=np.arange(20) % 2,
             x_test=rng.random((4, 6, 6, 3)), y_test=np.array([0, 1, 1, 0]))
    ds = load_dataset(str(tmp_path / "d.npz"), val_fraction=0.25)
    assert ds.x_train.shape == (15, 3, 6, 6) and ds.num_classes == 2
    root = tmp_path / "imgs"
    for c in ("cat", "dog"):
        (root / c).mkdir(parents=True)
        for i in range(5):
            np.save(root / c / f"{i}.npy", rng.random((5, 5)))
    ds = load_dataset(str(root), val_fraction=0.25)
    assert ds.num_classes == 2 and sum(ds.sizes().values()) == 10
    assert ds.classes == ["cat", "dog"]
    assert ds.x_train.shape[1:] == (1, 5, 5)


@pytest.mark.parametrize("spec,match", [("nosuch", "unknown dataset"),
                                        ("/nonexistent/x.npz", "not found")])
def test_bad_dataset_specs_are_one_line_errors(spec, match):
    with pytest.raises(DataError, match=match):
        load_dataset(spec)


def test_npz_missing_arrays(tmp_path):
    np.savez(tmp_path / "bad.npz", x_train=np.zeros((3, 4, 4)))
    with pytest.raises(DataError, match="y_train"):
        load_dataset(str(tmp_path / "bad.npz"))


def test_resize_is_identity_at_stored_size():
    x = torch.randn(2, 1, 8, 8)
    assert resize(x, 8) is x
    assert resize(x, 6).shape == (2, 1, 6, 6)


# ---------------------------------------------------------------------------- weights
def test_half_state_loads_back_as_float32(tmp_path):
    state = {"w": torch.randn(3, 3), "n": torch.tensor(4)}
    save_state(tmp_path / "s.pt", state, half=True)
    back = load_state(tmp_path / "s.pt")
    assert back["w"].dtype == torch.float32 and back["n"].dtype == torch.int64
    torch.testing.assert_close(back["w"], state["w"], rtol=1e-3, atol=1e-3)


def test_recalibrate_bn_estimates_the_data_statistics():
    model = torch.nn.Sequential(torch.nn.BatchNorm2d(2))
    x = torch.randn(64, 2, 4, 4) * 3 + 5
    recalibrate_bn(model, x, 4, batch_size=16, n_batches=4)
    assert not model.training
    torch.testing.assert_close(model[0].running_mean, x.mean((0, 2, 3)), rtol=0, atol=1e-4)


# ---------------------------------------------------------------------------- predictor
@pytest.mark.parametrize("kind", ["gp", "ridge"])
@pytest.mark.long
def test_accuracy_predictor_ranks_and_round_trips(tmp_path, kind):
    space = get_space("ofa-mbv3", resolutions=[16, 20, 24, 28], in_chans=1, num_classes=10)
    rng = np.random.default_rng(0)
    g = space.canonical_genomes(space.sample_genomes(rng, 160))
    truth = 0.7 + 0.02 * np.log(space.flops_genomes(g)) + 0.01 * g[:, -1]
    acc = truth + rng.normal(0, 0.002, len(truth))
    pred = fit_accuracy_predictor(space, g[:120], acc[:120], kind=kind)
    assert kendall_tau(pred.predict_genomes(g[120:]), truth[120:]) > 0.7
    pred.save(tmp_path / "p.json")
    assert json.loads((tmp_path / "p.json").read_text())["kind"] == kind
    back = AccuracyPredictor.load(tmp_path / "p.json")
    assert type(back) is type(pred)
    big = space.sample_genomes(rng, 10_000)
    np.testing.assert_allclose(back.predict_genomes(big), pred.predict_genomes(big), rtol=1e-5)
    assert back.predict([space.largest()]).shape == (1,)


@pytest.mark.long
def test_gp_predictor_learns_an_interaction_that_ridge_cannot():
    """Top-1 that depends on resolution × first-stage depth: additive ridge misses it."""
    space = get_space("ofa-mbv3", resolutions=[16, 20, 24, 28], in_chans=1, num_classes=10)
    rng = np.random.default_rng(1)
    g = space.canonical_genomes(space.sample_genomes(rng, 200))
    r, d0 = g[:, -1].astype(float), g[:, 40].astype(float)     # resolution, stage-1 depth
    truth = 0.8 + 0.01 * r * d0 - 0.01 * (r - 1.5) ** 2
    acc = truth + rng.normal(0, 0.001, len(truth))
    gp = fit_accuracy_predictor(space, g[:150], acc[:150], kind="gp")
    ridge = fit_accuracy_predictor(space, g[:150], acc[:150], kind="ridge")
    tau_gp = kendall_tau(gp.predict_genomes(g[150:]), truth[150:])
    assert tau_gp > 0.8
    assert tau_gp > kendall_tau(ridge.predict_genomes(g[150:]), truth[150:])


@pytest.mark.long
def test_gp_hyperparameters_from_a_prefix_are_reused_on_top_up():
    """Past ``max_opt`` samples the kernel is optimised on the prefix and the GP conditioned on
    all; a refit handed those hyperparameters skips the optimisation and gives the same GP."""
    from hwnas.predict.accuracy_gp import fit_gp

    space = get_space("ofa-mbv3", resolutions=[16, 20, 24, 28], in_chans=1, num_classes=10)
    rng = np.random.default_rng(0)
    g = space.canonical_genomes(space.sample_genomes(rng, 160))
    truth = 0.7 + 0.02 * np.log(space.flops_genomes(g)) + 0.01 * g[:, -1]
    acc = truth + rng.normal(0, 0.002, len(truth))
    prefix = fit_gp(space, g[:80], acc[:80])
    full = fit_gp(space, g[:120], acc[:120], max_opt=80)
    assert full.stats["hyper"]["n_opt"] == 80 and len(full.dual) == 120
    np.testing.assert_allclose(full.stats["hyper"]["length"], prefix.stats["hyper"]["length"],
                               rtol=1e-6)
    again = fit_gp(space, g[:120], acc[:120], hyper=prefix.stats["hyper"], max_opt=80)
    np.testing.assert_allclose(again.predict_genomes(g[120:]), full.predict_genomes(g[120:]),
                               rtol=1e-6)
    assert kendall_tau(full.predict_genomes(g[120:]), truth[120:]) > 0.7
    # hyperparameters from another prefix length are not reused: they are optimised again
    other = fit_gp(space, g[:120], acc[:120], hyper=prefix.stats["hyper"], max_opt=90)
    assert other.stats["hyper"]["n_opt"] == 90


def test_unknown_accuracy_predictor_kind_is_named(tmp_path):
    space = get_space("ofa-mbv3", resolutions=[16, 20], in_chans=1, num_classes=10)
    g = space.sample_genomes(np.random.default_rng(0), 10)
    with pytest.raises(RegistryError, match="unknown accuracy predictor kind 'mlp'"):
        fit_accuracy_predictor(space, g, np.linspace(0.5, 0.6, 10), kind="mlp")
    (tmp_path / "p.json").write_text(json.dumps({"kind": "mlp", "space": space.config()}))
    with pytest.raises(RegistryError, match="'mlp'"):
        AccuracyPredictor.load(tmp_path / "p.json")


def test_accuracy_predictor_rejects_corrupt_json(tmp_path):
    (tmp_path / "p.json").write_text('{"kind": "ridge"}')
    with pytest.raises(DataError, match="malformed"):
        AccuracyPredictor.load(tmp_path / "p.json")


# ---------------------------------------------------------------------------- CLI, resume
def _cli(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "hwnas", "train-supernet", "--data", "digits", "--out", str(out),
            "--width-mult", "0.25", "--resolutions", "8", "--batch-size", "32", "--epochs", "0.25",
            "--ckpt-every", "2", "--acc-samples", "12", "--val-limit", "60", "--threads", "1",
            *extra]


def _step(out: Path) -> int:
    try:
        return json.loads((out / "meta.json").read_text())["train"]["step"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return 0


@pytest.mark.long
def test_killed_training_resumes_from_its_last_checkpoint(tmp_path):
    out = tmp_path / "ckpt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(_cli(out), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while _step(out) < 2 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = _step(out)
    assert 2 <= killed_at < 11, "the run should be killed mid-training"
    assert (out / "optimizer.pt").exists()
    res = subprocess.run(_cli(out), env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert f"resuming {out} at step {killed_at}/" in res.stderr
    meta = json.loads((out / "meta.json").read_text())
    assert meta["train"]["step"] == meta["train"]["total_steps"] == 11
    assert meta["train"]["finished"] and not (out / "optimizer.pt").exists()
    assert 0 <= meta["accuracy"]["acc_largest"] <= 1
    assert (out / "accuracy_predictor.json").exists()
    space, net, _ = load_supernet(out)
    assert space.resolutions == (8,) and not net.training
    again = subprocess.run(_cli(out), env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "resuming" in again.stderr   # nothing left to train
    assert json.loads(again.stdout)["acc_largest"] == meta["accuracy"]["acc_largest"]
    first = json.loads((out / "accuracy_samples.json").read_text())["samples"]
    more = subprocess.run(_cli(out, "--acc-samples", "16"), env=env, capture_output=True,
                          text=True, timeout=300)
    assert more.returncode == 0, more.stderr
    grown = json.loads((out / "accuracy_samples.json").read_text())["samples"]
    assert len(grown) == 16 and grown[:12] == first      # only the 4 new subnets measured
    refit = json.loads((out / "meta.json").read_text())["accuracy_predictor"]
    assert refit["n_samples"] == 16 and refit["n_fit"] == 16
    # the held-out subnets are also measured on the validation split, and the refit rescored
    held = json.loads((out / "accuracy_heldout.json").read_text())["samples"]
    held_val = json.loads((out / "accuracy_heldout_val.json").read_text())
    assert held_val["split"] == "val"
    assert [s["arch"] for s in held_val["samples"]] == [s["arch"] for s in held]
    assert "kendall_tau_val" in refit and refit["rmse_val"] >= 0   # tau: nan on tied toys


def test_a_new_epoch_count_replans_the_schedule_on_resume(tmp_path):
    from hwnas.train.trainer import TrainConfig, train_supernet

    data = load_dataset("digits")
    space = get_space("ofa-mbv3", width_mult=0.25, resolutions=[8], in_chans=1, num_classes=10)
    dmeta = {"spec": "digits"}
    _, meta = train_supernet(space, data, tmp_path, TrainConfig(epochs=0.05, batch_size=32,
                                                                ckpt_every=1), dmeta)
    first = meta["train"]["total_steps"]
    _, meta = train_supernet(space, data, tmp_path, TrainConfig(epochs=0.1, batch_size=32,
                                                                ckpt_every=1), dmeta)
    assert meta["train"]["step"] == meta["train"]["total_steps"] > first
    assert meta["train"]["replanned"] == [{"step": first, "from_epochs": 0.05}]
    _, meta = train_supernet(space, data, tmp_path, TrainConfig(epochs=0.05, batch_size=16,
                                                                ckpt_every=1), dmeta)
    assert "replanned" not in meta["train"]               # another batch size starts afresh
