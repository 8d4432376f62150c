"""Every benchmark script parses, and says how it is run: a benchmark is run rarely (hours of
measuring), so a slip that breaks one shows here first, not after the tuning it waited for."""
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = sorted(p for p in (Path(__file__).resolve().parents[1] / "benchmarks").glob("*.py")
                    if not p.name.startswith("_"))


def test_there_are_benchmarks():
    assert len(BENCHMARKS) >= 5


@pytest.mark.parametrize("script", BENCHMARKS, ids=lambda p: p.name)
def test_a_benchmark_parses_and_prints_its_usage(script):
    r = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True,
                       timeout=120, cwd=script.parent)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "usage" in r.stdout.lower() and "--json" in r.stdout


def test_no_code_looks_a_table_up_by_a_configured_spaces_bare_name():
    """``table_path(target, space.name)`` asks for the shipped checkpoint's configuration,
    whatever configuration ``space`` is: on a CPU whose folder holds the ImageNet table, an
    ImageNet benchmark then read the small configuration's table. Pass the space itself."""
    import re

    root = Path(__file__).resolve().parents[1]
    call = re.compile(r"table_path\([^()]*\bspace\.name\b")
    found = [f"{p.relative_to(root)}:{i}"
             for p in [*BENCHMARKS, *sorted((root / "benchmarks").glob("_*.py")),
                       *sorted((root / "hwnas").rglob("*.py"))]
             for i, line in enumerate(p.read_text().splitlines(), 1)
             if call.search(line) and "for_writing" not in line]
    assert not found, found
