"""``import hwnas`` (and the CLI's parser) load no heavy library."""
import json
import subprocess
import sys

HEAVY = ("torch", "tvm", "onnxruntime", "onnx", "sklearn", "scipy", "matplotlib")


def _loaded(code: str) -> dict:
    probe = (f"import sys, json\n{code}\n"
             f"print(json.dumps({{'heavy': [m for m in {HEAVY!r} if m in sys.modules]}}))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_hwnas_is_light():
    assert _loaded("import hwnas")["heavy"] == []


def test_front_door_catalogues_are_light():
    res = _loaded("import hwnas\nhwnas.list_targets(); hwnas.list_spaces()")
    assert res["heavy"] == []


def test_cli_parser_is_light():
    res = _loaded("from hwnas.cli import build_parser\nbuild_parser()")
    assert res["heavy"] == []
