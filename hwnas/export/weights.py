"""The model an export ships: supernet weights (BN recalibrated) and their measured accuracy."""
from __future__ import annotations

import numpy as np

__all__ = ["subnet_with_weights", "sample_input", "FASHION_MNIST_CLASSES"]

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot")


def subnet_with_weights(space, arch, checkpoint=None):
    """``(model, weights_info)``; without a checkpoint the weights are random and say so.

    With a checkpoint (a folder or ``load_supernet``'s result) the subnet inherits the
    supernet's weights, BN statistics are recalibrated on training images, and the accuracy of
    exactly this module is measured on the held-out test split. A checkpoint without a dataset
    (Once-for-All's published file) gives its weights and BN statistics as they are, and no
    accuracy.
    """
    if checkpoint is None:
        return space.build(arch).eval(), {"source": "random weights (untrained)", "trained": False,
                                          "accuracy": None}
    from hwnas.train.checkpoint import as_loaded, checkpoint_dataset, extract_subnet
    from hwnas.train.evaluate import accuracy

    loaded = as_loaded(checkpoint)
    if loaded.meta.get("dataset") is None:
        model = loaded.supernet.get_active_subnet(arch).eval()
        return model, {"source": loaded.meta.get("weights", str(loaded.meta.get("path"))),
                       "trained": True, "format": loaded.meta.get("format"), "accuracy": None,
                       "bn": "as in the checkpoint (no training images here to recalibrate on)"}
    data = checkpoint_dataset(loaded.meta)
    model = extract_subnet(loaded, arch, dataset=data)
    acc = accuracy(model, data.x_test, data.y_test, arch.r)
    src = loaded.meta.get("path", checkpoint)
    return model.eval(), {"source": str(src), "trained": True, "dataset": data.name,
                          "split": "test", "n_eval": int(len(data.y_test)), "accuracy": acc}


def sample_input(checkpoint, shape) -> tuple[np.ndarray, int, list[str] | None]:
    """The first held-out test image at the bundle's input shape, its label and class names."""
    from hwnas.train.checkpoint import as_loaded, checkpoint_dataset
    from hwnas.train.data import resize

    loaded = as_loaded(checkpoint)
    data = checkpoint_dataset(loaded.meta)
    x = resize(data.x_test[:1], int(shape[-1])).numpy().astype(np.float32).reshape(shape)
    classes = getattr(data, "classes", None) or (
        list(FASHION_MNIST_CLASSES) if data.name == "fashion-mnist" else None)
    return x, int(data.y_test[0]), classes
