"""Packages and data: the top-level ``targets/``, ``latency_tables/`` and ``checkpoints/`` ship
inside the wheel as ``hwnas/data/<kind>/`` (found by ``hwnas._data``)."""
from setuptools import find_packages, setup

DATA = ("targets", "latency_tables", "checkpoints")

setup(
    packages=find_packages(include=["hwnas", "hwnas.*"]) + [f"hwnas.data.{d}" for d in DATA],
    package_dir={f"hwnas.data.{d}": d for d in DATA},
    package_data={f"hwnas.data.{d}": ["**/*"] for d in DATA},
    exclude_package_data={f"hwnas.data.{d}": ["**/*.stale", "**/.*"] for d in DATA},
)
