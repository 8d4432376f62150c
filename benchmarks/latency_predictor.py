"""Latency predictors against measurements they never saw.

1. Host, TVM-compiled: held-out random ofa-mbv3 subnets measured end to end on this machine
   (``latency_tables/<target>/<space>.holdout.json``; ``--measure`` measures the missing ones,
   resumably), scored for the ``table`` and ``calibrated`` predictors.
2. Real devices, published data: ``fewshot`` with k = 10, 20, 50 samples of an unseen device,
   NAS-Bench-201 and FBNet, Spearman over all the device's other archs, mean over seeds.
   Sources are all the file's other columns (HELP's protocol excludes only the target); a
   second line excludes the same device at other batch sizes too. Against it, the lines anyone
   can fit on the same k samples (latency = a·MACs + b, a·depth + b, a·params + b, least
   squares): ``fewshot_beats_baselines`` is true when, for every device and k = 10 and 20,
   the few-shot predictor is at least the best line on Spearman and on the share within ±10%.
3. This machine as a new device: ``hwnas adapt --target x86-host --measure 10`` run end to end
   (choosing, compiling with the target's tuning database and timing the 10 networks
   included; the sources are the other targets' ofa-mbv3 tables, the published Note10 table
   imported first), scored on the host's held-out networks in their space configuration.
4. Time to fit each predictor and to predict 10,000 archs.

Usage: python benchmarks/latency_predictor.py [--json out.json] [--measure] [--seeds 10]
"""
from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import median, parser, time_ms, write_json  # noqa: E402

from hwnas.predict import (CalibratedPredictor, FewShotPredictor, SourceFactors,  # noqa: E402
                           TablePredictor, split_target)
from hwnas.predict.external import load_external, same_device  # noqa: E402
from hwnas.profile.holdout import Holdout, holdout_path, measure_holdout  # noqa: E402
from hwnas.errors import TableError  # noqa: E402
from hwnas.profile.table import LatencyTable, table_path  # noqa: E402
from hwnas.spaces import get_space, space_from_config  # noqa: E402

NB201_DEVICES = ("titan_rtx_1", "gold_6226", "pixel2", "raspi4", "eyeriss", "fpga")
FBNET_DEVICES = ("fpga", "raspi4", "eyeriss")          # HELP's unseen FBNet devices
FBNET_EXTRA = ("titan_rtx_1", "gold_6226", "pixel2")   # the NB201 set's others, for comparison
KS = (10, 20, 50)
BASELINE_KS = (10, 20)                                 # where the few-shot must beat the lines
LINES = ("macs", "depth", "params")
HOLDOUT_SEED = 2026                                    # the profiler samples its networks with 0


def scores(pred: np.ndarray, meas: np.ndarray) -> dict:
    err = np.abs(pred / meas - 1)
    return {"within10": float(np.mean(err <= 0.10)), "within5": float(np.mean(err <= 0.05)),
            "rmse_ms": float(np.sqrt(np.mean((pred - meas) ** 2))),
            "spearman": float(spearmanr(pred, meas)[0]), "mape": float(100 * err.mean())}


# ---------------------------------------------------------------------------- part 1
def host_part(args, figures: dict, timings: list) -> None:
    tpath = table_path(args.target, args.space)
    print(f"\n## 1. Host, TVM-compiled: {args.target}/{args.space}")
    if not tpath.exists():
        print(f"skipped: no latency table at {tpath} (run `hwnas profile --target {args.target}`)")
        return
    table = LatencyTable.load(tpath)
    space = space_from_config(table.meta["spaces"][0])
    hpath = holdout_path(tpath)
    if args.measure:
        from hwnas.compiler.database import database_dir
        from hwnas.runtime import connect
        from hwnas.targets import load_target

        target = load_target(args.target)
        db = database_dir(target)                 # as the table's networks were compiled
        try:
            with connect(target) as rt:
                measure_holdout(space, target, rt, hpath, args.holdout, HOLDOUT_SEED, args.max_new,
                                rounds=args.rounds, table=table,
                                tuning_dir=None if db is None else str(db), retest=args.retest,
                                retake_unstable=args.retake_unstable,
                                retake_loaded=args.retake_loaded)
        except KeyboardInterrupt:        # every finished network is on disk: score those
            print("measuring interrupted; scoring the held-out networks measured so far")
    if not hpath.exists():
        print(f"skipped: no held-out networks at {hpath} (run with --measure)")
        return
    hold = Holdout.load(hpath)
    calib = {rec["arch"] for rec in table.meta.get("networks", [])}
    keep = [i for i, a in enumerate(hold.archs()) if a not in calib]
    archs = [hold.archs()[i] for i in keep]
    meas = hold.measured_ms()[keep]
    g = space.to_genomes([space.parse(a) for a in archs])
    t0 = time.perf_counter()
    table_pred = TablePredictor(space, table)
    t_table = time.perf_counter() - t0
    t0 = time.perf_counter()
    try:
        cal = CalibratedPredictor.fit(space, table)
    except TableError as exc:
        print(f"calibrated predictor not fitted: {exc}")
        cal = None
    t_cal = time.perf_counter() - t0
    loads = [n.get("load_avg_1m") for n in hold.networks if n.get("load_avg_1m") is not None]
    n_cal = cal.provenance["n_networks"] if cal else 0
    print(f"{len(archs)} held-out networks of {args.holdout} requested (none used in fitting); "
          f"calibrated on the table's {n_cal} measured networks; 1-min load average while "
          f"measuring: " + (f"{min(loads):.1f}..{max(loads):.1f}" if loads else "not recorded"))
    preds = {"table": table_pred, **({"calibrated": cal} if cal else {})}
    cv = np.array([hold.networks[i]["std_ms"] / hold.networks[i]["median_ms"] for i in keep])
    print(f"{'predictor':<12} {'networks':<16} {'±10%':>7} {'±5%':>7} {'RMSE ms':>9} "
          f"{'Spearman':>9} {'MAPE %':>7}")
    for name, pred in preds.items():
        p = pred.predict_genomes(g)
        for label, sel in (("all", np.ones(len(g), bool)), ("steady (cv≤5%)", cv <= 0.05)):
            if sel.sum() < 3:
                continue
            s = scores(p[sel], meas[sel])
            print(f"{name:<12} {label + ' ' + str(int(sel.sum())):<16} {s['within10']:>7.1%} "
                  f"{s['within5']:>7.1%} {s['rmse_ms']:>9.2f} {s['spearman']:>9.3f} {s['mape']:>7.2f}")
            if label == "all":
                figures[f"host_{name}_within10"] = s["within10"]
    _drift_lines(hold, space, cal, keep, figures)
    if cal:
        cover = float(np.mean(meas <= cal.predict_upper_genomes(g, 0.9)))
        print(f"calibrated p90 upper bound covers {cover:.1%} of held-out networks")
        cv = cal.provenance["cv_mean_abs_log_error"]
        print(f"calibrated feature set '{cal.model['feature_set']}'; cross-validated mean |log "
              f"error| on its own networks: " + ", ".join(f"{k} {v:.3f}" for k, v in cv.items()))
    figures["host_n_heldout"] = len(archs)
    big = space.sample_genomes(np.random.default_rng(0), 10_000)
    fit_ms = {"table": 1e3 * t_table, "calibrated": 1e3 * t_cal}
    for name, pred in preds.items():
        timings.append((name, args.space, fit_ms[name],
                        time_ms(lambda pred=pred: pred.predict_genomes(big), 1, 5)))


def _drift_lines(hold: Holdout, space, cal, keep: list[int], figures: dict) -> None:
    """How much of the error is the device's speed drifting, not the predictor.

    Every held-out network is timed interleaved with the table's reference network (A/B,
    ``hwnas.runtime.reference``): its record holds the drift-corrected latency (ratio to the
    reference × the reference's quiet time, what the predictor is scored on above), the raw
    one and the device's load. The calibrated predictor is scored here against both; networks
    timed twice, in different runs, show how often two measurements of one network agree.
    """
    ref = hold.meta.get("reference")
    retests = hold.meta.get("retests", [])
    nets = [hold.networks[i] for i in keep if "raw_ms" in hold.networks[i]]
    if cal and ref and nets:
        g = space.to_genomes([space.parse(n["arch"]) for n in nets])
        p = cal.predict_genomes(g)
        corr = scores(p, np.array([n["median_ms"] for n in nets]))
        raw = scores(p, np.array([n["raw_ms"] for n in nets]))
        loads = np.array([n["load"] for n in nets if n.get("load") is not None])
        print(f"reference network {ref['arch']} (quiet {ref['quiet_ms']:.3f} ms): {len(nets)} "
              f"networks timed beside it, device load x{np.median(loads):.2f} median "
              f"(x{loads.min():.2f}..x{loads.max():.2f}); calibrated ±10%: drift-corrected "
              f"{corr['within10']:.1%}, raw {raw['within10']:.1%} (MAPE {corr['mape']:.2f}% "
              f"against {raw['mape']:.2f}%)")
        figures["host_calibrated_raw_within10"] = raw["within10"]
        figures["host_load_median"] = float(np.median(loads))
    if retests:
        r = np.array([t["median_ms"] / t["first_ms"] for t in retests])
        print(f"re-timed {len(r)} networks in a later run: second/first median {np.median(r):.3f}, "
              f"within ±10% of the first {np.mean(np.abs(r - 1) <= 0.10):.1%}, within ±5% "
              f"{np.mean(np.abs(r - 1) <= 0.05):.1%}")
    retaken = hold.meta.get("retaken", [])
    if retaken:
        kept = sum(r.get("kept") == "retake" for r in retaken)
        print(f"{len(retaken)} networks flagged unstable or loaded were timed again: the retake "
              f"was kept for {kept} (now their record), the first timing for "
              f"{len(retaken) - kept}")
        figures["host_holdout_retaken"] = len(retaken)


# ---------------------------------------------------------------------------- part 2
def line_fit(x_train: np.ndarray, y_train: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Least-squares line latency = a·x + b on the training archs, evaluated at ``x``."""
    a = np.c_[np.ones(len(x_train)), x_train]
    coef, *_ = np.linalg.lstsq(a, y_train, rcond=None)
    return coef[0] + coef[1] * x


def line_features(space, genomes: np.ndarray) -> dict[str, np.ndarray]:
    return {"macs": space.flops_genomes(genomes), "depth": space.depth_genomes(genomes) * 1.0,
            "params": space.params_genomes(genomes)}


def fewshot_device(space, matrix, device: str, seeds: int, exclude=(),
                   baselines: bool = False) -> dict:
    """Spearman and within-10% per k, mean over seeds; plus fit timings. With ``baselines``,
    the one-feature lines on the same samples too (k in ``BASELINE_KS``)."""
    t0 = time.perf_counter()
    factors = SourceFactors(space, matrix.without([device, *exclude]))
    t_src = time.perf_counter() - t0
    feats = line_features(space, matrix.genomes) if baselines else {}
    out, lines, t_adapt, cover, costs = {}, {}, [], [], None
    for k in KS:
        rho, w10, line_scores = [], [], {n: [] for n in feats}
        for seed in range(seeds):
            src, samples, test = split_target(matrix, device, k, seed, exclude)
            assert device not in src.devices
            t0 = time.perf_counter()
            pred = FewShotPredictor(space, factors, samples, costs=costs)
            t_adapt.append(time.perf_counter() - t0)
            costs = pred.costs
            p, y = pred.predict_genomes(matrix.genomes[test]), matrix.column(device)[test]
            rho.append(spearmanr(p, y)[0])
            w10.append(np.mean(np.abs(p / y - 1) <= 0.10))
            if k == KS[0]:
                cover.append(np.mean(y <= pred.predict_upper_genomes(matrix.genomes[test], 0.9)))
            if k in BASELINE_KS:
                train = np.setdiff1d(np.arange(len(matrix.genomes)), test)
                for name, f in feats.items():
                    q = line_fit(f[train], matrix.column(device)[train], f[test])
                    line_scores[name].append((spearmanr(q, y)[0],
                                              np.mean(np.abs(q / y - 1) <= 0.10)))
        out[k] = (float(np.mean(rho)), float(np.std(rho)), float(np.mean(w10)))
        if k in BASELINE_KS and feats:
            lines[k] = {n: tuple(float(v) for v in np.mean(sc, 0))
                        for n, sc in line_scores.items()}
    return {"by_k": out, "lines": lines, "p90_cover": float(np.mean(cover)),
            "source_fit_s": t_src, "adapt_s": float(np.median(t_adapt)),
            "predictor": pred}


def fewshot_part(args, figures: dict, timings: list) -> None:
    for space_name, devices, extra, help_mean in (("nb201", NB201_DEVICES, (), 0.932),
                                                  ("fbnet", FBNET_DEVICES, FBNET_EXTRA, 0.910)):
        space, matrix = get_space(space_name), load_external(space_name)
        print(f"\n## 2. fewshot on {space_name}: {len(matrix.genomes)} archs × "
              f"{len(matrix.devices)} settings; unseen device held out, {args.seeds} seeds")
        head = " ".join(f"{'ρ k=' + str(k):>13}" for k in KS)
        print(f"{'device':<14} {head}  " + " ".join(f"{'±10% k=' + str(k):>10}" for k in KS)
              + f"  {'p90 cover k=' + str(KS[0]):>16}")
        rows = {}
        for dev in devices + extra:
            r = fewshot_device(space, matrix, dev, args.seeds, baselines=True)
            rows[dev] = r
            rho = " ".join(f"{m:>7.3f}±{s:.3f}" for m, s, _ in r["by_k"].values())
            w = " ".join(f"{w:>10.1%}" for *_, w in r["by_k"].values())
            print(f"{dev:<14} {rho}  {w}  {r['p90_cover']:>16.1%}")
        for label, devs in (("mean", devices), ("mean of six", devices + extra) if extra else (None, ())):
            if not label:
                continue
            m = [np.mean([rows[d]["by_k"][k][0] for d in devs]) for k in KS]
            w = [np.mean([rows[d]["by_k"][k][2] for d in devs]) for k in KS]
            print(f"{label:<14} " + " ".join(f"{v:>13.3f}" for v in m) + "  "
                  + " ".join(f"{v:>10.1%}" for v in w))
        mean10 = float(np.mean([rows[d]["by_k"][10][0] for d in devices]))
        figures[f"{space_name}_fewshot10_spearman_mean"] = mean10
        print(f"HELP, k=10, same devices: {help_mean:.3f}; here {mean10:.3f} "
              f"({'above' if mean10 > help_mean else 'NOT above'})")
        _strict_line(space, matrix, devices, args.seeds, rows)
        _baseline_table(space_name, rows, figures)
        first = rows[devices[0]]
        big = space.sample_genomes(np.random.default_rng(0), 10_000)
        timings.append(("fewshot", space_name, 1e3 * (first["source_fit_s"] + first["adapt_s"]),
                        time_ms(lambda: first["predictor"].predict_genomes(big), 1, 5)))


def _baseline_table(space_name: str, rows: dict, figures: dict) -> None:
    """Few-shot against the best one-feature line, per device and k; updates
    ``fewshot_beats_baselines`` (true only when it is at least the best line everywhere)."""
    print(f"few-shot against the best line on the same k samples ({space_name}; ρ and ±10%, "
          f"mean over seeds; best of {', '.join(LINES)} lines, each metric on its own)")
    print(f"{'device':<14} {'k':>3} {'few-shot ρ':>11} {'best line ρ':>15} {'few-shot ±10%':>14} "
          f"{'best line ±10%':>18}  verdict")
    beats = figures.get("fewshot_beats_baselines")
    beats = True if beats is None else beats
    for dev, r in rows.items():
        for k in BASELINE_KS:
            rho, _, w10 = r["by_k"][k]
            lines = r["lines"][k]
            best_rho = max(lines, key=lambda n: lines[n][0])
            best_w = max(lines, key=lambda n: lines[n][1])
            ok = rho >= lines[best_rho][0] and w10 >= lines[best_w][1]
            beats = beats and ok
            print(f"{dev:<14} {k:>3} {rho:>11.4f} {lines[best_rho][0]:>8.4f} ({best_rho:<6}) "
                  f"{w10:>13.1%} {lines[best_w][1]:>10.1%} ({best_w:<6})  "
                  f"{'≥ best line' if ok else 'LOSES'}")
    figures["fewshot_beats_baselines"] = bool(beats)


def _strict_line(space, matrix, devices, seeds: int, rows: dict) -> None:
    """k=10 again with the same device's other batch-size columns dropped from the sources."""
    vals = []
    for dev in devices:
        siblings = [d for d in matrix.devices if d != dev and same_device(d, dev)]
        vals.append(fewshot_device(space, matrix, dev, seeds, siblings)["by_k"][10][0]
                    if siblings else rows[dev]["by_k"][10][0])
    print(f"k=10 without the device's other batch sizes among the sources: mean ρ "
          f"{np.mean(vals):.3f} (" + ", ".join(f"{d} {v:.3f}" for d, v in zip(devices, vals)) + ")")


# ---------------------------------------------------------------------------- part 3
def _space_args(cfg: dict) -> list[str]:
    out = ["--space", cfg["name"]]
    for key, flag in (("resolutions", "--resolutions"), ("num_classes", "--num-classes"),
                      ("in_chans", "--in-chans"), ("width_mult", "--width-mult")):
        if key in cfg:
            v = cfg[key]
            out += [flag, ",".join(map(str, v)) if isinstance(v, list) else str(v)]
    return out


def _import_published(env: dict, tables: Path) -> None:
    """The published Note10 table as target ``note10`` (read in place, written under
    ``tables``), unless a data folder already has one."""
    import subprocess

    from hwnas.predict.external import external_dir
    from hwnas.profile.table import targets_with_table

    lut = external_dir() / "ofa_note10_lut"
    if "note10" in targets_with_table("ofa-mbv3") or not lut.is_dir():
        return
    r = subprocess.run([sys.executable, "-m", "hwnas", "import-table", "--source", str(lut),
                        "--target", "note10", "--out", str(tables / "note10" / "ofa-mbv3.json")],
                       env=env, capture_output=True, text=True)
    print(r.stdout.strip() if r.returncode == 0 else f"note10 not imported: {r.stderr.strip()}")


def new_device_part(args, figures: dict) -> None:
    """This machine as a new device: ``hwnas adapt --measure K`` end to end (in a fresh
    process, writing into a temporary tables folder), scored on the held-out networks."""
    import os
    import subprocess
    import tempfile

    hpath = holdout_path(table_path(args.target, args.space))
    print(f"\n## 3. {args.target} as a new device: hwnas adapt --measure {args.new_device_k}, "
          f"scored on {hpath.name}")
    if not hpath.exists():
        print(f"skipped: no held-out networks at {hpath}")
        return
    hold = Holdout.load(hpath)
    space = space_from_config(hold.meta["space"])
    with tempfile.TemporaryDirectory(prefix="hwnas-bench-adapt-") as tmp:
        env = {**os.environ, "HWNAS_TABLES": tmp}
        _import_published(env, Path(tmp))
        cmd = [sys.executable, "-m", "hwnas", "adapt", "--target", args.target,
               *_space_args(hold.meta["space"]), "--measure", str(args.new_device_k)]
        print("$ " + " ".join(cmd[1:]))
        t0 = time.perf_counter()
        r = subprocess.run(cmd, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        print(r.stdout.rstrip())
        if r.returncode != 0:
            print(f"adapt failed ({r.returncode}): {r.stderr.strip().splitlines()[-1:]}")
            return
        pred = FewShotPredictor.load(Path(tmp) / args.target / f"{space.name}.fewshot.json",
                                     space)
    seen = {str(space.from_genome(g)) for g in pred.samples.genomes}
    keep = [i for i, a in enumerate(hold.archs()) if a not in seen]
    g = space.to_genomes([space.parse(hold.archs()[i]) for i in keep])
    # Both sets are drift-corrected: ratio to the reference network x the reference's quiet
    # time, which each run estimates when it starts (the held-out set's is its table's). On
    # this shared host that estimate moves by 10-30% between sessions, with the device's own
    # speed, so the held-out set is scored in the samples' units (the same reference network
    # at the samples' quiet time); the figures in the table's units are kept beside them.
    hold_quiet = (hold.meta.get("reference") or {}).get("quiet_ms")
    samp_quiet = (pred.provenance.get("reference") or {}).get("quiet_ms")
    unit = samp_quiet / hold_quiet if hold_quiet and samp_quiet else 1.0
    meas_table_units = hold.measured_ms()[keep]
    meas = meas_table_units * unit
    s = scores(pred.predict_genomes(g), meas)
    s_table = scores(pred.predict_genomes(g), meas_table_units)
    print(f"reference quiet time: {samp_quiet} ms when the samples were taken, {hold_quiet} ms "
          f"when the held-out set was (its table's): held-out scored x{unit:.3f}")
    print(f"{len(keep)} held-out networks ({hold.meta.get('measurement', 'measured')}), "
          f"adapt wall {wall:.1f} s including measurement")
    print(f"held-out networks measured on: {hold.meta.get('device', '?')}\n"
          f"the {len(pred.samples.genomes)} samples measured on: "
          f"{pred.provenance.get('device', '?')}")
    print(f"{'predictor':<24} {'±10%':>7} {'±5%':>7} {'Spearman':>9} {'MAPE %':>7}")
    print(f"{'fewshot k=' + str(args.new_device_k):<24} {s['within10']:>7.1%} {s['within5']:>7.1%} "
          f"{s['spearman']:>9.3f} {s['mape']:>7.2f}")
    ks, ky = pred.samples.genomes, pred.samples.latency_ms
    held = line_features(space, g)
    for name, f in line_features(space, ks).items():
        q = line_fit(f, ky, held[name])
        b = scores(np.maximum(q, 1e-6), meas)
        print(f"{name + ' line, same samples':<24} {b['within10']:>7.1%} {b['within5']:>7.1%} "
              f"{b['spearman']:>9.3f} {b['mape']:>7.2f}")
    _drift_note(args, space, pred)
    print(f"{'(held-out in its table units)':<24} {s_table['within10']:>7.1%} "
          f"{s_table['within5']:>7.1%} {s_table['spearman']:>9.3f} {s_table['mape']:>7.2f}")
    figures.update({"host_new_device_k10_spearman": s["spearman"],
                    "host_new_device_k10_within10": s["within10"],
                    "host_new_device_k10_within10_table_units": s_table["within10"],
                    "host_new_device_unit": round(unit, 4),
                    "host_new_device_adapt_s": round(wall, 1)})


def _drift_note(args, space, pred) -> None:
    """How the samples measured now compare with the host's own calibrated predictor (fitted
    on networks measured when its table was): a speed drift shows in every prediction."""
    tpath = table_path(args.target, args.space)
    if not tpath.exists():
        return
    try:
        table = LatencyTable.load(tpath)
        cal = CalibratedPredictor.fit(space, table)
    except TableError as exc:
        print(f"(no drift check: {exc})")
        return
    ratio = pred.samples.latency_ms / cal.predict_genomes(pred.samples.genomes)
    print(f"the {len(ratio)} samples measured now over the host's calibrated predictor (its "
          f"table's time): median {np.median(ratio):.3f}, range {ratio.min():.3f}..{ratio.max():.3f}")


# ---------------------------------------------------------------------------- part 4
def timing_part(timings: list, figures: dict) -> None:
    print("\n## 4. Cost (this shared 2-core machine; timings are noisy)")
    print(f"{'predictor':<12} {'space':<9} {'fit ms':>10} {'predict 10k ms':>15}")
    for name, space, fit_ms, pred_ms in timings:
        print(f"{name:<12} {space:<9} {fit_ms:>10.1f} {median(pred_ms):>15.2f}")
    if timings:
        figures["predict_10k_ms"] = max(median(p) for *_, p in timings)


def main() -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--target", default="x86-host")
    p.add_argument("--space", default="ofa-mbv3")
    p.add_argument("--holdout", type=int, default=200, help="held-out networks to score on")
    p.add_argument("--max-new", type=int, help="measure at most this many missing ones now")
    p.add_argument("--measure", action="store_true",
                   help="first measure the missing held-out networks here (resumable; about a "
                        "minute each on an idle 2-core host, Ctrl-C scores what is done)")
    p.add_argument("--rounds", type=int, default=5,
                   help="interleaved timing rounds per held-out network (default %(default)s)")
    p.add_argument("--retest", type=int, default=0,
                   help="with --measure, also re-time this many networks measured in an earlier "
                        "run, to see how well a measurement repeats")
    p.add_argument("--retake-unstable", type=int, default=0, metavar="N",
                   help="with --measure, time again N held-out networks the stability gate "
                        "flagged unstable, keeping the steadier of the two timings")
    p.add_argument("--retake-loaded", type=int, default=0, metavar="N",
                   help="with --measure, time again N held-out networks timed while the "
                        "reference ran over LOAD_LIMIT times its quiet time, keeping an "
                        "unloaded timing before a loaded one")
    p.add_argument("--seeds", type=int, default=10, help="few-shot seeds per device and k")
    p.add_argument("--new-device-k", type=int, default=10,
                   help="networks hwnas adapt measures for the host as a new device")
    p.add_argument("--skip-host", action="store_true")
    p.add_argument("--skip-fewshot", action="store_true")
    p.add_argument("--skip-new-device", action="store_true")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    figures = {"host_table_within10": None, "host_calibrated_within10": None,
               "nb201_fewshot10_spearman_mean": None, "fbnet_fewshot10_spearman_mean": None,
               "fewshot_beats_baselines": None, "host_new_device_k10_spearman": None,
               "host_new_device_k10_within10": None, "host_new_device_adapt_s": None,
               "predict_10k_ms": None}
    timings: list = []
    if not args.skip_host:
        host_part(args, figures, timings)
    if not args.skip_fewshot:
        fewshot_part(args, figures, timings)
    if not args.skip_new_device:
        new_device_part(args, figures)
    timing_part(timings, figures)
    write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
