"""A deploy's working state: what its rounds need, loaded once (``open_deployment``).

The supernet, the latency table (reused or profiled, ``hwnas.deploy.table_reuse``), the
predictor with every measurement fed back to it (``feedback_for``), the accuracy objective and
the tuning database are loaded before round 0; round 0 (``time_reference``) adds the device's
scale, the reference network that brackets every bundle timing, and the anchor networks.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from hwnas.deploy.config import DeployConfig
from hwnas.deploy.records import PredictorRecord
from hwnas.deploy.table_reuse import TableRecord, ensure_table
from hwnas.errors import DeviceError, SpaceError, TableError
from hwnas.predict import LatencyPredictor
from hwnas.predict.correction import feedback_for
from hwnas.predict.loading import fewshot_beside, fewshot_fits, load_predictor, refuse_emulated
from hwnas.profile.anchor_networks import AnchorNetworks
from hwnas.profile.deploy_timing import (BundleLatency, ReferenceReading, measure_bundle,
                                         time_reference)
from hwnas.profile.table import table_path
from hwnas.search.constraints import Constraints, LatencyBudget
from hwnas.search.objectives import Objective, load_objective
from hwnas.search.problem import SearchProblem
from hwnas.spaces import SearchSpace, space_from_config

__all__ = ["Deployment", "open_deployment"]

log = logging.getLogger("hwnas.deploy")


@dataclass
class Deployment:
    """One deploy's state. ``cfg`` stays as given; what a run learns or changes lives here:
    the predictor's feedback, round 0's reading, and the tuning folder a top-up publishes to."""

    cfg: DeployConfig
    space: SearchSpace              # the checkpoint's space, at the table's resolutions
    supernet: object | None         # hwnas.train.checkpoint.LoadedSupernet (None: random)
    table: TableRecord
    base: LatencyPredictor          # as loaded (``selection`` says why this one)
    predictor: LatencyPredictor     # ``base`` with the device's measurements fed back
    objective: Objective            # predicted accuracy, from the checkpoint
    database: object | None         # the tuning database at the start (None: untuned)
    tuning_dir: str | None          # its folder, where ``tune_trials`` publish
    work: Path                      # the rounds' bundles, removed at the end
    reading: ReferenceReading | None = None
    reference: object | None = None  # hwnas.runtime.reference.Reference
    anchors: AnchorNetworks | None = None

    def problem(self, margin: float | None = None) -> SearchProblem:
        """The search of a round: the budget, at ``margin`` (None: the config's)."""
        cfg = self.cfg
        cons = Constraints(latency=(LatencyBudget(cfg.target.name, cfg.budget_ms),),
                           margin=cfg.margin if margin is None else margin)
        return SearchProblem(self.space, self.objective, {cfg.target.name: self.predictor},
                             cons)

    @property
    def predictor_name(self) -> str:
        """What a round's prediction came from: the fed-back predictor once it has learnt."""
        return self.predictor.name if self.predictor.n else self.predictor.base.name

    def predictor_genome(self, genome: np.ndarray) -> np.ndarray:
        """A genome of ``space`` as a genome of the predictor's space (the same arch)."""
        theirs = self.predictor.space
        if theirs.config() == self.space.config():
            return genome
        return theirs.to_genomes([theirs.parse(str(self.space.from_genome(genome)))])[0]

    def feed(self, genome: np.ndarray, measured_ms: float) -> None:
        """Teach the predictor one measured network (a genome of ``space``)."""
        self.predictor.add(self.predictor_genome(genome), measured_ms)

    def time_reference(self) -> None:
        """Round 0 (``hwnas.profile.deploy_timing.time_reference``): the device's scale, or
        one of the predictor's own networks timed now and fed back to it."""
        cfg, table = self.cfg, self.table.table
        fallback = None if table is not None else _median_sample(self.base)
        self.reading, self.reference = time_reference(
            self.space, table, fallback, cfg.target, cfg.runtime, self.tuning_dir,
            self.work / "reference", self.table.other_cpu)
        if self.reference is not None:
            self.predictor.scale = self.reading.scale
            if self.table.other_cpu is None:
                self.anchors = AnchorNetworks(self.space, table, self.predictor.scale,
                                              cfg.target, cfg.runtime, self.work / "anchors")
        elif self.reading is not None:
            arch = self.space.parse(self.reading.arch)
            self.feed(self.space.to_genomes([arch])[0], self.reading.measured_ms)

    def export(self, arch, out: Path, searched: dict | None = None) -> dict:
        """``arch`` with the supernet's weights (BN recalibrated), compiled for the target
        (with ``tune_trials``, after topping the tuning database up with its kernels) into
        the bundle ``out``; its manifest. ``searched``: the search's accuracy record of
        ``arch``, which the manifest states beside the weights' own."""
        from hwnas.compiler.database import describe_database
        from hwnas.export.bundle import BundleRequest, export_bundle
        from hwnas.export.manifest_accuracy import manifest_accuracy
        from hwnas.export.weights import subnet_with_weights

        cfg = self.cfg
        model, weights = subnet_with_weights(self.space, arch, self.supernet)
        database = self.database
        if cfg.tune_trials:
            from hwnas.compiler.top_up import top_up_database

            dest, database = top_up_database(model, self.space.input_shape(arch), cfg.target,
                                             self.tuning_dir, cfg.tune_trials, self.space)
            self.tuning_dir = str(dest)
        return export_bundle(BundleRequest(self.space, arch, model, cfg.target, out, weights,
                                           database=database,
                                           database_info=describe_database(self.tuning_dir,
                                                                             self.space),
                                           check_on=cfg.runtime,
                                           extra={"accuracy": manifest_accuracy(weights,
                                                                                searched)}))

    def measure(self, bundle: Path, manifest: dict) -> BundleLatency:
        """The bundle's latency on the device (``hwnas.profile.deploy_timing``); on this
        machine's CPU also as a program runs it, through the ``runner.py`` it ships with
        (``hwnas.runtime.as_shipped``)."""
        lat = measure_bundle(bundle / manifest["files"]["library"], manifest["input"]["shape"],
                             self.cfg.runtime, self.reference, self.anchors,
                             self.cfg.budget_ms / self.predictor.scale, self.tuning_dir)
        if not self.runs_here:
            return lat
        from hwnas.deploy.run_script import write_run_scripts
        from hwnas.runtime.as_shipped import time_as_shipped

        write_run_scripts(bundle)
        return replace(lat, shipped=time_as_shipped(bundle, threads=int(self.cfg.target.threads)))

    @property
    def runs_here(self) -> bool:
        """Whether the bundles run on this machine's CPU (not a remote or GPU device)."""
        from hwnas.runtime.tvm_local import TVMLocalRuntime

        return (isinstance(self.cfg.runtime, TVMLocalRuntime)
                and self.cfg.target.tvm_device_type == "cpu")

    def predictor_record(self) -> PredictorRecord:
        return PredictorRecord(self.base.name, self.base.selection, self.predictor.n,
                               bool(self.predictor.feeds_samples))


def open_deployment(cfg: DeployConfig) -> Deployment:
    """Load what the rounds need (refusing an emulated device first, unless allowed); a
    table that does not fit is profiled on the device."""
    from hwnas.compiler.database import load_database
    from hwnas.train.checkpoint import load_supernet

    if cfg.runtime is not None:         # before anything is profiled or compiled for it
        refuse_emulated(cfg.runtime.emulator, f"the device {cfg.runtime.address} of "
                        f"'{cfg.target.name}' is emulated", cfg.allow_emulated, DeviceError)
    if cfg.space is not None:           # a space without weights: random, said so
        from hwnas.spaces import get_space

        supernet, space = None, get_space(cfg.space)
    else:
        supernet = load_supernet(cfg.checkpoint)
        space = supernet.space
    database = load_database(cfg.tuning_dir, target=cfg.target) if cfg.tuning_dir else None
    base, table = _base_predictor(cfg, space)
    log.info("latency predictor: %s", base.selection)
    if base.space.config() != space.config():
        space = space_from_config({**space.config(), "resolutions": [
            r for r in space.resolutions if r in base.space.resolutions]})
    if not space.resolutions:
        raise SpaceError("the latency table covers none of the checkpoint's resolutions")
    return Deployment(cfg, space, supernet, table, base, feedback_for(base),
                      _objective(space, cfg.checkpoint, cfg.space is not None), database,
                      cfg.tuning_dir, cfg.out.parent / f".{cfg.out.name}.rounds")


def _objective(space, checkpoint, no_weights: bool = False) -> Objective:
    """The supernet's own accuracy predictor; a published supernet file (Once-for-All's) holds
    weights only, and a space without a checkpoint has none, so the configuration's other
    accuracy sources score the search, else the MACs proxy (said so)."""
    from hwnas._data import is_checkpoint_file

    plain = no_weights or is_checkpoint_file(checkpoint)
    return load_objective("auto" if plain else "accuracy", space, checkpoint)


def _base_predictor(cfg: DeployConfig, space):
    """(predictor, table): a few-shot predictor needs no table; the others need the target's
    table, reused or profiled (``ensure_table``), and are built on it as loaded there."""
    table_file = Path(cfg.table) if cfg.table is not None else table_path(cfg.target.name,
                                                                          space)
    fewshot = fewshot_beside(table_file)
    if cfg.predictor == "fewshot" or (cfg.predictor == "auto" and fewshot_fits(fewshot, space)
                                      and not _records(table_file, space)):
        base = load_predictor(cfg.target.name, space, cfg.predictor, table_file,
                              allow_emulated=cfg.allow_emulated)
        return base, TableRecord(None, True, fewshot=fewshot,
                                 device=base.provenance.get("device"))
    table = ensure_table(cfg.target, space, cfg.runtime, cfg.tuning_dir, cfg.profile_networks,
                         cfg.table)
    return load_predictor(cfg.target.name, space, cfg.predictor, table.path,
                          allow_emulated=cfg.allow_emulated, table=table.table), table


def _records(table_file: Path, space) -> bool:
    """Whether the table file exists and records ``space``'s configuration (one CPU's table
    may hold another configuration only, beside this one's few-shot predictor)."""
    from hwnas.profile.table import LatencyTable

    if not table_file.exists():
        return False
    try:
        return LatencyTable.load(table_file).config_index(space) is not None
    except TableError:
        return True                     # ensure_table names what is wrong with it


def _median_sample(predictor) -> dict | None:
    """A few-shot predictor's sample network of median latency (``{"arch", "median_ms"}``),
    or None for a predictor without samples."""
    samples = getattr(predictor, "samples", None)
    if samples is None:
        return None
    i = int(np.argsort(samples.latency_ms, kind="stable")[len(samples.latency_ms) // 2])
    return {"arch": str(predictor.space.from_genome(samples.genomes[i])),
            "median_ms": float(samples.latency_ms[i])}
