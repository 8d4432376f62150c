import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
EXTERNAL = SHARED / "data" / "external"

os.environ.setdefault("OMP_NUM_THREADS", "2")


#: the variables that name a user data folder (``hwnas._data``)
USER_DATA_VARS = ("HWNAS_DATA", "HWNAS_TARGETS", "HWNAS_TABLES", "HWNAS_CHECKPOINTS",
                  "HWNAS_ACCURACY")


def _hide_user_data(monkeypatch, tmp_path_factory) -> None:
    for var in USER_DATA_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HWNAS_DATA", str(tmp_path_factory.mktemp("user-data")))


@pytest.fixture(autouse=True)
def _no_user_data(tmp_path_factory, monkeypatch):
    """What a developer imported or measured stays out of the tests: hwnas writes it to the
    user data folder (``$HWNAS_DATA``, else ``~/.local/share/hwnas``), and each test sees an
    empty one instead, besides the shipped data, unless it sets its own."""
    _hide_user_data(monkeypatch, tmp_path_factory)


@pytest.fixture(scope="session", autouse=True)
def _no_user_data_in_wider_fixtures(tmp_path_factory):
    """The same for module- and session-scoped fixtures, set up before any test's own."""
    monkeypatch = pytest.MonkeyPatch()
    _hide_user_data(monkeypatch, tmp_path_factory)
    yield
    monkeypatch.undo()


@pytest.fixture(scope="session")
def external_dir() -> Path:
    if not EXTERNAL.is_dir():
        pytest.skip(f"external data not found at {EXTERNAL}")
    return EXTERNAL


DEBUG_TARGET = """description = "debug device: latencies from costs, no compiler"
runtime = "debug"
threads = 1
[tvm]
kind = "llvm"
[debug]
noise = 0.005
"""


@pytest.fixture()
def debug_device(tmp_path, monkeypatch):
    """A ``debugdev`` target (the compiler-free debug runtime) and an empty tables folder."""
    targets = tmp_path / "targets"
    targets.mkdir()
    (targets / "debugdev.toml").write_text(DEBUG_TARGET)
    monkeypatch.setenv("HWNAS_TARGETS", str(targets))
    (tmp_path / "tables").mkdir()
    monkeypatch.setenv("HWNAS_TABLES", str(tmp_path / "tables"))
    from hwnas.targets import load_target

    return load_target("debugdev")
