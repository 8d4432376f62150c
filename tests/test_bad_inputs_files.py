"""Bad files, foreign tables, clobbering outputs, unknown names and unreachable devices, across
every verb: exit 2 (3 for a device that cannot be reached), one ``hwnas: error:`` line, no
traceback, nothing compiled, and every file that existed before byte-identical after.

The files a case points at live in the world of ``_bad_world.py``.
"""
from __future__ import annotations

import pytest

from _bad_world import Case, arch_string, check_refused, world  # noqa: F401  (fixture)

ARCH = arch_string(resolutions=[128])
FMNIST_ARCH = arch_string(resolutions=[16], num_classes=10, in_chans=1)
EXPORT = f"export --arch {ARCH} --target x86-host --no-measure"
PREDICT = f"predict --arch {ARCH}"
SEARCH = "search --objective mflops --latency-ms 5"
TRAIN = "train-supernet --out {w}/ck"
IMPORT = "import-table --target t"

ADAPT = "adapt --target toy --space nb201"

CASES = [
    # ---- adapt: measurements the user brings, and the sample count
    Case("adapt-too-few", f"{ADAPT} --measure 2", needle="at least 3"),
    Case("adapt-csv-missing", f"{ADAPT} --from-csv {{w}}/none.csv", needle="none.csv"),
    Case("adapt-csv-not-csv", f"{ADAPT} --from-csv {{w}}/arch/notjson.json",
         needle="notjson.json:1: expected arch,latency_ms"),
    Case("adapt-unknown-space", "adapt --target toy --space nope --measure 5",
         needle="choose from:"),
    # ---- arch strings and arch.json
    Case("export-arch-not-json", f"{EXPORT} --arch {{w}}/arch/notjson.json --out {{w}}/b",
         needle="corrupt arch file"),
    Case("export-arch-list", f"{EXPORT} --arch {{w}}/arch/list.json --out {{w}}/b",
         needle="'arch' string"),
    Case("export-arch-missing-file", f"{EXPORT} --arch {{w}}/arch/none.json --out {{w}}/b",
         needle="not found"),
    Case("export-arch-space-config", f"{EXPORT} --arch {{w}}/arch/spacecfg.json --out {{w}}/b",
         needle="field 'space_config'"),
    Case("export-arch-space-name", f"{EXPORT} --arch {{w}}/arch/spacename.json --out {{w}}/b",
         needle="unknown search space 'nope'"),
    Case("export-arch-garbage", "export --arch r128-kxx --target x86-host --out {w}/b",
         needle="arch"),
    Case("predict-arch-no-arch", "predict --target toy --arch {w}/arch/noarch.json",
         needle="'arch' string"),
    Case("predict-arch-number", "predict --target toy --arch {w}/arch/archnum.json",
         needle="'arch' string"),
    Case("predict-arch-out-of-table", "predict --target toy --arch "
         "r224-k33.33.33.33.33-e33.33.33.33.33", needle="224"),
    # ---- checkpoints: metadata and weights
    Case("search-ckpt-no-meta", f"{SEARCH} --target toy --checkpoint {{w}}/ckpt/nometa",
         needle="not found"),
    Case("search-ckpt-meta-not-json", f"{SEARCH} --target toy --checkpoint {{w}}/ckpt/badjson",
         needle="corrupt checkpoint metadata"),
    Case("predict-ckpt-meta-list", f"{PREDICT} --target toy --checkpoint {{w}}/ckpt/metalist",
         needle="'space'"),
    Case("export-ckpt-no-space", f"{EXPORT} --out {{w}}/b --checkpoint {{w}}/ckpt/nospace",
         needle="'space'"),
    Case("search-ckpt-space-number", f"{SEARCH} --target toy --checkpoint {{w}}/ckpt/spacenum",
         needle="'space'"),
    Case("export-ckpt-space-bad", f"{EXPORT} --out {{w}}/b --checkpoint {{w}}/ckpt/spacebad",
         needle="field 'space'"),
    Case("export-ckpt-garbage-weights", f"export --arch {FMNIST_ARCH} --target x86-host "
         "--no-measure --out {w}/b --checkpoint {w}/ckpt/garbage", needle="non-torch file"),
    Case("export-ckpt-pickled-objects", f"export --arch {FMNIST_ARCH} --target x86-host "
         "--no-measure --out {w}/b --checkpoint {w}/ckpt/pickled", needle="never unpickles"),
    Case("export-ckpt-truncated-weights", f"export --arch {FMNIST_ARCH} --target x86-host "
         "--no-measure --out {w}/b --checkpoint {w}/ckpt/truncated", needle="truncated"),
    Case("deploy-ckpt-garbage-weights", "deploy --target debugdev --latency-ms 1 --out {w}/b "
         "--checkpoint {w}/ckpt/garbage", needle="not a valid state_dict"),
    Case("search-ckpt-unknown", f"{SEARCH} --target toy --checkpoint {{w}}/ckpt/typo",
         needle="available: ofa-mbv3-fmnist"),
    Case("tune-ckpt-meta-not-json", "tune --target x86-host --checkpoint {w}/ckpt/badjson",
         needle="corrupt checkpoint metadata"),
    # ---- latency tables and their metadata
    *[Case(f"predict-table-{name}", f"{PREDICT} --target {name}", needle=needle)
      for name, needle in (("corrupt", "corrupt latency table"),
                           ("truncated", "corrupt latency table"),
                           ("notable", "not an hwnas latency table"),
                           ("spaces-not-list", "'spaces'"), ("spaces-item", "'spaces[0]'"),
                           ("networks-not-list", "'networks'"),
                           ("networks-record", "'networks[0]'"),
                           ("networks-ms", "'networks[0].median_ms'"),
                           ("reference", "'reference.quiet_ms'"), ("target-type", "'target'"),
                           ("badentry", "bad entry"), ("calbroken", "corrupt latency predictor"))],
    Case("search-table-truncated", f"{SEARCH} --target truncated", needle="corrupt latency table"),
    Case("profile-resume-corrupt-table", "profile --target debugdev --workers 0 --resume "
         "--out {w}/tables/corrupt/ofa-mbv3.json", needle="corrupt latency table"),
    Case("profile-resume-table-of-another-target", "profile --target debugdev --workers 0 "
         "--resume --resolutions 128 --out {w}/tables/toy/ofa-mbv3.json", needle="cannot resume"),
    Case("profile-existing-table", "profile --target debugdev --workers 0 "
         "--out {w}/tables/toy/ofa-mbv3.json", needle="exists"),
    # ---- tables, predictors and tuning databases of another device
    Case("predict-foreign-table", f"{PREDICT} --target foreign", needle="measured for target"),
    Case("search-foreign-table", f"{SEARCH} --target foreign", needle="measured for target"),
    Case("search-foreign-table-spec", "search --objective mflops --latency-ms foreign=5",
         needle="measured for target"),
    Case("predict-foreign-calibrated", f"{PREDICT} --target calforeign",
         needle="fitted on the table of target 'x86-host'"),
    Case("export-foreign-tuning-db", f"{EXPORT} --out {{w}}/b --tuning-db {{w}}/tuning/foreign",
         needle="tuned for target 'rpi4'"),
    Case("export-corrupt-tuning-db", f"{EXPORT} --out {{w}}/b --tuning-db {{w}}/tuning/corrupt",
         needle="corrupt tuning manifest"),
    Case("export-missing-tuning-db", f"{EXPORT} --out {{w}}/b --tuning-db {{w}}/tuning/none",
         needle="no MetaSchedule database"),
    # ---- target TOML
    *[Case(f"export-target-{name}", f"{EXPORT} --out {{w}}/b --target {{w}}/badtargets/"
           f"{name}.toml", needle=needle)
      for name, needle in (("syntax", "malformed TOML"), ("nokind", "tvm.kind"),
                           ("runtime", "'runtime'"), ("binary", "not a text"),
                           ("crosscc", "cross_compiler"), ("missing", "unknown target"))],
    Case("profile-target-threads", "profile --workers 0 --target {w}/badtargets/threads.toml",
         needle="'threads'"),
    Case("deploy-target-affinity", "deploy --latency-ms 5 --out {w}/b "
         "--target {w}/badtargets/affinity.toml", needle="'shared' only for a local device"),
    Case("deploy-target-syntax", "deploy --latency-ms 5 --out {w}/b "
         "--target {w}/badtargets/syntax.toml", needle="malformed TOML"),
    # ---- datasets
    *[Case(f"train-data-{name.replace('.', '-')}", f"{TRAIN} --data {{w}}/data/{name}",
           needle=needle)
      for name, needle in (("garbage.npz", "cannot read"), ("partial.npz", "lacks"),
                           ("flat.npz", "images must be"), ("strlabels.npz", "labels"),
                           ("badimage", "cannot read image"), ("noclasses", "no class"),
                           ("missing.npz", "not found"))],
    Case("train-data-unknown", f"{TRAIN} --data imagenet", needle="unknown dataset 'imagenet'"),
    # ---- published lookup tables
    Case("import-ofa-lut-as-proxyless", f"{IMPORT} --source {{w}}/lut/ofa --format proxyless-lut "
         "--out {w}/i.json", needle="covers 0 of"),
    Case("import-lut-without-means", f"{IMPORT} --source {{w}}/lut/bad.yaml --out {{w}}/i.json",
         needle="lacks a numeric mean"),
    Case("import-lut-not-yaml", f"{IMPORT} --source {{w}}/lut/notyaml.yaml --out {{w}}/i.json",
         needle="malformed YAML"),
    Case("import-lut-missing", f"{IMPORT} --source {{w}}/lut/none.yaml --out {{w}}/i.json",
         needle="not found"),
    Case("import-wrong-width", f"{IMPORT} --source {{w}}/lut/ofa --width-mult 1.0 "
         "--out {w}/i.json", needle="covers"),
    # ---- published accuracy data: the earlier import stays as it was
    Case("import-accuracy-truncated", "import-accuracy --source {w}/acc/truncated.pth --force",
         needle="not a readable torch file"),
    Case("import-accuracy-other-layout", "import-accuracy --source {w}/acc/other.pth --force",
         needle="missing key '0.weight'"),
    Case("import-accuracy-exists", "import-accuracy --source {w}/acc/good.pth",
         needle="exists"),
    Case("import-accuracy-missing", "import-accuracy --source {w}/acc/none.pth",
         needle="not found"),
    Case("import-accuracy-unknown-format", "import-accuracy --source {w}/notes.md",
         needle="cannot tell the format"),
    Case("import-accuracy-csv-top1", "import-accuracy --source {w}/acc/top1.csv",
         needle="top1.csv:3: top-1 175.1 outside 0-100"),
    Case("import-accuracy-csv-dict", "import-accuracy --source {w}/acc/dict.csv",
         needle="dict.csv:3: malformed arch dict"),
    Case("search-accuracy-unknown", "search --target toy --latency-ms 5 --accuracy nope",
         needle="unknown accuracy source 'nope'"),
    # ---- outputs that would clobber a user's files or another output
    *[Case(f"{verb}-out-{name}", f"{args} --out {{w}}/{name}", needle=needle)
      for verb, args in (("export", EXPORT), ("search", f"{SEARCH} --target toy"),
                         ("deploy", "deploy --target debugdev --latency-ms 5"))
      for name, needle in (("mywork", "did not write (notes.md and 1 more)"),
                           ("notes.md", "is a file"),
                           ("oldsearch" if verb != "search" else "oldbundle", "did not write"))],
    Case("train-out-user-folder", f"{TRAIN} --data digits --out {{w}}/mywork",
         needle="not a supernet checkpoint"),
    Case("train-out-user-folder-restart", f"{TRAIN} --data digits --out {{w}}/ckptout "
         "--restart", needle="not a supernet checkpoint"),
    Case("train-out-file", f"{TRAIN} --data digits --out {{w}}/notes.md", needle="is a file"),
    Case("train-out-another-model", f"{TRAIN} --data digits --out {{w}}/ckpt/garbage",
         needle="another space"),
    Case("import-out-existing-table", f"{IMPORT} --source {{w}}/lut/ofa "
         "--out {w}/tables/toy/ofa-mbv3.json", needle="exists"),
    Case("import-out-user-file", f"{IMPORT} --source {{w}}/lut/ofa --out {{w}}/notes.md",
         needle="exists"),
    Case("profile-out-user-file", "profile --target debugdev --workers 0 --out {w}/notes.md",
         needle="exists"),
    Case("profile-resume-user-file", "profile --target debugdev --workers 0 --resume "
         "--out {w}/notes.md", needle="corrupt latency table"),
    Case("tune-out-user-folder", "tune --target x86-host --out {w}/mywork", needle="exists"),
    Case("tune-out-file", "tune --target x86-host --out {w}/notes.md", needle="is a file"),
    Case("tune-work-dir-user-folder", "tune --target x86-host --work-dir {w}/mywork "
         "--out {w}/db", needle="holds no tuning run"),
    # ---- unknown names list the registered ones
    Case("search-unknown-space", f"{SEARCH} --target toy --space nope",
         needle="choose from: fbnet, nb201, ofa-mbv3, ofa-mbv3-fmnist, ofa-mbv3-imagenet, "
                "ofa-mbv3-imagenet-w10, proxyless"),
    Case("search-unknown-strategy", f"{SEARCH} --target toy --strategy nope",
         needle="choose from:"),
    Case("search-unknown-predictor", f"{SEARCH} --target toy --predictor nope",
         needle="choose from"),
    Case("search-unknown-target", f"{SEARCH} --target nope", needle="targets with a table:"),
    Case("predict-unknown-predictor", f"{PREDICT} --target toy --predictor nope",
         needle="choose from"),
    Case("export-unknown-space", f"{EXPORT} --out {{w}}/b --space nope", needle="choose from:"),
    Case("export-unknown-target", f"export --arch {ARCH} --target nope --out {{w}}/b",
         needle="available:"),
    Case("profile-unknown-target", "profile --target nope", needle="available:"),
    Case("profile-unknown-space", "profile --target debugdev --space nope", needle="choose from:"),
    Case("profile-unknown-runtime", "profile --target debugdev --runtime nope",
         needle="invalid choice"),
    Case("deploy-unknown-strategy", "deploy --target debugdev --latency-ms 5 --strategy nope",
         needle="choose from:"),
    Case("deploy-unknown-target", "deploy --target nope --latency-ms 5", needle="available:"),
    Case("deploy-unknown-checkpoint", "deploy --target debugdev --latency-ms 5 --out {w}/b "
         "--checkpoint nope", needle="available:"),
    Case("tune-unknown-target", "tune --target nope", needle="available:"),
    Case("tune-debug-target", "tune --target debugdev", needle="does not compile"),
    Case("tune-unknown-space", "tune --target x86-host --space nope", needle="choose from:"),
    Case("import-unknown-space", f"{IMPORT} --source {{w}}/lut/ofa --space nope "
         "--out {w}/i.json", needle="choose from:"),
    Case("import-unknown-format", f"{IMPORT} --source {{w}}/lut/ofa --format nope",
         needle="invalid choice"),
    Case("train-unknown-acc-model", f"{TRAIN} --data digits --acc-model nope",
         needle="invalid choice"),
    Case("unknown-verb", "fly", needle="invalid choice"),
    Case("farm-status-no-tracker", "farm status", needle="required"),
    # ---- devices: unreachable (exit 3) or addressed wrongly (exit 2)
    Case("export-rpc-unreachable", f"export --arch {ARCH} --target x86-host --out {{w}}/b "
         "--rpc 127.0.0.1:1", code=3),
    Case("profile-rpc-unreachable", "profile --target x86-host --untuned --rpc 127.0.0.1:1 "
         "--out {w}/t.json", code=3),
    Case("deploy-rpc-unreachable", "deploy --target x86-host --untuned --latency-ms 5 "
         "--out {w}/b --rpc 127.0.0.1:1", code=3),
    Case("farm-status-unreachable", "farm status --tracker 127.0.0.1:1", code=3),
    Case("export-rpc-no-port", f"export --arch {ARCH} --target x86-host --out {{w}}/b "
         "--rpc localhost", needle="HOST:PORT"),
    Case("farm-status-bad-port", "farm status --tracker 127.0.0.1:99999", needle="HOST:PORT"),
    # ---- emulated devices: refused before any root is set up or downloaded
    Case("emulate-unknown-arch", "device emulate --arch riscv64 --cache {w}/emu",
         needle="aarch64"),
    Case("emulate-bad-port", "device emulate --port 70000 --cache {w}/emu", needle="--port"),
    Case("emulate-negative-port", "device emulate --port -1 --cache {w}/emu", needle="--port"),
    Case("emulate-tracker-no-key", "device emulate --tracker 127.0.0.1:9190 --cache {w}/emu",
         needle="go together"),
    Case("emulate-bad-tracker", "device emulate --tracker nowhere --key k --cache {w}/emu",
         needle="HOST:PORT"),
]


@pytest.mark.parametrize("case", [c.param() for c in CASES])
def test_bad_file_or_name_is_one_line_and_keeps_every_file(case, world, capsys, monkeypatch):
    line = check_refused(case, world, capsys, monkeypatch)
    # torch's advice to load an untrusted file unsafely never reaches a user
    assert "weights_only" not in line and "trust" not in line


def test_cases_cover_every_verb():
    from hwnas.cli import build_parser

    verbs = set(build_parser()._subparsers._group_actions[0].choices)
    covered = {c.argv.split()[0] for c in CASES}
    import test_bad_inputs

    covered |= {c.values[0].argv.split()[0] for c in test_bad_inputs.CASES}
    assert verbs - {"targets"} <= covered, verbs - covered
