"""Supernet training, evaluation, checkpoints and the accuracy predictor (PyTorch on the CPU)."""
from hwnas.train.checkpoint import evaluate_subnet, extract_subnet, load_supernet
from hwnas.train.data import Dataset, load_dataset

__all__ = ["Dataset", "load_dataset", "load_supernet", "extract_subnet", "evaluate_subnet"]
