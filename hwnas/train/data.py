"""Image datasets as in-memory tensors; nothing is downloaded.

``load_dataset(spec)`` understands:

* ``"fashion-mnist"`` (default): the idx ``.gz`` files of the Debian package
  ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist/``; ``HWNAS_FASHION_MNIST``
  overrides the folder). 60k training / 10k test images, 28×28 grey, 10 classes.
* ``"digits"``: scikit-learn's bundled 8×8 digits (1,797 images); for quick tests only, since
  every subnet reaches about 99% on it.
* a ``.npz`` file with ``x_train, y_train, x_test, y_test`` (images N×H×W, N×H×W×C or N×C×H×W;
  integer labels).
* a folder in ImageFolder layout (``root/<class>/<image>``, or ``root/train/<class>/...`` and
  ``root/test/<class>/...``). ``.npy`` and ``.png`` images are read (PNG through matplotlib);
  JPEG needs Pillow and is refused with a message when Pillow is missing.

Images become float32 N×C×H×W normalised by the training split's mean and std. ``pad_to``
zero-pads (in pixel space, before normalising) small images to a square size: 28→32 lets a
stride-2 stem and four stride-2 stages divide evenly. A subnet at resolution ``r`` sees the
images through ``resize(x, r)``.
"""
from __future__ import annotations

import gzip
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hwnas._checks import check_int, check_number, check_seed
from hwnas.errors import DataError

__all__ = ["Dataset", "load_dataset", "check_dataset_options", "resize", "FASHION_MNIST_DIR", "FASHION_MNIST_CLASSES"]

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot"]
_IMAGE_EXTS = (".png", ".npy", ".jpg", ".jpeg", ".bmp")


@dataclass
class Dataset:
    """Tensors of one dataset, already split; ``val`` is held out from the training images."""

    name: str
    description: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    mean: list[float] = field(default_factory=list)
    std: list[float] = field(default_factory=list)
    classes: list[str] | None = None

    @property
    def in_chans(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.x_train.shape[-1])

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.y_train), "val": len(self.y_val), "test": len(self.y_test)}

    def summary(self) -> dict:
        return {"name": self.name, "description": self.description, **self.sizes(),
                "num_classes": self.num_classes, "in_chans": self.in_chans,
                "image_size": self.image_size, "mean": self.mean, "std": self.std}


def resize(x: torch.Tensor, r: int) -> torch.Tensor:
    """Images at resolution ``r`` (bilinear, antialiased when shrinking); no-op at the stored size."""
    if x.shape[-1] == r and x.shape[-2] == r:
        return x
    return F.interpolate(x, size=(r, r), mode="bilinear", align_corners=False,
                         antialias=r < x.shape[-1])


# ---------------------------------------------------------------------------- readers
def _read_idx(path: Path) -> np.ndarray:
    """An idx file (optionally gzipped): the format of MNIST and Fashion-MNIST."""
    try:
        raw = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"dataset file not found: {path} "
                        "(install it with: apt-get install -y dataset-fashion-mnist)") from None
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read idx file {path}: {exc}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path} is not an idx file of unsigned bytes")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise DataError(f"{path}: idx header says {dims} but holds {data.size} bytes")
    return data.reshape(dims)


def _fashion_mnist() -> tuple[np.ndarray, ...]:
    root = Path(os.environ.get("HWNAS_FASHION_MNIST", FASHION_MNIST_DIR))
    parts = [_read_idx(root / f"{stem}-ubyte.gz") for stem in
             ("train-images-idx3", "train-labels-idx1", "t10k-images-idx3", "t10k-labels-idx1")]
    return parts[0], parts[1], parts[2], parts[3]


def _digits() -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_digits

    d = load_digits()
    x, y = (d.images * (255.0 / 16.0)).astype(np.uint8), d.target
    order = np.random.default_rng(0).permutation(len(y))
    cut = len(y) * 4 // 5
    return x[order[:cut]], y[order[:cut]], x[order[cut:]], y[order[cut:]]


def _npz(path: Path) -> tuple[np.ndarray, ...]:
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in z.files]
            if missing:
                raise DataError(f"{path} lacks array(s) {', '.join(missing)}; it needs "
                                "x_train, y_train, x_test, y_test")
            return tuple(z[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"cannot read {path} as .npz: {(str(exc).splitlines() or [''])[0]}") \
            from None


def _read_image(path: Path) -> np.ndarray:
    try:
        return _decode_image(path)
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001  (numpy, matplotlib and Pillow raise many types)
        raise DataError(f"cannot read image {path}: {type(exc).__name__}: "
                        f"{(str(exc).splitlines() or [''])[0][:120]}") from None


def _decode_image(path: Path) -> np.ndarray:
    ext = path.suffix.lower()
    if ext == ".npy":
        return np.load(path, allow_pickle=False)
    if ext == ".png":
        import matplotlib.image as mpimg

        return mpimg.imread(str(path)) * 255.0            # PNG reads as float in [0, 1]
    try:
        from PIL import Image
    except ImportError:
        raise DataError(f"{path}: reading {ext} images needs Pillow, which is not installed; "
                        "convert to .png or .npy") from None
    return np.asarray(Image.open(path))


def _image_folder(root: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not classes:
        raise DataError(f"{root} has no class sub-folders (expected ImageFolder layout "
                        "root/<class>/<image>)")
    xs, ys = [], []
    for label, name in enumerate(classes):
        for f in sorted((root / name).iterdir()):
            if f.suffix.lower() in _IMAGE_EXTS:
                xs.append(_read_image(f))
                ys.append(label)
    if not xs:
        raise DataError(f"{root} holds no images ({', '.join(_IMAGE_EXTS)})")
    shapes = {x.shape for x in xs}
    if len(shapes) > 1:
        raise DataError(f"images under {root} differ in shape: {sorted(shapes)[:3]}")
    return np.stack(xs), np.asarray(ys), classes


def _folder(root: Path) -> tuple[np.ndarray, ...]:
    if (root / "train").is_dir() and (root / "test").is_dir():
        xtr, ytr, ctr = _image_folder(root / "train")
        xte, yte, cte = _image_folder(root / "test")
        if ctr != cte:
            raise DataError(f"{root}: train and test class folders differ")
        return xtr, ytr, xte, yte, ctr
    x, y, classes = _image_folder(root)
    order = np.random.default_rng(0).permutation(len(y))
    cut = max(1, len(y) * 4 // 5)
    return x[order[:cut]], y[order[:cut]], x[order[cut:]], y[order[cut:]], classes


# ---------------------------------------------------------------------------- tensors
def _to_nchw(x: np.ndarray, what: str) -> np.ndarray:
    try:
        x = np.asarray(x, np.float32)
    except (TypeError, ValueError):
        raise DataError(f"{what} images must be numbers, got {np.asarray(x).dtype}") from None
    if not np.all(np.isfinite(x)):
        raise DataError(f"{what} images hold NaN or infinite values")
    if x.ndim == 3:
        return x[:, None]
    if x.ndim == 4:
        # channels last when the last axis is small and the second is not
        return x.transpose(0, 3, 1, 2) if x.shape[-1] <= 4 < x.shape[1] else x
    raise DataError(f"{what} images must be N×H×W or N×H×W×C, got shape {x.shape}")


def _pad(x: np.ndarray, size: int | None) -> np.ndarray:
    if not size or x.shape[-1] >= size:
        return x
    lo = (size - x.shape[-1]) // 2
    hi = size - x.shape[-1] - lo
    lo_h = (size - x.shape[-2]) // 2
    return np.pad(x, ((0, 0), (0, 0), (lo_h, size - x.shape[-2] - lo_h), (lo, hi)))


def check_dataset_options(val_fraction: float = 1 / 12, pad_to: int | None = None,
                          seed: int = 0) -> None:
    """The loading options in range, before any file is read."""
    check_number(val_fraction, "dataset val_fraction", 0, 1, above=True, error=DataError)
    if val_fraction >= 1:
        raise DataError(f"dataset val_fraction must be below 1, got {val_fraction!r}")
    if pad_to is not None:
        check_int(pad_to, "dataset pad_to (image size)", 1, 4096, DataError)
    check_seed(seed, DataError)


def load_dataset(spec: str = "fashion-mnist", val_fraction: float = 1 / 12,
                 pad_to: int | None = None, seed: int = 0) -> Dataset:
    """Load ``spec`` (see module doc) into normalised tensors with a held-out ``val`` split."""
    check_dataset_options(val_fraction, pad_to, seed)
    if not isinstance(spec, (str, os.PathLike)):
        raise DataError(f"a dataset is a name, a .npz file or a folder, got {spec!r}")
    spec = os.fspath(spec)
    path = Path(spec)
    if spec in ("fashion-mnist", "fmnist"):
        name, desc = "fashion-mnist", "Fashion-MNIST (Zalando, MIT), 28x28 grey, 10 classes"
        parts = (*_fashion_mnist(), FASHION_MNIST_CLASSES)
    elif spec == "digits":
        name, desc = "digits", "scikit-learn digits, 8x8 grey, 10 classes"
        parts = (*_digits(), [str(d) for d in range(10)])
    elif path.suffix == ".npz":
        if not path.is_file():
            raise DataError(f"dataset file not found: {path}")
        name, desc = path.stem, f"{path} (.npz)"
        parts = _npz(path)
    elif path.is_dir():
        name, desc = path.name, f"{path} (image folder)"
        parts = _folder(path)
    else:
        raise DataError(f"unknown dataset '{spec}': give fashion-mnist, digits, a .npz file "
                        "or an ImageFolder directory")
    return _assemble(name, desc, parts, val_fraction, pad_to, seed)


def _labels(y, name: str) -> np.ndarray:
    y = np.asarray(y)
    if y.dtype.kind not in "iub" and not (y.dtype.kind == "f" and np.all(np.isfinite(y))
                                          and np.all(y == np.round(y))):
        raise DataError(f"{name}: labels must be integers, got {y.dtype} values")
    return y.astype(np.int64).ravel()


def _assemble(name: str, desc: str, parts, val_fraction: float, pad_to: int | None,
              seed: int) -> Dataset:
    xtr, ytr, xte, yte = parts[:4]
    classes = list(parts[4]) if len(parts) > 4 else None
    xtr, xte = _to_nchw(xtr, "training"), _to_nchw(xte, "test")
    if pad_to and pad_to < max(xtr.shape[-2:]):
        raise DataError(f"{name}: pad_to {pad_to} is smaller than the {xtr.shape[-2]}×"
                        f"{xtr.shape[-1]} images; padding only enlarges them")
    xtr, xte = _pad(xtr, pad_to), _pad(xte, pad_to)
    if xtr.shape[1:] != xte.shape[1:]:
        raise DataError(f"{name}: training images {xtr.shape[1:]} and test images "
                        f"{xte.shape[1:]} differ in shape")
    ytr, yte = _labels(ytr, name), _labels(yte, name)
    if len(ytr) != len(xtr) or len(yte) != len(xte):
        raise DataError(f"{name}: image and label counts differ")
    if min(ytr.min(initial=0), yte.min(initial=0)) < 0:
        raise DataError(f"{name}: labels must be non-negative integers")
    num_classes = int(max(ytr.max(initial=0), yte.max(initial=0))) + 1
    order = np.random.default_rng(seed).permutation(len(ytr))
    n_val = int(round(len(ytr) * val_fraction))
    if n_val < 1 or n_val >= len(ytr):
        raise DataError(f"{name}: {len(ytr)} training images are too few to hold out a split")
    val, train = order[:n_val], order[n_val:]
    mean = xtr[train].mean((0, 2, 3))
    std = xtr[train].std((0, 2, 3)) + 1e-6

    def norm(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(((a - mean[None, :, None, None]) / std[None, :, None, None])
                                .astype(np.float32))

    return Dataset(name, desc, norm(xtr[train]), torch.from_numpy(ytr[train]), norm(xtr[val]),
                   torch.from_numpy(ytr[val]), norm(xte), torch.from_numpy(yte), num_classes,
                   mean.tolist(), std.tolist(), classes)
