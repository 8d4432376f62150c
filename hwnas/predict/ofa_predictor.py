"""Once-for-All's published ImageNet accuracy predictor, as the ``ofa-predictor`` source.

OFA's tutorial predicts the top-1 of its w1.2 MobileNetV3 subnets with a small MLP
(128 → 400 → 400 → 400 → 1, ReLU between), shipped as a torch ``state_dict`` with keys
``0/2/4/6.{weight,bias}``. Its input, per subnet (OFA's ``spec2feats``):

    60 kernel one-hots   (20 block slots × {3, 5, 7})
    60 expand one-hots   (20 block slots × {3, 4, 6}); slots past a stage's depth all zero
     8 resolution one-hots at (r - 112) // 16

Its output is top-1 as a fraction on OFA's 10k-image holdout split of ImageNet train.

``read_ofa_pth`` reads the ``.pth`` once (``torch.load(..., weights_only=True)``) and checks
its layout; ``save``/``load`` keep the weights in the project's own ``.npz`` (no pickle) with a
JSON header, and prediction is numpy: 10,000 subnets in a few milliseconds.
"""
from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hwnas._io import atomic_write_bytes
from hwnas.errors import DataError
from hwnas.predict._accuracy_source import (ACCURACY_FORMAT, PREDICTED, AccuracySource,
                                            SourceSpec, imported_locator, register_source)
from hwnas.spaces.ofa_mbv3 import PLUGIN as OFA

__all__ = ["OFAPredictor", "OFAPredictorSource", "read_ofa_pth", "ofa_features", "SOURCE",
           "SUFFIX", "ORIGIN"]

SOURCE, SUFFIX = "ofa-predictor", ".npz"
ORIGIN = "han-cai/files @ ofa/acc_predictor.pth (Once-for-All's tutorial AccuracyPredictor)"
_N_IN, _N_LAYERS = 128, 4
_R_BASE, _R_STEP, _R_STEPS = 112, 16, 8


def ofa_features(space, genomes: np.ndarray) -> np.ndarray:
    """(N, 128) OFA's predictor input for genome rows of any configuration of OFA's space;
    a resolution outside OFA's steps takes the nearest one (the source labels it)."""
    g = np.asarray(genomes)
    n = len(g)
    mask = space.active_mask(g).reshape(n, -1, 1)             # (N, 20 slots, 1)
    slots = mask.shape[1]
    nk, ne = len(space.kernels), len(space.expands)
    k1 = np.eye(nk, dtype=np.float32)[g[:, :slots]] * mask
    e1 = np.eye(ne, dtype=np.float32)[g[:, slots:2 * slots]] * mask
    res = np.asarray(space.resolutions)[g[:, -1]]
    step = np.clip((res - _R_BASE) // _R_STEP, 0, _R_STEPS - 1)
    r1 = np.eye(_R_STEPS, dtype=np.float32)[step]
    return np.concatenate([k1.reshape(n, -1), e1.reshape(n, -1), r1], 1)


@dataclass
class OFAPredictor:
    """The MLP's weights (``weights[i]`` is (out, in), as torch stores them) and where they
    came from."""

    weights: list[np.ndarray]
    biases: list[np.ndarray]
    meta: dict = field(default_factory=dict)

    def predict_features(self, x: np.ndarray) -> np.ndarray:
        h = np.asarray(x, np.float32)
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = h @ w.T + b
            if i < len(self.weights) - 1:
                h = np.maximum(h, 0.0)
        return h[:, 0].astype(np.float64)

    def save(self, path: str | Path) -> Path:
        arrays = {f"w{i}": w for i, w in enumerate(self.weights)}
        arrays.update({f"b{i}": b for i, b in enumerate(self.biases)})
        buf = io.BytesIO()
        np.savez(buf, header=np.array(json.dumps(self.meta)), **arrays)
        return atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> "OFAPredictor":
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["header"]))
                ws = [np.asarray(z[f"w{i}"], np.float32) for i in range(_N_LAYERS)]
                bs = [np.asarray(z[f"b{i}"], np.float32) for i in range(_N_LAYERS)]
        except FileNotFoundError:
            raise DataError(f"imported OFA accuracy predictor not found: {path}") from None
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            raise DataError(f"corrupt imported OFA accuracy predictor {path}: "
                            f"{type(exc).__name__}") from None
        if not isinstance(meta, dict) or meta.get("format") != ACCURACY_FORMAT \
                or meta.get("source") != SOURCE:
            raise DataError(f"{path} is not an imported OFA accuracy predictor "
                            f"(format '{ACCURACY_FORMAT}', source '{SOURCE}')")
        _check_layout([(w.shape, b.shape) for w, b in zip(ws, bs)], path)
        return cls(ws, bs, meta)


def _check_layout(shapes: list[tuple[tuple, tuple]], path) -> None:
    """A chain of linear layers from 128 inputs to 1 output."""
    n_in = _N_IN
    for i, (w, b) in enumerate(shapes):
        last = i == len(shapes) - 1
        if len(w) != 2 or w[1] != n_in or (last and w[0] != 1) or b != (w[0],):
            want = f"({'1' if last else 'H'}, {n_in})"
            raise DataError(f"{path} is not OFA's accuracy predictor layout: key "
                            f"'{2 * i}.weight' has shape {tuple(w)}, bias {tuple(b)}; expected "
                            f"{want} and a bias of its first size")
        n_in = w[0]


def read_ofa_pth(path: str | Path, space_config: dict) -> OFAPredictor:
    """OFA's published ``.pth`` (a ``state_dict``, ``0/2/4/6.{weight,bias}``), read with
    ``weights_only=True``; anything else is one ``DataError`` line."""
    import torch

    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}") from None
    try:
        sd = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001  (torch raises many kinds on a bad file)
        first = (str(exc).strip().splitlines() or [""])[0][:120]
        raise DataError(f"{path} is not a readable torch file (truncated or another format): "
                        f"{type(exc).__name__}: {first}") from None
    if isinstance(sd, dict) and set(sd) == {"state_dict"}:
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise DataError(f"{path} is not OFA's accuracy predictor layout: it holds a "
                        f"{type(sd).__name__}, not a state_dict")
    want = [f"{2 * i}.{p}" for i in range(_N_LAYERS) for p in ("weight", "bias")]
    extra = sorted(set(sd) - set(want), key=str)
    missing = [k for k in want if k not in sd]
    if missing or extra:
        which = f"missing key '{missing[0]}'" if missing else f"unexpected key '{extra[0]}'"
        raise DataError(f"{path} is not OFA's accuracy predictor layout: {which} (expected "
                        f"{', '.join(want)})")
    if not all(isinstance(sd[k], torch.Tensor) for k in want):
        bad = next(k for k in want if not isinstance(sd[k], torch.Tensor))
        raise DataError(f"{path} is not OFA's accuracy predictor layout: '{bad}' is not a tensor")
    arrays = {k: sd[k].detach().to(torch.float32).numpy() for k in want}
    ws = [arrays[f"{2 * i}.weight"] for i in range(_N_LAYERS)]
    bs = [arrays[f"{2 * i}.bias"] for i in range(_N_LAYERS)]
    _check_layout([(w.shape, b.shape) for w, b in zip(ws, bs)], path)
    if not all(np.all(np.isfinite(a)) for a in ws + bs):
        raise DataError(f"{path}: OFA's accuracy predictor holds non-finite weights")
    meta = {"format": ACCURACY_FORMAT, "source": SOURCE, "kind": PREDICTED,
            "space": space_config, "origin": ORIGIN,
            "domain": {**{k: space_config[k] for k in ("width_mult", "num_classes", "in_chans")},
                       "resolution_range": [_R_BASE, _R_BASE + _R_STEP * _R_STEPS - 1]},
            "output": "top-1 as a fraction on OFA's 10k-image holdout split of ImageNet train",
            "imported": {"file": str(path.resolve()), "sha256": hashlib.sha256(raw).hexdigest(),
                         "bytes": len(raw)}}
    return OFAPredictor(ws, bs, meta)


class OFAPredictorSource(AccuracySource):
    """OFA's predictor scoring genome rows of a configuration of its space."""

    name, kind = SOURCE, PREDICTED

    def __init__(self, space, model: OFAPredictor, origin: str) -> None:
        from hwnas.spaces import space_plugin

        if space_plugin(space) is not OFA:
            raise DataError(f"OFA's accuracy predictor scores only {OFA.name} "
                            f"subnets, not '{space.name}'")
        super().__init__(space, origin, model.meta["domain"],
                         "Once-for-All's published predictor (w1.2 supernet, OFA's holdout "
                         "split); resolutions are encoded in its 16 px steps")
        self.model = model

    def predict_genomes(self, genomes: np.ndarray) -> np.ndarray:
        return self.model.predict_features(ofa_features(self.space, genomes))


def _load(space, path: Path) -> OFAPredictorSource:
    return OFAPredictorSource(space, OFAPredictor.load(path), str(path))


register_source(SourceSpec(
    SOURCE, "Once-for-All's published ImageNet predictor (w1.2), imported from its .pth",
    imported_locator(SOURCE, SUFFIX), _load,
    "hwnas import-accuracy --source .../ofa_imagenet/ofa_acc_predictor.pth"))
