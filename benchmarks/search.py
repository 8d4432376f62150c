"""Search benchmark: evolution speed, quality against random, gradient strategies, two devices.

    python benchmarks/search.py [--json PATH] [--out DIR] [--grad-steps N]

Prints
* the wall time of one ``evolution`` search with 50,000 evaluations (population 100 ×
  500 generations) on ``x86-host``;
* for 5 budgets across the feasible range on ``x86-host`` and ``note10``: the predicted
  accuracy of evolution's arch against the best of 1,000 random feasible samples, and whether
  every returned arch meets every constraint;
* ``gumbel`` and ``proxyless`` at 2 budgets each: wall time, the final arch's predicted latency
  against the budget, its supernet accuracy;
* the same two strategies on their home spaces: ``gumbel`` on ``fbnet`` (this CPU's
  ``x86-host`` table of it: none is shipped, so unless the user profiled one, its operators
  are profiled here first, untuned code, into a temporary tables folder; about 105
  operators) and ``proxyless`` on ``proxyless`` (the imported Pixel 1 table);
* one arch for ``x86-host`` and ``note10`` budgets at once, with both predicted latencies.

The published Note10 and Pixel 1 tables are the user's where imported, else imported from
``../shared`` into a temporary tables folder for this run.

``--json PATH`` writes ``evolution_50k_s`` (wall), ``evolution_50k_cpu_s`` (this process's
CPU), ``beats_random_all``, ``constraints_ok`` and
``two_device_ok``. Timings are wall-clock on whatever else the machine is running.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from hwnas._io import atomic_write_json
from hwnas.profile.table import table_path
from hwnas.search import Constraints, LatencyBudget, build_problem, search, write_outputs

SPACE = "ofa-mbv3"


def problem_for(budgets: dict[str, float], objective: str = "auto"):
    cons = Constraints(tuple(LatencyBudget(t, b) for t, b in budgets.items()))
    return build_problem(SPACE, cons, objective=objective)


def feasible_range(target: str) -> tuple[float, float]:
    """(fastest reachable bound, bound of the largest arch) on ``target``."""
    p = problem_for({target: 1e9})
    lo = p.latency_lower_bound(target).value
    hi = float(p.latency(p.space.to_genomes([p.space.largest()]))[1][0, 0])
    return lo, hi


def best_random_feasible(p, n: int, seed: int) -> tuple[float, int]:
    """Best score among the first ``n`` feasible uniform samples (and how many were found)."""
    rng, scores = np.random.default_rng(seed), []
    for _ in range(400):
        ev = p.evaluate(p.space.sample_genomes(rng, 5000))
        scores.extend(ev.score[ev.feasible].tolist())
        if len(scores) >= n:
            break
    return (max(scores[:n]) if scores else float("nan")), min(len(scores), n)


def bench_speed() -> tuple[float, float]:
    lo, hi = feasible_range("x86-host")
    p = problem_for({"x86-host": lo + 0.5 * (hi - lo)})
    cpu0 = time.process_time()
    r = search("evolution", p, progress=False)
    cpu = time.process_time() - cpu0
    print(f"evolution (population 100 × 500 generations), x86-host budget "
          f"{lo + 0.5 * (hi - lo):.2f} ms: {r.n_evals} evaluations (repairs included) in "
          f"{r.wall_s:.2f} s wall, {cpu:.2f} s CPU, load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores (objective: {p.objective.note})")
    return r.wall_s, cpu


def bench_quality(targets, out: Path | None) -> tuple[bool, bool]:
    beats, ok = True, True
    print("\ntarget      budget_ms  evo_score  random_best(n)  evo_ms(bound)  constraints")
    for t in targets:
        lo, hi = feasible_range(t)
        for k, frac in enumerate((0.1, 0.3, 0.5, 0.7, 0.9)):
            budget = lo + frac * (hi - lo)
            p = problem_for({t: budget})
            r = search("evolution", p, seed=k, progress=False)
            d = p.describe(r.best)
            rnd, n = best_random_feasible(p, 1000, seed=100 + k)
            good = bool(d["feasible"]) and d["latency_bound_ms"][t] <= budget
            beats &= d["objective"]["value"] >= rnd
            ok &= good
            print(f"{t:<11} {budget:9.2f}  {d['objective']['value']:9.4f}  {rnd:9.4f} ({n:4d})  "
                  f"{d['predicted_latency_ms'][t]:6.2f} ({d['latency_bound_ms'][t]:.2f})  "
                  f"{'ok' if good else 'VIOLATED'}")
            if out is not None and frac == 0.5:
                write_outputs(out / f"evolution-{t}", p, r)
    return beats, ok


def bench_gradient(steps: int, out: Path | None) -> None:
    lo, hi = feasible_range("x86-host")
    print(f"\nstrategy   budget_ms  wall_s  arch_ms(bound)  met_by_soft_term  repairs  "
          f"supernet_acc  ({steps} steps, Fashion-MNIST)")
    for name in ("gumbel", "proxyless"):
        for frac in (0.3, 0.7):
            budget = lo + frac * (hi - lo)
            p = problem_for({"x86-host": budget})
            r = search(name, p, progress=False, steps=steps)
            d = p.describe(r.best)
            print(f"{name:<10} {budget:9.2f}  {r.wall_s:6.1f}  "
                  f"{d['predicted_latency_ms']['x86-host']:6.2f} ({d['latency_bound_ms']['x86-host']:.2f})"
                  f"  {str(r.info['soft_feasible']):<16}  {r.info['repair_changes']:7d}  "
                  f"{r.info['supernet_accuracy']:.4f}  r={r.info['resolution']}")
            if out is not None and frac == 0.3:
                write_outputs(out / f"{name}-x86-host", p, r)


def tables_folder() -> Path:
    """This process's temporary tables folder (``HWNAS_TABLES``), made on first use."""
    import tempfile

    if not os.environ.get("HWNAS_BENCH_TABLES"):
        os.environ["HWNAS_BENCH_TABLES"] = tempfile.mkdtemp(prefix="hwnas-bench-search-")
        os.environ["HWNAS_TABLES"] = os.environ["HWNAS_BENCH_TABLES"]
    return Path(os.environ["HWNAS_BENCH_TABLES"])


def published_tables() -> list[str]:
    """The published Note10 and Pixel 1 tables the benchmark prices with: the user's where
    imported, else imported now from ``../shared`` into the temporary tables folder."""
    from hwnas.predict.external import external_dir
    from hwnas.profile.importers import import_table

    said = []
    for target, space, src in (("note10", "ofa-mbv3", "ofa_note10_lut"),
                               ("pixel1", "proxyless", "proxylessnas_lut/mobile_trim.yaml")):
        if table_path(target, space).exists():
            said.append(f"{target} {space} table: {table_path(target, space)}")
            continue
        source = external_dir() / src
        if not source.exists():
            raise SystemExit(f"published table not found: {source}")
        folder = tables_folder()
        import_table(source, target, space).save(folder / target / f"{space}.json")
        said.append(f"{target} {space} table: imported now from {source} into {folder}")
    return said


def fbnet_table() -> str:
    """This CPU's ``x86-host`` table of ``fbnet``: the user's if there is one, else its
    operators profiled now (untuned code, no whole networks) into a temporary tables folder
    that ``HWNAS_TABLES`` names for this process; says which."""
    from hwnas.profile.profiler import ProfileOptions, profile
    from hwnas.runtime import connect
    from hwnas.spaces import get_space
    from hwnas.targets import load_target

    if table_path("x86-host", "fbnet").exists():
        return f"table {table_path('x86-host', 'fbnet')}"
    tables_folder()
    path = table_path("x86-host", "fbnet", for_writing=True)
    target = load_target("x86-host")
    t0 = time.perf_counter()
    with connect(target) as rt:
        rep = profile(get_space("fbnet"), target, rt, path, ProfileOptions(networks=0))
    return (f"profiled here: {rep.n_ops} operators of untuned code on {target.mcpu} in "
            f"{time.perf_counter() - t0:.0f} s")


def bench_home_spaces(steps: int, out: Path | None) -> dict:
    """The gradient strategies on their home spaces (fresh mixed-op supernets); the figures of
    each (``home_<strategy>_...``)."""
    figures = {}
    print(f"\nx86-host fbnet table: {fbnet_table()}")
    runs = (("gumbel", "fbnet", "x86-host"), ("proxyless", "proxyless", "pixel1"))
    print(f"\nhome spaces ({steps} steps, fresh weights, Fashion-MNIST at 32×32)")
    for name, space, target in runs:
        cons = Constraints((LatencyBudget(target, 1e9),))
        p0 = build_problem(space, cons, objective="mflops")
        lo = p0.latency_lower_bound(target).value
        hi = float(p0.latency(p0.space.to_genomes([p0.space.largest()]))[1][0, 0])
        budget = lo + 0.5 * (hi - lo)
        p = build_problem(space, Constraints((LatencyBudget(target, budget),)), objective="mflops")
        # each architecture step runs every candidate of every layer: gumbel on fbnet took
        # about 8 s a step on 2 znver4 cores, so say what runs before it does
        print(f"{name} on {space}: {steps} steps...", flush=True)
        r = search(name, p, progress=False, steps=steps)
        d = p.describe(r.best)
        print(f"{name:<10} {space:<9} {target:<8} budget {budget:8.2f} ms  wall {r.wall_s:6.1f} s  "
              f"arch {d['predicted_latency_ms'][target]:.2f} ms (bound "
              f"{d['latency_bound_ms'][target]:.2f})  soft term met it: {r.info['soft_feasible']}  "
              f"supernet acc {r.info['supernet_accuracy']:.4f}")
        figures.update({f"home_{name}_wall_s": round(r.wall_s, 1),
                        f"home_{name}_budget_ms": round(budget, 3),
                        f"home_{name}_arch_ms": round(d["predicted_latency_ms"][target], 3),
                        f"home_{name}_soft_feasible": bool(r.info["soft_feasible"]),
                        f"home_{name}_supernet_acc": round(r.info["supernet_accuracy"], 4)})
        if out is not None:
            write_outputs(out / f"{name}-{space}-{target}", p, r)
    return figures


def bench_two_device(out: Path | None) -> bool:
    budgets = {}
    for t in ("x86-host", "note10"):
        lo, hi = feasible_range(t)
        budgets[t] = lo + 0.4 * (hi - lo)
    p = problem_for(budgets)
    r = search("evolution", p, progress=False)
    d = p.describe(r.best)
    ok = d["feasible"] and all(d["latency_bound_ms"][t] <= b for t, b in budgets.items())
    print("\ntwo devices at once: " + ", ".join(
        f"{t} {d['predicted_latency_ms'][t]:.2f} ms (bound {d['latency_bound_ms'][t]:.2f} ≤ {b:.2f})"
        for t, b in budgets.items()) + f"  → {d['arch']}  score {d['objective']['value']:.4f}  "
        f"{'ok' if ok else 'VIOLATED'}")
    if out is not None:
        write_outputs(out / "two-device", p, r)
    return bool(ok)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", help="write the headline figures here")
    ap.add_argument("--out", help="also write search outputs (arch.json, pareto.png, ...) here")
    ap.add_argument("--grad-steps", type=int, default=200, help="steps of gumbel/proxyless")
    ap.add_argument("--skip-gradient", action="store_true", help="same as --parts speed,quality,two")
    ap.add_argument("--parts", default="speed,quality,gradient,home,two",
                    help="comma-separated subset of: speed, quality, gradient, home, two")
    args = ap.parse_args(argv)
    parts = set(args.parts.split(","))
    if args.skip_gradient:
        parts -= {"gradient", "home"}
    out = Path(args.out) if args.out else None
    for line in published_tables():
        print(line)
    t0 = time.perf_counter()
    res = {}
    if "speed" in parts:
        wall, cpu = bench_speed()
        res["evolution_50k_s"], res["evolution_50k_cpu_s"] = round(wall, 3), round(cpu, 3)
    if "quality" in parts:
        res["beats_random_all"], res["constraints_ok"] = bench_quality(("x86-host", "note10"), out)
    if "gradient" in parts:
        bench_gradient(args.grad_steps, out)
    if "home" in parts:
        res.update(bench_home_spaces(args.grad_steps, out))
    if "two" in parts:
        res["two_device_ok"] = bench_two_device(out)
    print(f"\n{json.dumps(res)}   (benchmark wall {time.perf_counter() - t0:.0f} s)")
    if args.json:
        atomic_write_json(args.json, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
