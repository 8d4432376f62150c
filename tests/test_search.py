"""Search: constraints, feasibility, lower bounds, strategies and the ``hwnas search`` verb.

Latency tables here are small synthetic ones written to a temporary ``HWNAS_TABLES`` folder
(op latency proportional to its MACs, a different slope per target); they stand in for
profiled tables so that the tests need no device.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from hwnas.cli import main
from hwnas.errors import BudgetError
from hwnas.profile.table import LatencyTable
from hwnas.runtime.latency import Latency
from hwnas.search import (STRATEGIES, Constraints, LatencyBudget, build_problem,
                          parse_latency_spec, search)
from hwnas.search.layers import layer_view
from hwnas.spaces import get_space


def _write_table(root, target: str, space, slope: float, skew: float = 0.0) -> None:
    """A synthetic table: ms = slope × MACs (+ ``skew`` × kernel, to make targets disagree)."""
    macs = space.cost_vectors()["macs"]
    t = LatencyTable({"target": target, "space": space.name, "spaces": [space.config()]})
    for i, op in enumerate(space.op_list):
        ms = slope * macs[i] * 1e-6 + 0.005 + skew * (7 - op.attr("kernel", 7))
        t.add(op.key, Latency(ms, ms * 1.1, ms * 0.05, 10))
    t.save(root / target / f"{space.name}.json")


@pytest.fixture()
def tables(tmp_path, monkeypatch):
    monkeypatch.setenv("HWNAS_TABLES", str(tmp_path / "tables"))
    _write_table(tmp_path / "tables", "fast", get_space("ofa-mbv3", resolutions=[128, 160, 192]), 0.02)
    _write_table(tmp_path / "tables", "slow",
                 get_space("ofa-mbv3", width_mult=1.2, resolutions=list(range(160, 225, 4))), 0.1)
    _write_table(tmp_path / "tables", "odd", get_space("ofa-mbv3", resolutions=[128, 160, 192]),
                 0.02, skew=0.3)
    return tmp_path


def _problem(spec: str, **kw):
    return build_problem("ofa-mbv3", Constraints(parse_latency_spec(spec, "fast"), **kw),
                         objective="mflops")


def test_parse_latency_spec():
    assert parse_latency_spec("25", "rpi4") == (LatencyBudget("rpi4", 25.0),)
    assert parse_latency_spec("a=1.5, b=40") == (LatencyBudget("a", 1.5), LatencyBudget("b", 40.0))
    for bad in ("", "x", "a=-1", "=3", "a=1,,b=2"):
        with pytest.raises(BudgetError):
            parse_latency_spec(bad, "t")
    with pytest.raises(BudgetError, match="names no target"):
        parse_latency_spec("25")
    with pytest.raises(BudgetError, match="twice"):
        Constraints(parse_latency_spec("a=1,a=2"))


def test_layer_view_round_trips_and_lower_bound_is_exact(tables):
    p = _problem("100")
    space = p.space
    rng = np.random.default_rng(0)
    view = layer_view(space, 1)
    for _ in range(20):
        choice = [int(rng.integers(len(c))) for c in view.candidates]
        g = view.genome(choice)
        ids = set(space.op_indices(g[None])[0]) - {space.null_op}
        picked = set(view.prefix + view.suffix) | {c[i] for c, i in zip(view.candidates, choice)}
        # a skip ends its stage, so the genome holds a subset of the picked ops
        assert ids <= picked and set(view.prefix + view.suffix) <= ids
    lb = p.latency_lower_bound("fast")
    assert lb.exact and lb.arch == str(space.smallest())       # MAC-monotone table
    _, bound = p.latency(space.sample_genomes(rng, 20000))
    assert bound.min() >= lb.value - 1e-9
    assert abs(p.latency(space.to_genomes([space.parse(lb.arch)]))[1][0, 0] - lb.value) < 1e-9


def test_skewed_table_lower_bound_beats_smallest_arch(tables):
    p = _problem("odd=100")
    lb = p.latency_lower_bound("odd")
    smallest = p.latency(p.space.to_genomes([p.space.smallest()]))[1][0, 0]
    assert lb.value < smallest and "7" in lb.arch.split("-")[1]


def test_infeasible_budget_is_refused_at_once(tables):
    p = _problem("0.5")
    with pytest.raises(BudgetError, match=r"0\.5 ms on fast is below the fastest this space "
                                          r"reaches: [0-9.]+ ms \(r128-k33"):
        search("evolution", p, generations=2)
    assert p.n_evals == 0
    with pytest.raises(BudgetError, match="max-params 1000 is below"):
        _problem("100", max_params=1000).check_feasible()


def test_cli_infeasible_budget_writes_nothing(tables, capsys):
    out = tables / "out"
    rc = main(["search", "--target", "fast", "--latency-ms", "0.5", "--objective", "mflops",
               "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(err) == 1 and "fastest this space reaches" in err[0]
    assert not out.exists()


_SMALL = {"evolution": {"generations": 30}, "evolution-ofa": {"generations": 20},
          "knapsack": {"seed_generations": 5, "starts": 2}, "random": {"evaluations": 3000}}
_GRAD = {"steps": 3, "dataset": "digits", "batch_size": 16, "arch_batch_size": 8,
         "train_resolution": 32, "eval_images": 64, "samples": 50}


@pytest.mark.parametrize("name", [n if n in _SMALL else pytest.param(n, marks=pytest.mark.slow)
                                  for n in STRATEGIES.names()])
def test_every_strategy_returns_a_feasible_arch(tables, name):
    p = _problem("fast=4,slow=60", max_mflops=150, max_act_kb=2000)
    r = search(name, p, progress=False, **_SMALL.get(name, _GRAD))
    ev = p.evaluate(r.best[None])
    assert ev.feasible[0] and (ev.bound_ms[:, 0] <= [4, 60]).all()
    d = p.describe(r.best)
    assert d["mflops"] <= 150 and d["peak_act_kb"] <= 2000 and d["feasible"]


def test_evolution_beats_random_samples(tables):
    p = _problem("3")
    r = search("evolution", p, generations=60, progress=False)
    g = p.space.sample_genomes(np.random.default_rng(1), 4000)
    ev = p.evaluate(g)
    best_random = ev.score[ev.feasible][:1000].max()
    assert p.evaluate(r.best[None]).score[0] >= best_random


def test_knapsack_reaches_a_long_evolution_in_a_fraction_of_its_evaluations(tables):
    long = _problem("3")
    ofa = search("evolution-ofa", long, generations=200, progress=False)
    short = _problem("3")
    ours = search("knapsack", short, rounds=4, progress=False)
    assert ours.n_evals * 5 < ofa.n_evals
    assert short.evaluate(ours.best[None]).score[0] >= long.evaluate(ofa.best[None]).score[0]


def test_evolution_ofa_is_ofas_tutorial_settings(tables):
    o = STRATEGIES.get("evolution-ofa")().options
    assert (o.population, o.generations, o.parent_ratio, o.mutate_prob, o.mutation_ratio,
            o.children) == (100, 500, 0.25, 0.1, 0.5, 100)
    assert STRATEGIES.get("evolution")().options.children == 0     # ours: refill to 100
    p = _problem("100")                                    # nothing to repair: 100 a generation
    search("evolution-ofa", p, generations=3, check=False, progress=False)
    assert p.n_evals == 100 + 3 * 100 + 1


def test_knapsack_refuses_a_budget_not_priced_by_a_table_sum(tables):
    from hwnas.errors import HwnasError
    from hwnas.predict import LatencyPredictor
    from hwnas.search import SearchProblem
    from hwnas.search.objectives import MflopsObjective

    class Sum(LatencyPredictor):
        name = "model"

        def __init__(self, table_pred):
            super().__init__(table_pred.space)
            self.inner = table_pred

        def predict_genomes(self, genomes):
            return self.inner.predict_genomes(genomes)

    table = _problem("3")
    p = SearchProblem(table.space, MflopsObjective(table.space),
                      {"fast": Sum(table.predictors["fast"])}, table.constraints)
    with pytest.raises(HwnasError, match="knapsack' needs a latency budget priced by a table sum"):
        search("knapsack", p, progress=False)


def _brute_force_moves(moves, slack, max_changes):
    """Every choice the knapsack may return, scored as it scores them (the exhaustive truth)."""
    import itertools

    best = None
    for choice in itertools.product(*[range(len(g)) for g in moves.gain]):
        gain = delta = changes = 0
        ended_run = None
        for i, c in enumerate(choice):
            forced = ended_run == moves.runs[i]
            if forced and c != moves.skip[i]:
                break                                        # a block after its run ended
            if c == moves.skip[i] and not forced:
                ended_run = moves.runs[i]
            changes += int(c != moves.incumbent[i] and not forced)
            gain += moves.gain[i][c]
            delta += moves.delta_ms[i][c]
        else:
            if changes <= max_changes and delta <= slack + 1e-9 and list(choice) != moves.incumbent:
                if best is None or gain > best[0]:
                    best = (gain, list(choice))
    return best


@pytest.mark.parametrize("seed", range(6))
def test_knapsack_moves_are_the_exhaustive_best(seed):
    from hwnas.search._knapsack import LayerMoves, best_moves

    rng = np.random.default_rng(seed)
    runs, skip = [0, 0, 0, 1, 1, 1], [None, 3, 3, None, 3, 3]
    incumbent = [1, 2, 3, 0, 1, 3]                        # run 0 ends after two layers
    gain, delta = [], []
    for i, inc in enumerate(incumbent):
        n = 4 if skip[i] is not None else 3
        g, d = rng.normal(0, 1, n), rng.integers(-5, 6, n) * 0.1
        g[inc], d[inc] = 0.0, 0.0
        gain.append(g)
        delta.append(d)
    moves = LayerMoves(gain, delta, incumbent, skip, runs)
    for max_changes, slack in ((1, 0.0), (2, 0.3), (3, -0.2), (6, 1.0)):
        truth = _brute_force_moves(moves, slack, max_changes)
        found = best_moves(moves, slack, max_changes, 5, 0.1)
        if truth is None or truth[0] <= 1e-12:
            assert found == []
            continue
        assert found[0][0] == pytest.approx(truth[0]) and found[0][1] == truth[1]
        assert all(v <= found[0][0] + 1e-12 for v, _ in found)


def test_front_entries_match_their_archs(tables):
    p = _problem("3")
    r = search("evolution", p, generations=40, progress=False)
    assert len(r.front) > 3
    g = p.space.to_genomes([p.space.parse(f["arch"]) for f in r.front])
    ev = p.evaluate(g)
    assert np.allclose(ev.score, [f["score"] for f in r.front])
    assert np.allclose(ev.feasible, [f["feasible"] for f in r.front])
    assert np.allclose(ev.latency_ms[0], [f["latency_ms"]["fast"] for f in r.front])


def test_two_device_constraints_are_both_met(tables):
    lo_fast, lo_slow = (_problem("fast=100,slow=1000").latency_lower_bound(t).value
                        for t in ("fast", "slow"))
    p = _problem(f"fast={lo_fast * 1.6},slow={lo_slow * 1.3}")
    assert p.space.resolutions == (160, 192)                  # shared by both tables
    r = search("evolution", p, generations=40, progress=False)
    d = p.describe(r.best)
    assert d["latency_bound_ms"]["fast"] <= lo_fast * 1.6
    assert d["latency_bound_ms"]["slow"] <= lo_slow * 1.3
    assert set(d["predicted_latency_ms"]) == {"fast", "slow"}
    front = p.space.to_genomes([p.space.parse(f["arch"]) for f in r.front])
    assert (p.evaluate(front).bound_ms[1] <= lo_slow * 1.3).all()   # front meets the other budget


def test_jointly_infeasible_constraints_are_refused(tables):
    fast, odd = (_problem("fast=100,odd=100").latency_lower_bound(t).value for t in ("fast", "odd"))
    p = _problem(f"fast={fast * 1.01},odd={odd * 1.01}")
    with pytest.raises(BudgetError, match="no architecture meets every constraint at once"):
        search("evolution", p, generations=5, init_tries=5, progress=False)


def test_margin_tightens_the_constraint(tables):
    base = _problem("3")
    r = search("evolution", base, generations=30, progress=False)
    tight = _problem("3", margin=0.2)
    r2 = search("evolution", tight, generations=30, progress=False)
    assert tight.latency(r2.best[None])[0][0, 0] * 1.2 <= 3 + 1e-9
    assert base.latency(r.best[None])[1][0, 0] <= 3


def test_cli_writes_outputs(tables, capsys):
    out = tables / "res"
    rc = main(["search", "--target", "fast", "--latency-ms", "3", "--objective", "mflops",
               "--report-targets", "slow", "-O", "generations=20", "--out", str(out)])
    assert rc == 0
    arch = json.loads((out / "arch.json").read_text())
    space = get_space("ofa-mbv3", **{k: v for k, v in arch["space_config"].items() if k != "name"})
    assert str(space.parse(arch["arch"])) == arch["arch"]
    assert arch["latency_bound_ms"]["fast"] <= 3 and "slow" in arch["predicted_latency_ms"]
    front = json.loads((out / "pareto.json").read_text())["front"]
    lat = [f["latency_ms"]["fast"] for f in front]
    assert lat == sorted(lat) and len(front) > 3
    assert (out / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((out / "history.json").read_text())["steps"]
    assert arch["arch"] in capsys.readouterr().out


def test_cli_rejects_unknown_option(tables, capsys):
    rc = main(["search", "--target", "fast", "--latency-ms", "3", "-O", "nope=1",
               "--objective", "mflops", "--out", str(tables / "x")])
    assert rc != 0 and "nope" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("name", ["gumbel", "proxyless"])
def test_gradient_strategies_on_the_proxyless_space(tmp_path, monkeypatch, name):
    monkeypatch.setenv("HWNAS_TABLES", str(tmp_path))
    _write_table(tmp_path, "px", get_space("proxyless"), 0.02)
    cons = Constraints(parse_latency_spec("px=6"))
    p = build_problem("proxyless", cons, objective="mflops")
    r = search(name, p, progress=False, **_GRAD)
    assert p.evaluate(r.best[None]).feasible[0]
    assert 0 <= r.info["supernet_accuracy"] <= 1 and len(r.info["layer_probs"]) == 21


def test_proxyless_space_matches_the_published_table():
    yaml = pytest.importorskip("yaml")
    from pathlib import Path

    lut = Path(__file__).resolve().parents[2] / "shared/data/external/proxylessnas_lut/mobile_trim.yaml"
    if not lut.exists():
        pytest.skip("published ProxylessNAS table not available")
    keys = set(yaml.safe_load(lut.read_text()))
    space = get_space("proxyless")
    assert {op.key for op in space.op_list} <= keys
    rng = np.random.default_rng(0)
    g = space.sample_genomes(rng, 50)
    for row in g[:10]:
        a = space.from_genome(row)
        assert space.parse(str(a)) == a and (space.to_genomes([a])[0] == row).all()
    assert space.from_genome(np.zeros(22, np.int16)) == space.smallest()
    flops = space.flops_genomes(g)
    assert (flops >= space.flops_genomes(space.to_genomes([space.smallest()]))).all()


def test_proxyless_space_builds_a_network():
    import torch

    space = get_space("proxyless", resolutions=[32], num_classes=10, in_chans=1)
    arch = space.parse("r32-k3e3.skip.skip.skip-k5e3.k3e3.skip.skip-k7e6.k3e3.k3e3.skip-"
                       "k5e3.skip.skip.skip-k7e6.k5e6.skip.skip-k7e6")
    net = space.build(arch)
    assert net(torch.randn(2, 1, 32, 32)).shape == (2, 10)
    params = sum(p.numel() for p in net.parameters())
    assert abs(params - space.params_genomes(space.to_genomes([arch]))[0]) / params < 0.05


def test_mixed_op_estimators():
    import torch

    from hwnas.nn.mixed_ops import MixedNet, MixedOp

    torch.manual_seed(0)
    scale = [torch.nn.Linear(4, 4, bias=False) for _ in range(3)]
    for i, m in enumerate(scale):
        torch.nn.init.eye_(m.weight)
        m.weight.data *= i + 1                          # candidate i multiplies by i + 1
    op = MixedOp(scale + [None])
    net = MixedNet([], [op], [])
    x = torch.ones(2, 4)
    net.set_choice([2])
    assert torch.allclose(net(x), 3 * x)
    for mode in ("gumbel", "gumbel_hard", "binary"):
        op.alpha.grad = None
        net.set_mode(mode, tau=1.0, paths=2)
        grads = []
        for _ in range(200):                            # minimising the output favours skip/×1
            op.alpha.grad = None
            net(x).sum().backward()
            grads.append(op.alpha.grad.clone())
        g = torch.stack(grads).mean(0)
        assert g[2] > 0 and g[2] > g[0], mode           # ×3 is pushed down the most
    net.set_mode("binary", paths=1)                     # weight steps: no gradient to alpha
    op.alpha.data[3] = -30.0                            # never draw the parameter-free skip
    op.alpha.grad = None
    net(x).sum().backward()
    assert op.alpha.grad is None
