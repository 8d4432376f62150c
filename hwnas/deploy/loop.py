"""``hwnas deploy``: profile (or reuse) → search → export → compile → measure, until it fits.

The latency predictor is the target's ``predictor`` kind (``auto``: the best available, see
``hwnas.predict.load_predictor``). A ``fewshot`` predictor (``hwnas adapt``) needs no operator
table, so none is profiled for it; the others need the target's table, reused when it fits and
profiled when it does not. First one of the predictor's own networks (the table's, or the
few-shot's samples) is timed again (round 0), so that the predictor starts from the device's
speed today. Each round searches with the predictor fed with that and with every bundle
measured so far (``feedback_for``: more samples of a few-shot predictor, refitted; a
measured/predicted correction of the others), exports the chosen subnet with the supernet's
weights (BN recalibrated), compiles it for the target, and measures the compiled library on
the device.
A round whose measured median is within budget ends the loop when it is within ``slack`` of
the budget, or, from the second round on (the first measurement has corrected the predictor),
when it agrees with its prediction within ``agree``: the corrected predictor is right there,
and the search already spent the budget as far as its margin allows, so another round would
only re-measure the device's noise (on a busy device, rounds chasing the slack alone wandered
for all ``max_rounds``), and also when an earlier round went over budget: the budget is then
bracketed by two measured subnets, and further rounds only swung across it (a loaded deploy
went 0.87 → 0.67 → 0.81 → 0.73 ms against 0.8), and also when the search chose a subnet
an earlier round already measured (it has converged: the next round would choose it again).
An over-budget round feeds its measurement back and searches again. After ``max_rounds`` the
best bundle within budget is kept, or the run stops with a report of every round.

Every bundle is measured before it ships, so the search's safety margin (the predictor's p90
bound) only saves rounds; it is also what leaves a bundle short of its budget (on the x86
host, the p90 bound sat 10-12% above the calibrated prediction, and deploys ended with 11-15%
slack). After a round within budget but short of ``slack``, the next round *probes*: it
searches with half the margin the last one used (the predictor's bound, as a fraction of its
prediction for the subnet chosen, when no ``margin`` is set). A probe that goes over budget
ends the loop with the best bundle measured within it: the budget lies between the two.

A bundle timed while other processes held a core (*contended*, ``hwnas.runtime.contention``)
has a ratio to the reference that moves with how the held core slows each network: on the
x86 host under one held core, 60-round A/B latencies of 10 networks near the budgets differed
from their quiet ones by 6.3% (log sd; 80% within 10%), and by 14% with 10 rounds. So every
bundle is timed over ``DEPLOY_ROUNDS`` rounds (a fraction of a second, against ~10 s to
compile it). The bias is not noise but a property of each network under that contention: on a
znver5 host the largest networks read x1.34 their quiet latency and the smallest x0.93, the
same in every repeat (``hwnas.runtime.anchors``). So a contended bundle is timed again beside
three of the table's calibration networks around the budget (*anchors*, compiled once per
deploy on the first contended round, ``hwnas.deploy.anchors``), and its reading is divided by
their bias at its size. That removes the trend with size, not each network's own scatter
about it: in ``benchmarks/noise.py`` 25 anchored readings were their bundle's quiet truth to a
median 3.3% (10.5% fast to 8.3% slow), ten unanchored ones to 5.4% (8.4% fast to 22% slow).
So a contended measurement is still judged ``contended_margin`` slower than it reads: that
judged latency decides within budget, the slack and the best bundle.
"""
from __future__ import annotations

import logging
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hwnas._checks import check_int, check_seed
from hwnas._data import is_checkpoint_file
from hwnas._io import atomic_write_json, read_json
from hwnas._outputs import check_output_dir, replace_dir
from hwnas.predict.correction import feedback_for
from hwnas.deploy.report import plot_predicted_vs_measured, write_report
from hwnas.deploy.run_script import RUN_PY
from hwnas.deploy.table_reuse import ensure_table
from hwnas.errors import BudgetError, DeviceError, SpaceError
from hwnas.search import search
from hwnas.search.constraints import Constraints, LatencyBudget
from hwnas.predict.loading import load_predictor, refuse_emulated
from hwnas.search.objectives import load_objective
from hwnas.search.problem import SearchProblem
from hwnas.search.assemble import write_outputs
from hwnas.spaces import space_from_config

__all__ = ["DeployConfig", "deploy"]

log = logging.getLogger("hwnas.deploy")

#: seconds to wait before timing again what another process contended
BUSY_WAIT_S = 2.0
#: interleaved rounds of a bundle's measurement (the reference's default is 10)
DEPLOY_ROUNDS = 60
#: a contended measurement's error against the quiet device, one standard deviation (above)
CONTENDED_MARGIN = 0.06


@dataclass
class DeployConfig:
    target: object                      # hwnas.targets.Target
    budget_ms: float
    out: Path
    checkpoint: Path | str | None = None  # folder or shipped name (None: the default space's)
    runtime: object = None              # hwnas.runtime.Runtime on the device
    max_rounds: int = 4
    slack: float = 0.10                 # stop once measured ≥ (1 - slack) × budget
    agree: float = 0.10                 # ... or, from round 2, within this of predicted
    strategy: str = "evolution"
    strategy_options: dict = field(default_factory=dict)
    margin: float | None = None         # None: the predictor's p90 bound
    seed: int = 0
    tuning_dir: str | None = None       # the target's tuning database (None: untuned code)
    tune_trials: int = 0                # > 0: top the database up with each round's subnet
    profile_networks: int = 20
    table: Path | None = None           # the latency table file (None: the target's own)
    force: bool = False                 # replace whatever is at ``out``
    predictor: str = "auto"             # auto, table, calibrated or fewshot
    allow_emulated: bool = False        # accept an emulated device and its tables
    contended_margin: float = CONTENDED_MARGIN  # a contended measurement is judged this slower

    def validate(self) -> None:
        """Every field in range (one-line errors), before anything is compiled or measured."""
        import math

        from hwnas.search import STRATEGIES

        if not (isinstance(self.budget_ms, (int, float)) and math.isfinite(self.budget_ms)
                and self.budget_ms > 0):
            raise BudgetError(f"latency budget must be a positive, finite number of ms, got "
                              f"{self.budget_ms!r}")
        if not (isinstance(self.max_rounds, int) and self.max_rounds >= 1):
            raise BudgetError(f"max_rounds must be an integer of at least 1, got {self.max_rounds!r}")
        if not (isinstance(self.slack, (int, float)) and 0 <= self.slack < 1):
            raise BudgetError(f"slack must be a fraction in [0, 1), got {self.slack!r}")
        if not (isinstance(self.agree, (int, float)) and 0 <= self.agree < 1):
            raise BudgetError(f"agree must be a fraction in [0, 1), got {self.agree!r}")
        if self.margin is not None and not (math.isfinite(self.margin) and 0 <= self.margin < 10):
            raise BudgetError(f"margin must be a fraction in [0, 10), got {self.margin!r}")
        if not (isinstance(self.contended_margin, (int, float))
                and 0 <= self.contended_margin < 1):
            raise BudgetError(f"contended_margin must be a fraction in [0, 1), got "
                              f"{self.contended_margin!r}")
        if not (isinstance(self.tune_trials, int) and self.tune_trials >= 0):
            raise BudgetError(f"tuning trials must be an integer ≥ 0, got {self.tune_trials!r}")
        if not (isinstance(self.profile_networks, int) and self.profile_networks >= 0):
            raise BudgetError(f"profiled networks must be an integer ≥ 0, got "
                              f"{self.profile_networks!r}")
        STRATEGIES.get(self.strategy)
        if self.predictor != "auto":
            from hwnas.predict import PREDICTORS

            PREDICTORS.get(self.predictor)
        check_seed(self.seed, BudgetError)
        check_int(self.profile_networks, "profile_networks", 0, error=BudgetError)
        self.out = check_output_dir(self.out, "bundle", self.force)


def _problem(cfg: DeployConfig, space, corrected, margin: float | None = None) -> SearchProblem:
    cons = Constraints(latency=(LatencyBudget(cfg.target.name, cfg.budget_ms),),
                       margin=cfg.margin if margin is None else margin)
    # a published supernet file (Once-for-All's) holds weights only: the configuration's other
    # accuracy sources score the search, else the MACs proxy (said so)
    objective = load_objective("auto" if is_checkpoint_file(cfg.checkpoint) else "accuracy",
                               space, cfg.checkpoint)
    return SearchProblem(space, objective, {cfg.target.name: corrected}, cons)


def _export_round(cfg: DeployConfig, space, arch, loaded, database, out: Path,
                  searched: dict | None = None) -> dict:
    from hwnas.compiler.database import describe_database
    from hwnas.export.accuracy import manifest_accuracy
    from hwnas.export.bundle import BundleRequest, export_bundle
    from hwnas.export.weights import subnet_with_weights

    model, weights = subnet_with_weights(space, arch, loaded)
    if cfg.tune_trials:
        database = _top_up(cfg, space, arch, model)
    return export_bundle(BundleRequest(space, arch, model, cfg.target, out, weights,
                                       database=database,
                                       database_info=describe_database(cfg.tuning_dir),
                                       check_on=cfg.runtime,
                                       extra={"accuracy": manifest_accuracy(weights, searched)}))


def _top_up(cfg: DeployConfig, space, arch, model):
    """Give this subnet's kernels ``tune_trials`` trials in the target's work folder (those
    tuned before are reused), publish the result to the target's database, and return it."""
    import tempfile

    from hwnas.compiler.database import database_dir, load_database, publish, read_manifest
    from hwnas.compiler.database import work_dir as target_work_dir
    from hwnas.compiler.onnx_export import INPUT_NAME, export_onnx
    from hwnas.compiler.space_tuning import seed_work_dir
    from hwnas.compiler.tune import tune_onnx

    dest = Path(cfg.tuning_dir) if cfg.tuning_dir else database_dir(cfg.target, for_writing=True)
    work = target_work_dir(cfg.target)
    seed_work_dir(work, dest if dest.exists() else None)
    shape = space.input_shape(arch)
    with tempfile.TemporaryDirectory(prefix="hwnas-tune-") as tmp:
        onnx_path = export_onnx(model, shape, Path(tmp) / "model.onnx")
        tune_onnx(onnx_path, {INPUT_NAME: shape}, cfg.target, work, cfg.tune_trials)
    from hwnas.compiler.database import target_identity

    old = read_manifest(dest) if dest.exists() else {}
    publish(work, dest, {**{k: v for k, v in old.items() if k not in ("workloads",
                                                                        "best_seconds")},
                         "target": target_identity(cfg.target), "module_equality": "structural"})
    cfg.tuning_dir = str(dest)
    return load_database(dest, target=cfg.target)


def _reference(space, table_info: dict, base) -> dict | None:
    """The network an older table (no reference network) or a few-shot predictor re-times in
    round 0: the table's median calibration network, or the predictor's median sample."""
    from hwnas.profile.holdout import reference_network
    from hwnas.profile.table import LatencyTable

    if table_info.get("path"):
        return reference_network(LatencyTable.load(table_info["path"]), space)
    samples = getattr(base, "samples", None)
    if samples is None:
        return None
    i = int(np.argsort(samples.latency_ms, kind="stable")[len(samples.latency_ms) // 2])
    return {"arch": str(base.space.from_genome(samples.genomes[i])),
            "median_ms": float(samples.latency_ms[i])}


def _time_reference(cfg: DeployConfig, space, table_info: dict, corrected, work: Path,
                    elsewhere: str | None = None):
    """Round 0: time the table's reference network now, on the device.

    Its quiet time now over the table's is the device's scale against its table (a device
    uniformly slower, with fewer threads, say, is one factor); the reference then brackets
    every bundle measurement, so that each is drift-corrected to the device's quiet speed
    (``hwnas.runtime.reference``). An older table (no reference network) or a few-shot
    predictor re-times one of its own networks instead and feeds it back, and bundles are
    then measured raw. On a local device where other processes held half a core or more
    through every try (``hwnas.runtime.contention``), the slowdown is load, not the device:
    the table's scale is kept. Returns (what the manifest records, the ``Reference`` or
    None).
    """
    from hwnas.profile.networks import measure_network, network_timer
    from hwnas.profile.table import LatencyTable
    from hwnas.runtime.contention import BUSY_CORES
    from hwnas.runtime.reference import Reference, quiet_time_probed

    stored = None
    if table_info.get("path"):
        meta = LatencyTable.load(table_info["path"]).meta
        stored = meta.get("reference") if isinstance(meta.get("reference"), dict) else None
    arch = None
    if stored and stored.get("quiet_ms"):
        try:
            arch = space.parse(stored["arch"])
        except Exception:                # the reference lies outside the deployed resolutions
            arch = None
    if arch is None:
        ref = _reference(space, table_info, corrected.base)
        if ref is None:
            return None, None
        arch = space.parse(ref["arch"])
        ms = measure_network(space, arch, cfg.target, cfg.runtime,
                             tuning_dir=cfg.tuning_dir).median_ms
        corrected.add(_in_space(corrected.space, space, space.to_genomes([arch])[0]), ms)
        log.info("reference %s: %.3f ms now, %.3f ms when the predictor saw it (x%.3f); "
                 "bundles measured raw (no reference network)", ref["arch"], ms,
                 ref["median_ms"], ms / ref["median_ms"])
        return {"arch": ref["arch"], "table_ms": ref["median_ms"], "measured_ms": round(ms, 4),
                "ratio": round(ms / ref["median_ms"], 4), "corrected": False}, None
    timer = network_timer(space, arch, cfg.target, cfg.runtime, work, "reference",
                          cfg.tuning_dir)
    probed = quiet_time_probed(timer, contention=cfg.runtime.contention(),
                               busy_limit=BUSY_CORES, busy_wait_s=BUSY_WAIT_S)
    table_quiet = float(stored["quiet_ms"])
    seen = probed.ms / table_quiet
    if probed.contended and elsewhere is not None:
        # the table's CPU is another (x0.24 to x4 this one): its scale means nothing here,
        # and the quiet speed cannot be read off a busy device (under one held core of two,
        # every single run of the reference took x1.8-2.6 its quiet time, none faster).
        # The loaded speed is an upper bound: budgets are judged conservatively
        scale = seen
        log.warning("device busy: other processes held %.2f cores while the reference was "
                    "timed, and the table was measured on CPU %s, not %s: this device's "
                    "quiet speed is unknown, so it is judged at its loaded speed (x%.3f its "
                    "table), which is conservative; deploy while it is quiet, or profile its "
                    "own table", probed.busy_cores, elsewhere, cfg.target.mcpu, scale)
    elif probed.contended:
        # a core held by other work slows the reference by the share of its parallel
        # speed-up it loses, not by a device factor: taking that for the device's scale put
        # every prediction and corrected latency x1.25-1.6 too slow, and refused budgets the
        # quiet device met
        scale = 1.0
        log.warning("device busy: other processes held %.2f cores while the reference was "
                    "timed (it ran x%.2f its table time); the table's scale is kept, not "
                    "learnt from a busy device", probed.busy_cores, seen)
    else:
        scale = seen
        log.info("reference %s: quiet %.4f ms now, %.4f ms in the table: the device runs "
                 "x%.3f its table", arch, probed.ms, table_quiet, scale)
    corrected.scale = scale
    quiet_now = table_quiet * scale
    info = {"arch": str(arch), "table_quiet_ms": stored["quiet_ms"],
            "quiet_ms": round(probed.ms, 5), "scale": round(scale, 4), "corrected": True,
            "scale_from": ("the reference now, busy (the table's CPU is another)"
                           if probed.contended and elsewhere is not None
                           else "the table (device busy)" if probed.contended
                           else "the reference now"),
            # what older readers look for
            "table_ms": stored["quiet_ms"], "measured_ms": round(probed.ms, 5),
            "ratio": round(seen, 4)}
    if probed.busy_cores is not None:
        info.update(busy_cores=round(probed.busy_cores, 3), contended=probed.contended)
    return info, Reference(timer, quiet_now, str(arch))


def _measure_bundle(cfg: DeployConfig, manifest: dict, bundle: Path, reference,
                    anchors=None, table_budget_ms: float | None = None) -> dict:
    """The bundle's latency on the device: interleaved with the reference (drift-corrected
    to the device's quiet speed, raw beside it), or raw without one. A contended reading is
    timed again beside ``anchors`` (``hwnas.deploy.anchors``, around ``table_budget_ms``) and
    divided by their bias at it."""
    from hwnas.runtime.anchors import measure_anchored
    from hwnas.runtime.contention import BUSY_CORES
    from hwnas.runtime.reference import measure_batch

    x = np.random.default_rng(0).standard_normal(manifest["input"]["shape"]).astype(np.float32)
    timer = cfg.runtime.timer(bundle / manifest["files"]["library"], {"input": x})
    m, = measure_batch([timer], reference, rounds=DEPLOY_ROUNDS,
                       contention=cfg.runtime.contention(), busy_limit=BUSY_CORES,
                       busy_wait_s=BUSY_WAIT_S)
    fit = None
    if m.contended and m.corrected and anchors is not None:
        got = anchors.get(table_budget_ms or cfg.budget_ms)
        if got:
            # one try: under lasting contention more tries only wait; a try the other work
            # left alone is a clean reading, which stands
            m, fit = measure_anchored(timer, reference, got, rounds=DEPLOY_ROUNDS, tries=1,
                                      contention=cfg.runtime.contention(),
                                      busy_limit=BUSY_CORES)
    emulator = getattr(cfg.runtime, "emulator", None)
    out = {**m.latency.to_json(), "raw": m.raw.to_json(), "corrected": m.corrected,
           "runtime": type(cfg.runtime).__name__, "device": cfg.runtime.describe(),
           "emulated": emulator is not None, "emulator": emulator,
           "protocol": "A/B with the table's reference network" if reference else "raw"}
    if m.corrected:
        out.update(ratio=round(m.ratio, 5), load=round(m.load, 4),
                   reference_spread=round(m.reference_spread, 4), unstable=m.unstable)
        if m.unstable:
            from hwnas.profile.reference import busy_line

            log.warning("the device was unstable while the bundle was timed: %s",
                        busy_line(m.load, m.reference_spread))
    if fit is not None:
        out["anchored"] = fit.to_json()
    if m.busy_cores is not None:
        out.update(busy_cores=round(m.busy_cores, 3), contended=m.contended)
        if fit is not None:
            log.warning("device busy: other processes held %.2f cores while the bundle was "
                        "timed; it read %.3f ms, x%.3f as %d anchor networks timed beside it "
                        "read at its size: %.3f ms", m.busy_cores, fit.read_ms, fit.bias,
                        len(fit.points), m.latency.median_ms)
        elif m.contended:
            log.warning("device busy: other processes held %.2f cores while the bundle was "
                        "timed (%d tries); its drift-corrected latency may read slow (a held "
                        "core costs each network its own share of parallel speed-up)",
                        m.busy_cores, m.tries_contended)
    return out


def _in_space(target_space, space, genome: np.ndarray) -> np.ndarray:
    """A genome of ``space`` as a genome of ``target_space`` (the same arch)."""
    if target_space.config() == space.config():
        return genome
    return target_space.to_genomes([target_space.parse(str(space.from_genome(genome)))])[0]


def _base_predictor(cfg: DeployConfig, space):
    """(predictor, table info): a few-shot predictor needs no table; the others need the
    target's table, reused or profiled (``ensure_table``)."""
    from hwnas.predict.loading import fewshot_beside
    from hwnas.profile.table import table_path

    table_file = Path(cfg.table) if cfg.table is not None else table_path(cfg.target.name,
                                                                          space.name)
    fewshot = fewshot_beside(table_file)
    if cfg.predictor == "fewshot" or (cfg.predictor == "auto" and fewshot.exists()
                                      and not table_file.exists()):
        base = load_predictor(cfg.target.name, space, cfg.predictor, table_file,
                              allow_emulated=cfg.allow_emulated)
        return base, {"path": None, "fewshot": str(fewshot), "reused": True,
                      "device": base.provenance.get("device")}
    table_info = ensure_table(cfg.target, space, cfg.runtime, cfg.tuning_dir,
                              cfg.profile_networks, cfg.table)
    return load_predictor(cfg.target.name, space, cfg.predictor, table_info["path"],
                          allow_emulated=cfg.allow_emulated), table_info


def _sample_input(loaded, out: Path, manifest: dict) -> None:
    """A real held-out image for ``run.py`` to classify (none without a dataset: then
    ``run.py`` takes the user's own input)."""
    from hwnas.export.weights import sample_input

    if loaded.meta.get("dataset") is None:
        return
    x, label, classes = sample_input(loaded, manifest["input"]["shape"])
    np.save(out / "sample_input.npy", x)
    manifest["sample"] = {"file": "sample_input.npy", "label": label}
    if classes:
        manifest["classes"] = list(classes)


def deploy(cfg: DeployConfig) -> dict:
    from hwnas.compiler.database import load_database
    from hwnas.train.checkpoint import load_supernet

    cfg.validate()
    t0 = time.perf_counter()
    if cfg.runtime is not None:         # before anything is profiled or compiled for it
        refuse_emulated(cfg.runtime.emulator, f"the device {cfg.runtime.address} of "
                        f"'{cfg.target.name}' is emulated", cfg.allow_emulated, DeviceError)
    loaded = load_supernet(cfg.checkpoint)
    space = space_from_config(loaded[2]["space"])
    database = load_database(cfg.tuning_dir, target=cfg.target) if cfg.tuning_dir else None
    base, table_info = _base_predictor(cfg, space)
    log.info("latency predictor: %s", base.selection)
    if base.space.config() != space.config():
        space = space_from_config({**space.config(), "resolutions": [
            r for r in space.resolutions if r in base.space.resolutions]})
    if not space.resolutions:
        raise SpaceError("the latency table covers none of the checkpoint's resolutions")
    corrected = feedback_for(base)
    elsewhere = table_info.get("other_cpu")     # the table's CPU model, when another
    if elsewhere is None:     # an impossible budget: refused at once, before any compile
        _problem(cfg, space, corrected).check_feasible()
    table_info["predictor"] = {"kind": base.name, "selection": base.selection}
    work = cfg.out.parent / f".{cfg.out.name}.rounds"
    shutil.rmtree(work, ignore_errors=True)
    rounds: list[dict] = []
    try:
        info, reference = _time_reference(cfg, space, table_info, corrected, work / "reference",
                                          elsewhere)
        anchors = None
        if reference is not None and elsewhere is None and table_info.get("path"):
            from hwnas.deploy.anchors import AnchorSet

            anchors = AnchorSet(cfg, space, table_info["path"], corrected.scale,
                                work / "anchors")
        if elsewhere is not None:   # the table's CPU is another: judged at this CPU's speed
            _problem(cfg, space, corrected).check_feasible()
        best = _rounds(cfg, space, corrected, loaded, database, work, rounds, reference,
                       anchors)
        table_info["predictor"]["feedback"] = {
            "measurements_fed_back": corrected.n,
            "as_samples": bool(corrected.feeds_samples),
            "how": ("each measured network refits the few-shot predictor as one more sample"
                    if corrected.feeds_samples else "measured/predicted ratio of the nearest "
                    "measured networks scales the predictor (after the device's factor from "
                    "the reference network); its model is not refitted")}
        final = _finish(cfg, best, rounds, {**table_info, "reference": info}, work,
                        loaded, time.perf_counter() - t0)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final


def _rounds(cfg, space, corrected, loaded, database, work: Path, rounds: list[dict],
            reference=None, anchors=None) -> dict:
    best = None
    probe = None                        # the margin of the rounds that probe
    for i in range(1, cfg.max_rounds + 1):
        problem = _problem(cfg, space, corrected, probe)
        result = search(cfg.strategy, problem, seed=cfg.seed + i, **cfg.strategy_options)
        rdir = work / f"round{i}"
        desc = write_outputs(rdir / "search", problem, result)
        predicted = desc["predicted_latency_ms"][cfg.target.name]
        chosen = {"round": i, "arch": str(result.arch), "predicted_ms": predicted,
                  "predictor": corrected.name if corrected.n else corrected.base.name,
                  "predicted_accuracy": desc["objective"]["value"]}
        if probe is not None:
            chosen["margin"] = round(probe, 4)
        # the corrected search chose a subnet an earlier round measured within budget: it has
        # converged, and a further round would choose it again. Its library is not compiled
        # and timed again: the earlier round's bundle and measurement stand
        again = next((r for r in rounds if r["arch"] == chosen["arch"]
                      and r["judged_ms"] <= cfg.budget_ms), None)
        if again is not None:
            rounds.append({**chosen, **{k: again[k] for k in ("untuned_kernels", "measured",
                                                              "judged_ms", "accuracy", "dir")},
                           "repeat_of": again["round"], "stop": "repeat"})
            log.info("round %d: the search chose %s again (round %d, measured %.3f ms within "
                     "%g ms): converged", i, result.arch, again["round"],
                     again["measured"]["median_ms"], cfg.budget_ms)
            break
        manifest = _export_round(cfg, space, result.arch, loaded, database, rdir / "bundle",
                                 desc.get("accuracy"))
        tuning = manifest.get("tuning", {})
        if tuning.get("tuned", 0) < tuning.get("kernels", 0) and not any(
                r.get("untuned_kernels") for r in rounds):
            log.warning("%d of %d kernels of %s have no tuned schedule for %s and run untuned; "
                        "tune the space once with hwnas tune", tuning["kernels"] - tuning["tuned"],
                        tuning["kernels"], result.arch, cfg.target.name)
        lat = _measure_bundle(cfg, manifest, rdir / "bundle", reference, anchors,
                              cfg.budget_ms / corrected.scale)
        manifest["latency"]["measured"] = lat
        atomic_write_json(rdir / "bundle" / "manifest.json", manifest)
        m = lat["median_ms"]
        # a contended measurement may read fast: it is judged by its error's margin
        judged = m * (1 + cfg.contended_margin) if lat.get("contended") else m
        rec = {**chosen, "untuned_kernels": tuning.get("kernels", 0) - tuning.get("tuned", 0),
               "measured": lat, "judged_ms": round(judged, 5),
               "accuracy": manifest["weights"]["accuracy"], "dir": str(rdir)}
        rounds.append(rec)
        log.info("round %d: %s predicted %.3f ms, measured %.3f ms%s%s (budget %g ms), acc %s",
                 i, result.arch, predicted, m,
                 f" (raw {lat['raw']['median_ms']:.3f}, load x{lat['load']:.2f})"
                 if lat.get("corrected") else "",
                 f", judged {judged:.3f} ms (contended)" if judged != m else "",
                 cfg.budget_ms, "not measured" if rec["accuracy"] is None
                 else f"{rec['accuracy']:.4f}")
        # the judged latency is what decides, so it is what the next search learns from: fed
        # the reading, a contended loop chose subnets that read at the budget, judged over it
        # in every round
        corrected.add(_in_space(corrected.space, space, result.best), judged)
        within = judged <= cfg.budget_ms
        if within and (best is None or _rank(rec) > _rank(best)):
            best = rec
        fills = judged >= (1 - cfg.slack) * cfg.budget_ms
        agrees = i >= 2 and abs(judged / predicted - 1) <= cfg.agree
        # an earlier round went over: the budget lies between two measured subnets, and a
        # search between them only swings across it with the device's noise
        bracketed = any(r["judged_ms"] > cfg.budget_ms for r in rounds[:-1])
        if within and (fills or agrees or bracketed):
            rec["stop"] = "slack" if fills else "agree" if agrees else "bracket"
            break
        if not within and probe is not None and best is not None:
            rec["stop"] = "probe"       # the budget lies between this probe and ``best``
            break
        if within:                      # short of the slack: the next round probes
            used = probe if probe is not None else cfg.margin
            if used is None:
                g = _in_space(corrected.space, space, result.best)[None, :]
                used = float(corrected.predict_upper_genomes(g)[0]
                             / corrected.predict_genomes(g)[0]) - 1.0
            probe = max(0.0, used) / 2
            log.info("round %d left %.1f%% of the budget: the next round searches with a "
                     "%.1f%% margin", i, 100 * (cfg.budget_ms - judged) / cfg.budget_ms,
                     100 * probe)
    return best


def _rank(rec: dict) -> tuple[float, float]:
    """Within budget, prefer accuracy, then the latency that uses more of the budget."""
    acc = rec["accuracy"]
    return -math.inf if acc is None else acc, rec["measured"]["median_ms"]


def _finish(cfg, best, rounds, table_info, work: Path, loaded, wall_s: float) -> dict:
    if best is None:
        def said(r: dict) -> str:
            m = r["measured"]["median_ms"]
            judged = (f", judged {r['judged_ms']:.2f} ms (contended)"
                      if r["judged_ms"] != round(m, 5) else "")
            return f"round {r['round']}: {r['arch']} measured {m:.2f} ms{judged}"

        tried = "; ".join(said(r) for r in rounds)
        raise BudgetError(f"no bundle met {cfg.budget_ms:g} ms on {cfg.target.name} in "
                          f"{len(rounds)} rounds ({tried})")
    rdir = Path(best["dir"])
    bundle = rdir / "bundle"
    manifest = read_json(bundle / "manifest.json", "bundle manifest")
    for name in ("pareto.png", "pareto.json", "history.json"):
        shutil.copy2(rdir / "search" / name, bundle / name)
    (bundle / "run.py").write_text(RUN_PY)
    _sample_input(loaded, bundle, manifest)
    plot_predicted_vs_measured(rounds, cfg.budget_ms, bundle / "predicted_vs_measured.png")
    manifest["latency"].update({
        "budget_ms": cfg.budget_ms, "predicted_ms": best["predicted_ms"],
        "predictor": best["predictor"], "within_budget": True,
        "slack": (cfg.budget_ms - best["measured"]["median_ms"]) / cfg.budget_ms,
        "contended_margin": cfg.contended_margin})
    if best["judged_ms"] != round(best["measured"]["median_ms"], 5):
        manifest["latency"]["judged_ms"] = best["judged_ms"]
    predictor = table_info.pop("predictor", None)
    manifest["deploy"] = {"rounds": len(rounds), "chosen_round": best["round"],
                          "history": [{k: v for k, v in r.items() if k != "dir"} for r in rounds],
                          "table": table_info, "predictor": predictor, "wall_s": round(wall_s, 1),
                          "strategy": cfg.strategy}
    atomic_write_json(bundle / "arch.json", {**read_json(bundle / "arch.json", "arch"),
                                             "predicted_latency_ms": best["predicted_ms"]})
    atomic_write_json(bundle / "manifest.json", manifest)
    write_report(bundle, manifest, rounds, cfg.budget_ms)
    replace_dir(bundle, cfg.out, "bundle", cfg.force)
    return manifest
