"""Property tests for every parser of user input: arch strings of each registered space, target
TOML, latency tables and JSON files. Whatever the input, the only exceptions are
``HwnasError`` subclasses (one-line errors), and valid inputs round-trip."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from hwnas._io import read_json
from hwnas.errors import HwnasError
from hwnas.profile.table import LatencyTable
from hwnas.spaces import SPACES, get_space
from hwnas.targets import load_target, parse_target

# HWNAS_FUZZ_EXAMPLES=2000 digs deeper than the default suite's quick pass
FAST = settings(max_examples=int(os.environ.get("HWNAS_FUZZ_EXAMPLES", "60")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SPACE_NAMES = SPACES.names()
_SPACES = {n: get_space(n) for n in SPACE_NAMES}


@pytest.fixture(scope="module")
def tmp(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")

# JSON (and TOML-like) values, nested
scalars = (st.none() | st.booleans() | st.integers(-10**6, 10**6)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


def _only_hwnas_errors(fn, *args):
    """Run ``fn``; return its result, or None when it raised an ``HwnasError`` (one line)."""
    try:
        return fn(*args)
    except HwnasError as exc:
        assert "\n" not in str(exc).strip(), str(exc)
        return None


# ---------------------------------------------------------------------------- arch strings
def _mutate(text: str, data) -> str:
    ops = data.draw(st.lists(st.tuples(st.sampled_from("drsid"), st.integers(0, 10**4),
                                       st.sampled_from(list("0123456789.-+|~rke_x ²٣\n")
                                                       + ["skip", "none~0", "k3e3"])),
                             min_size=1, max_size=4))
    for op, pos, tok in ops:
        i = pos % (len(text) + 1)
        if op == "d":
            text = text[:i] + text[i + 1:]
        elif op == "r":
            text = text[:i] + tok + text[i + 1:]
        elif op == "i":
            text = text[:i] + tok + text[i:]
        elif op == "s":
            text = text.swapcase()
        else:                                          # duplicate a span
            text = text[:i] + text[i:i + 5] + text[i:]
    return text


@pytest.mark.parametrize("name", SPACE_NAMES)
@FAST
@given(seed=st.integers(0, 2**32 - 1))
def test_valid_archs_round_trip(name, seed):
    space = _SPACES[name]
    arch = space.sample(np.random.default_rng(seed))
    text = str(arch)
    assert str(space.parse(text)) == text
    assert str(space.from_json(arch.to_json())) == text


@pytest.mark.parametrize("name", SPACE_NAMES)
@FAST
@given(text=st.text(max_size=80))
@example(text="r1²8-k33.33.33.33.33-e33.33.33.33.33")          # str.isdigit, but not int()
@example(text="r3٢-k5_e1_g2-k3_e3.k3_e1.k3_e1.k5_e6-skip.k5_e1_g2.k5_e3.k5_e1-skip.k5_e6."
         "k3_e1.k5_e6-k3_e1.k5_e3.k3_e1_g2.k5_e6-k5_e1.k3_e3.k3_e6.k3_e1-k3_e1_g2")
@example(text="|nor_conv_3x3~0\n|+|none~0|none~1|+|none~0|none~1|none~2|")
def test_arbitrary_text_is_an_arch_or_an_arch_error(name, text):
    _only_hwnas_errors(_SPACES[name].parse, text)


@pytest.mark.parametrize("name", SPACE_NAMES)
@FAST
@given(seed=st.integers(0, 2**32 - 1), data=st.data())
def test_mutated_archs_parse_or_fail_cleanly(name, seed, data):
    space = _SPACES[name]
    text = _mutate(str(space.sample(np.random.default_rng(seed))), data)
    arch = _only_hwnas_errors(space.parse, text)
    if arch is not None:                       # accepted: then it is a canonical arch
        assert str(space.parse(str(arch))) == str(arch)


@pytest.mark.parametrize("name", SPACE_NAMES)
@FAST
@given(obj=st.dictionaries(st.sampled_from(["arch", "r", "ops", "ks", "e", "d"]),
                           values | st.lists(st.integers(-1, 8) | values, min_size=5,
                                             max_size=20), max_size=5))
def test_arch_json_objects_parse_or_fail_cleanly(name, obj):
    _only_hwnas_errors(_SPACES[name].from_json, obj)


# ---------------------------------------------------------------------------- targets
TARGET_KEYS = ["description", "runtime", "device", "threads", "pipeline", "tvm", "host",
               "export", "debug"]
SUB_KEYS = ["kind", "mtriple", "mcpu", "arch", "format", "cross_compiler", "noise", "seed"]
sub_tables = st.dictionaries(st.sampled_from(SUB_KEYS), values, max_size=4)
target_dicts = st.dictionaries(st.sampled_from(TARGET_KEYS), values | sub_tables, max_size=7)


@FAST
@given(data=target_dicts)
def test_target_dicts_parse_or_fail_cleanly(tmp, data):
    target = _only_hwnas_errors(parse_target, tmp / "fuzz.toml", data)
    if target is not None:                     # what the listing and the runtimes read
        assert isinstance(target.is_cross, bool) and isinstance(target.to_json(), dict)
        f"{target.tvm_target.get('kind'):<5} {target.device:<6} {target.description}"


@FAST
@given(text=st.text(max_size=200) | st.builds(
    lambda k, v: f"{k} = {v}\n[tvm]\nkind = \"llvm\"\n",
    st.sampled_from(TARGET_KEYS), st.sampled_from(["1", "0", "-3", "\"x\"", "[1]", "true",
                                                   "nan", "inf", "{a = 1}", "\"rpc://h:1\""])))
def test_target_files_load_or_fail_cleanly(tmp, text):
    path = tmp / "fuzz.toml"
    path.write_text(text, encoding="utf-8")
    _only_hwnas_errors(load_target, path)


# ---------------------------------------------------------------------------- tables and JSON
_OFA = get_space("ofa-mbv3", resolutions=[128])
_KEYS = [op.key for op in _OFA.op_list[:6]]


def _table_doc(meta_extra: dict, entries: dict) -> dict:
    return {"format": "hwnas-latency-table/1",
            "meta": {"target": "toy", "space": "ofa-mbv3", "spaces": [_OFA.config()],
                     **meta_extra}, "entries": entries}


entry = st.fixed_dictionaries({f: st.floats(allow_nan=True, allow_infinity=True)
                               | st.integers(-5, 10**6) for f in ("median_ms", "p90_ms",
                                                                  "std_ms", "n")})
meta_fields = st.dictionaries(
    st.sampled_from(["target", "space", "spaces", "networks", "reference", "coverage",
                     "protocol", "validation", "measured_here"]),
    values | st.lists(st.fixed_dictionaries({"arch": values, "median_ms": values}), max_size=3)
    | st.fixed_dictionaries({"arch": values, "quiet_ms": values}), max_size=4)


def _load_and_read(tmp: Path, doc) -> None:
    """Load a table written as JSON and read it as the predictors do."""
    from hwnas.predict.loading import table_space
    from hwnas.profile.networks import validation

    path = tmp / "table.json"
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    table = _only_hwnas_errors(LatencyTable.load, path)
    if table is None:
        return
    assert isinstance(table.target, str)
    _only_hwnas_errors(table_space, table, None)
    _only_hwnas_errors(validation, table)


@FAST
@given(doc=values)
def test_arbitrary_json_as_a_table_fails_cleanly(tmp, doc):
    _load_and_read(tmp, doc)


@FAST
@given(extra=meta_fields, entries=st.dictionaries(st.sampled_from(_KEYS), entry | values,
                                                  max_size=4))
def test_tables_with_fuzzed_metadata_and_entries_fail_cleanly(tmp, extra, entries):
    _load_and_read(tmp, _table_doc(extra, entries))


@FAST
@given(blob=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_read_json_raises_only_its_error(tmp, blob):
    path = tmp / "blob.json"
    path.write_bytes(blob)
    _only_hwnas_errors(read_json, path)


@FAST
@given(doc=values)
def test_read_json_round_trips_valid_json(tmp, doc):
    assume(not any(isinstance(v, float) and not math.isfinite(v) for v in _leaves(doc)))
    path = tmp / "doc.json"
    path.write_text(json.dumps(doc))
    assert read_json(path) == doc


def _leaves(doc):
    if isinstance(doc, dict):
        for v in doc.values():
            yield from _leaves(v)
    elif isinstance(doc, list):
        for v in doc:
            yield from _leaves(v)
    else:
        yield doc


def test_valid_table_round_trips(tmp):
    doc = _table_doc({}, {k: {"median_ms": 0.5, "p90_ms": 0.6, "std_ms": 0.01, "n": 10}
                          for k in _KEYS})
    path = tmp / "valid.json"
    path.write_text(json.dumps(doc))
    table = LatencyTable.load(path)
    table.save(path)
    saved = json.loads(path.read_text())
    # a format-1 table is written back in the current format, everything else unchanged
    assert saved.pop("format") == "hwnas-latency-table/2"
    assert saved == {k: v for k, v in doc.items() if k != "format"}
    assert LatencyTable.load(path).entries == table.entries
