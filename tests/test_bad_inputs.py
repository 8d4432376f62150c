"""Bad numbers never cost a user their work: every numeric option of every verb, at 0, negative,
NaN, inf and not a number, gives exit 2 and one ``hwnas: error:`` line, before anything is
compiled, trained or measured, and leaves every existing file as it was.

Files, foreign tables, outputs and names are in ``test_bad_inputs_files.py``; the world the
cases run in is ``_bad_world.py``.
"""
from __future__ import annotations

import socket

import pytest

from _bad_world import Case, arch_string, check_refused, world  # noqa: F401  (fixture)

ARCH = arch_string(resolutions=[128])
SEARCH = "search --target toy --objective mflops --out {w}/s"
DEPLOY = "deploy --target debugdev --out {w}/b"
PROFILE = "profile --target debugdev --workers 0 --networks 0 --out {w}/t.json"
TRAIN = "train-supernet --data digits --out {w}/ck"
EXPORT = f"export --arch {ARCH} --target x86-host --out {{w}}/b --no-measure"


def _many(prefix: str, option: str, values: str, needle: str = "", code: int = 2) -> list:
    return [Case(f"{prefix.split()[0]}{option}={v}", f"{prefix} {option}={v}", code, needle)
            .param() for v in values.split()]


CASES = [
    # ---- search: budgets, constraints, margins, quantiles, seeds, strategy options
    *_many(SEARCH, "--latency-ms", "0 -1 nan inf -inf abc 1e400", "latency budget"),
    Case("search-latency-empty-item", f"{SEARCH} --latency-ms 'toy=3,,x=4'", 2, "empty").param(),
    Case("search-latency-zero-named", f"{SEARCH} --latency-ms toy=0", 2, "positive").param(),
    *_many(f"{SEARCH} --latency-ms 5", "--max-params", "0 -5 nan inf", "max_params"),
    *_many(f"{SEARCH} --latency-ms 5", "--max-mflops", "0 nan -inf", "max_mflops"),
    *_many(f"{SEARCH} --latency-ms 5", "--max-act-kb", "-1 inf", "max_act_kb"),
    *_many(f"{SEARCH} --latency-ms 5", "--margin", "-0.1 nan inf 10", "margin"),
    *_many(f"{SEARCH} --latency-ms 5", "--quantile", "1 0.2 nan -inf", "quantile"),
    *_many(f"{SEARCH} --latency-ms 5", "--seed", "-1", "seed"),
    *_many(f"{SEARCH} --latency-ms 5", "--max-params", "lots", "invalid float"),
    *_many(f"{SEARCH} --latency-ms 5", "--option", "generations=-3 generations=0 population=2.5 "
           "generations=inf generations=nan generations=many mutate_prob=2 mutate_prob=nan "
           "nope=3 generations", "generations"[:0]),
    # ---- deploy: budget, rounds, slack, margin, trials, seed (refused before any table)
    *_many(DEPLOY, "--latency-ms", "0 -2 nan inf", "latency budget"),
    *_many(DEPLOY, "--latency-ms", "fast", "invalid float"),
    *_many(f"{DEPLOY} --latency-ms 5", "--max-rounds", "0 -1", "max_rounds"),
    *_many(f"{DEPLOY} --latency-ms 5", "--slack", "-0.1 1 nan", "slack"),
    *_many(f"{DEPLOY} --latency-ms 5", "--margin", "-1 nan inf", "margin"),
    *_many(f"{DEPLOY} --latency-ms 5", "--contended-margin", "-0.1 1 nan", "contended_margin"),
    *_many(f"{DEPLOY} --latency-ms 5", "--tune", "-1", "trials"),
    *_many(f"{DEPLOY} --latency-ms 5", "--seed", "-1", "seed"),
    # ---- profile: operators, networks, workers, batches, rounds, sample length, seeds, space
    *_many(PROFILE, "--limit", "0 -5", "limit"),
    *_many(PROFILE, "--networks", "-1", "networks"),
    *_many(PROFILE, "--workers", "-1", "workers"),
    *_many(PROFILE, "--batch", "0 -2", "batch"),
    *_many(PROFILE, "--network-rounds", "0", "rounds"),
    *_many(PROFILE, "--min-repeat-ms", "0 -1 nan inf", "min_repeat_ms"),
    *_many(PROFILE, "--seed", "-1", "seed"),
    *_many(PROFILE, "--parallel", "-1", "parallel"),
    *_many(PROFILE, "--resolutions", "0 -32 32,x ,", "resolutions"),
    *_many(PROFILE, "--width-mult", "0 nan inf -1", "width"),
    *_many(PROFILE, "--num-classes", "0 -3", "num_classes"),
    *_many(PROFILE, "--in-chans", "0", "in_chans"),
    *_many(PROFILE, "--limit", "few", "invalid int"),
    # ---- export: the space of the arch (refused before any model is built)
    *_many(EXPORT, "--resolutions", "0 abc", "resolutions"),
    *_many(EXPORT, "--width-mult", "nan -1 inf", "width"),
    *_many(EXPORT, "--num-classes", "0", "num_classes"),
    # ---- predict
    *_many(f"predict --target toy --arch {ARCH}", "--quantile", "1 0.3 nan inf", "quantile"),
    # ---- import-table
    *_many("import-table --source {w}/lut/ofa --target t --out {w}/i.json", "--width-mult",
           "0 nan -1", "width"),
    # ---- train-supernet (refused before the dataset is read or any step is taken)
    *_many(TRAIN, "--epochs", "0 -1 nan inf", "epochs"),
    *_many(TRAIN, "--batch-size", "0 -8", "batch_size"),
    *_many(TRAIN, "--lr", "0 -0.1 nan inf", "lr"),
    *_many(TRAIN, "--ckpt-every", "0", "ckpt_every"),
    *_many(TRAIN, "--acc-samples", "-1", "acc_samples"),
    *_many(TRAIN, "--acc-heldout", "-1", "acc_heldout"),
    *_many(TRAIN, "--val-limit", "0 -1", "val_limit"),
    *_many(TRAIN, "--threads", "0 -2", "threads"),
    *_many(TRAIN, "--workers", "0 -1", "workers"),
    *_many(TRAIN, "--pad-to", "0 -4 100000", "pad_to"),
    *_many(TRAIN, "--seed", "-1", "seed"),
    *_many(TRAIN, "--width-mult", "nan 0", "width"),
    *_many(TRAIN, "--resolutions", "0 8,x", "resolutions"),
    *_many(TRAIN, "--epochs", "many", "invalid float"),
    # ---- tune (refused before any kernel is enumerated)
    *_many("tune --target x86-host", "--minutes", "0 -1 nan inf", "minutes"),
    *_many("tune --target x86-host", "--snapshots", "x -1 0,nan", "snapshots"),
    *_many("tune --target x86-host", "--seed", "-1", "seed"),
    *_many("tune --target x86-host", "--resolutions", "0", "resolutions"),
    # ---- farm
    *_many("farm up --key k", "--servers", "0 -1", "servers"),
    *_many("farm up --key k", "--port", "-1 70000", "port"),
    *_many("farm up --key k", "--port", "x", "invalid int"),
]


@pytest.mark.parametrize("case", CASES)
def test_bad_number_is_one_line_and_keeps_every_file(case, world, capsys, monkeypatch):
    check_refused(case, world, capsys, monkeypatch)


def test_farm_port_in_use_is_refused_before_anything_starts(world, capsys, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        check_refused(Case("farm-port-in-use", f"farm up --key k --port {port}", 3, "in use"),
                      world, capsys, monkeypatch)
