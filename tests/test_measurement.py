"""Measurement on a busy device: A/B reference timing recovers the quiet latency under a
scripted drift (the debug runtime's clock), the stability gate flags what it cannot, the load
generator never outlives its user, and the deploy loop converges on a device slower than its
table."""
from __future__ import annotations

import time

import numpy as np
import pytest

from hwnas.runtime.debug import DebugRuntime, write_debug_artefact
from hwnas.runtime.protocol import Protocol
from hwnas.runtime.reference import Reference, measure_batch, quiet_time

PROTO = Protocol(warmup=1, repeats=12)


@pytest.fixture()
def artefact(tmp_path, debug_device):
    path = write_debug_artefact(tmp_path / "a.debug.json", {
        "ref": {"macs": 20e6, "act": 1e5, "ops": 20, "network": True},
        "small": {"macs": 5e6, "act": 5e4, "ops": 8, "network": True},
        "large": {"macs": 60e6, "act": 2e5, "ops": 30, "network": True}})
    return path


def _measure(artefact, target, drift, quiet_known=True):
    rt = DebugRuntime(target, drift=drift)
    quiet_rt = DebugRuntime(target)
    ref_quiet = quiet_rt.true_ms(artefact, "ref")
    ref = Reference(rt.timer(artefact, {}, "ref"), ref_quiet if quiet_known else None)
    items = [rt.timer(artefact, {}, f) for f in ("small", "large")]
    truth = [quiet_rt.true_ms(artefact, f) for f in ("small", "large")]
    return measure_batch(items, ref, PROTO), truth


@pytest.mark.parametrize("name,drift", [
    ("uniform 2x slowdown", lambda i: 2.0),
    ("step change halfway", lambda i: 1.0 if i < 30 else 1.8),
    ("slow ramp", lambda i: 1.0 + 0.02 * i),
])
def test_corrected_latency_recovers_the_quiet_truth(artefact, debug_device, name, drift):
    got, truth = _measure(artefact, debug_device, drift)
    for m, t in zip(got, truth):
        assert m.corrected and m.latency.median_ms == pytest.approx(t, rel=0.03), name
    assert got[0].load > 1.2                               # it saw the device busy


def test_random_spikes_are_cancelled_where_raw_timing_is_not(artefact, debug_device):
    rng = np.random.default_rng(0)
    spikes = (1.0 + 2.0 * (rng.random(500) < 0.25)).tolist()
    got, truth = _measure(artefact, debug_device, lambda i: spikes[i % 500])
    for m, t in zip(got, truth):
        assert m.latency.median_ms == pytest.approx(t, rel=0.05)


def test_a_device_that_will_not_settle_is_flagged_unstable(artefact, debug_device):
    rng = np.random.default_rng(1)
    wild = np.exp(rng.normal(0, 0.5, 1000)).tolist()
    tries = []
    rt = DebugRuntime(debug_device, drift=lambda i: wild[i % 1000])
    ref = Reference(rt.timer(artefact, {}, "ref"), 1.0)
    got = measure_batch([rt.timer(artefact, {}, "small")], ref, PROTO,
                        on_try=lambda a, s: tries.append(a))
    assert tries == [1, 2, 3] and got[0].unstable and got[0].latency.n == 3 * PROTO.repeats
    assert got[0].extra()["unstable"] is True and got[0].reference_spread > 0.15


def test_without_a_quiet_time_the_result_is_raw_and_says_so(artefact, debug_device):
    got, _ = _measure(artefact, debug_device, lambda i: 2.0, quiet_known=False)
    assert not got[0].corrected and got[0].latency == got[0].raw and got[0].ratio > 0


def test_quiet_time_is_a_low_percentile_under_spikes(artefact, debug_device):
    rng = np.random.default_rng(2)
    spikes = (1.0 + 3.0 * (rng.random(200) < 0.4)).tolist()
    rt = DebugRuntime(debug_device, drift=lambda i: spikes[i % 200])
    truth = DebugRuntime(debug_device).true_ms(artefact, "ref")
    assert quiet_time(rt.timer(artefact, {}, "ref"), PROTO) == pytest.approx(truth, rel=0.02)


def test_load_generator_runs_and_never_outlives_its_deadline():
    from hwnas.runtime.load import LoadGenerator

    with LoadGenerator(cores=1, duty=0.5, seconds=30) as load:
        time.sleep(0.5)
        assert load.running
    assert not load.running
    gen = LoadGenerator(cores=1, kind="memory", seconds=1.0).start()
    time.sleep(4.0)
    assert not gen.running                                  # stopped by itself
    gen.stop()


def test_bad_load_settings_are_refused():
    from hwnas.errors import HwnasError
    from hwnas.runtime.load import LoadGenerator

    for kw in ({"kind": "gpu"}, {"cores": 0}, {"duty": 0}, {"seconds": -1}):
        with pytest.raises(HwnasError):
            LoadGenerator(**kw)


class _Phased:
    """Timers whose times depend on whether another process holds a core (``busy``): the
    candidate loses more of its parallel speed-up than the reference, as measured on a 2-core
    host (its ratio moves by 9-18%)."""

    def __init__(self, busy_per_try):
        self.busy_per_try = list(busy_per_try)
        self.try_index = -1

    def start(self):
        self.try_index += 1
        return self

    def cores(self):
        return self.busy_per_try[min(self.try_index, len(self.busy_per_try) - 1)]

    def timer(self, quiet_ms, loaded_ms):
        def timer(number, repeat):
            busy = self.try_index >= 0 and self.cores() >= 0.5
            return [loaded_ms if busy else quiet_ms] * repeat
        return timer


def test_a_try_another_process_contended_gives_way_to_an_uncontended_one():
    probe = _Phased([1.0, 0.1])
    ref = Reference(probe.timer(0.5, 0.75), 0.5)
    got, = measure_batch([probe.timer(0.4, 0.72)], ref, PROTO, contention=probe,
                         busy_limit=0.5)
    assert got.ratio == pytest.approx(0.8) and got.latency.median_ms == pytest.approx(0.4)
    assert not got.contended and got.tries_contended == 1 and got.busy_cores == pytest.approx(0.1)
    assert got.latency.n == PROTO.repeats                  # the contended try's ratios left out
    assert got.extra()["tries_contended"] == 1 and "contended" not in got.extra()


def test_a_device_never_free_of_other_work_is_flagged_contended():
    probe = _Phased([1.0])
    ref = Reference(probe.timer(0.5, 0.75), 0.5)
    got, = measure_batch([probe.timer(0.4, 0.72)], ref, PROTO, contention=probe,
                         busy_limit=0.5)
    assert got.contended and got.tries_contended == 3 and got.busy_cores == pytest.approx(1.0)
    assert got.ratio == pytest.approx(0.96) and got.extra()["contended"] is True
    # without a limit the other work is recorded, never re-timed
    probe = _Phased([1.0])
    got, = measure_batch([probe.timer(0.4, 0.72)], Reference(probe.timer(0.5, 0.75), 0.5),
                         PROTO, contention=probe)
    assert got.busy_cores == pytest.approx(1.0) and not got.contended and got.attempts == 1


def test_the_quiet_time_is_not_taken_from_a_contended_try():
    from hwnas.runtime.reference import quiet_time_probed

    probe = _Phased([1.0, 1.0, 0.0])
    q = quiet_time_probed(probe.timer(0.5, 0.8), PROTO, probe, busy_limit=0.5)
    assert q.ms == pytest.approx(0.5) and not q.contended and q.tries == 3
    probe = _Phased([1.0])
    q = quiet_time_probed(probe.timer(0.5, 0.8), PROTO, probe, busy_limit=0.5)
    assert q.ms == pytest.approx(0.8) and q.contended and q.busy_cores == pytest.approx(1.0)


def test_the_cpu_probe_counts_other_processes_and_not_our_own_threads():
    from hwnas.runtime.contention import CpuContention
    from hwnas.runtime.load import LoadGenerator

    if not CpuContention.available():
        pytest.skip("no /proc/stat")
    probe = CpuContention().start()
    x, t0 = 1.0, time.monotonic()
    while time.monotonic() - t0 < 0.5:                     # our own work is not "other"
        x = x * 1.0000001 + 1e-9
    own = probe.cores()
    with LoadGenerator(cores=1, duty=1.0, seconds=20):
        time.sleep(1.0)                                    # the worker is up and spinning
        probe.start()
        time.sleep(1.0)
        loaded = probe.cores()
    assert loaded >= 0.7 and loaded > own + 0.4


class _Outside:
    """Timers slowed by load from outside the device's own processes (no probe sees it),
    unevenly: the candidate's ratio to the reference moves with it. ``slowdowns``: the
    reference's slowdown in each try (the ``on_try`` callback moves to the next)."""

    def __init__(self, slowdowns):
        self.slowdowns = list(slowdowns)
        self.index = 0

    def next_try(self, attempt, spread):
        self.index = min(attempt, len(self.slowdowns) - 1)

    def timer(self, quiet_ms, exponent):
        def timer(number, repeat):
            return [quiet_ms * self.slowdowns[self.index] ** exponent] * repeat
        return timer


def test_a_try_loaded_from_outside_gives_way_to_an_unloaded_one():
    from hwnas.runtime.reference import LOAD_LIMIT

    ext = _Outside([2.0, 1.0])
    ref = Reference(ext.timer(0.5, 1.0), 0.5)
    got, = measure_batch([ext.timer(0.4, 1.6)], ref, PROTO, on_try=ext.next_try,
                         load_limit=LOAD_LIMIT)
    assert got.ratio == pytest.approx(0.8) and got.latency.median_ms == pytest.approx(0.4)
    assert not got.loaded and got.tries_loaded == 1 and got.attempts == 2
    assert got.load == pytest.approx(1.0) and got.latency.n == PROTO.repeats
    assert got.extra()["tries_loaded"] == 1 and "loaded" not in got.extra()
    # without the gate the loaded try is believed, biased
    ext = _Outside([2.0, 1.0])
    got, = measure_batch([ext.timer(0.4, 1.6)], Reference(ext.timer(0.5, 1.0), 0.5), PROTO,
                         on_try=ext.next_try)
    assert got.attempts == 1 and got.ratio == pytest.approx(0.8 * 2.0 ** 0.6)


def test_a_device_never_unloaded_keeps_its_least_loaded_try_flagged():
    ext = _Outside([2.0, 1.5, 1.8])
    ref = Reference(ext.timer(0.5, 1.0), 0.5)
    got, = measure_batch([ext.timer(0.4, 1.6)], ref, PROTO, on_try=ext.next_try,
                         load_limit=1.2)
    assert got.loaded and got.tries_loaded == 3 and got.attempts == 3
    assert got.load == pytest.approx(1.5) and got.latency.n == PROTO.repeats
    assert got.ratio == pytest.approx(0.8 * 1.5 ** 0.6) and got.extra()["loaded"] is True


# ---- anchors: a held core biases each network by its size; networks of known quiet time
# timed beside the item measure that bias where the item is

def _held(ref_ms):
    """A held core's slowdown by quiet latency: small networks read fast, large ones slow
    (x0.75 at a tenth of the reference, x1.0 at its size, x1.17 at 2.2x): smooth, and not a
    power law (which log-log interpolation would fit exactly)."""
    import math

    return lambda ms: 1.0 + 0.25 * math.tanh(math.log(ms / ref_ms))


@pytest.fixture()
def anchored_artefact(tmp_path):
    funcs = {"ref": {"macs": 20e6, "act": 1e5, "ops": 20, "network": True},
             "item": {"macs": 48e6, "act": 1.6e5, "ops": 26, "network": True}}
    for k, macs in enumerate((28e6, 44e6, 64e6)):
        funcs[f"a{k}"] = {"macs": macs, "act": 1.5e5, "ops": 24, "network": True}
    return write_debug_artefact(tmp_path / "anch.debug.json", funcs)


def test_bias_at_interpolates_between_anchors_and_holds_the_ends():
    from hwnas.runtime.anchors import bias_at

    pts = [(1.0, 1.0), (2.2, 2.0), (4.8, 4.0)]           # bias 1.0, 1.1, 1.2
    assert bias_at(0.5, pts) == pytest.approx(1.0)       # below: the smallest anchor's
    assert bias_at(9.0, pts) == pytest.approx(1.2)       # above: the largest's
    assert bias_at(2.2, pts) == pytest.approx(1.1)
    assert 1.1 < bias_at(3.0, pts) < 1.2
    with pytest.raises(ValueError, match="no anchor"):
        bias_at(1.0, [(0.0, 1.0), (float("nan"), 1.0)])


def test_anchors_recover_a_contended_reading_biased_by_its_size(anchored_artefact, debug_device):
    from hwnas.runtime.anchors import Anchor, measure_anchored

    quiet = DebugRuntime(debug_device)
    ref_ms = quiet.true_ms(anchored_artefact, "ref")
    held = _held(ref_ms)
    truth = quiet.true_ms(anchored_artefact, "item")
    assert held(truth) / held(ref_ms) > 1.08                  # the bias the A/B ratio keeps
    rt = DebugRuntime(debug_device, drift=lambda i: 1.6, busy=lambda i: 1.0, held=held)
    ref = Reference(rt.timer(anchored_artefact, {}, "ref"), ref_ms)
    plain, = measure_batch([rt.timer(anchored_artefact, {}, "item")], ref, PROTO,
                           contention=rt.contention(), busy_limit=0.5, tries=1)
    assert plain.contended and plain.latency.median_ms / truth > 1.07
    anchors = [Anchor(rt.timer(anchored_artefact, {}, f"a{k}"),
                      quiet.true_ms(anchored_artefact, f"a{k}"), f"a{k}") for k in range(3)]
    m, fit = measure_anchored(rt.timer(anchored_artefact, {}, "item"), ref, anchors,
                              protocol=PROTO, contention=rt.contention(), busy_limit=0.5,
                              tries=1)
    assert m.contended and fit is not None and len(fit.points) == 3
    assert m.latency.median_ms == pytest.approx(truth, rel=0.02)
    assert fit.read_ms == pytest.approx(plain.latency.median_ms, rel=0.02)
    assert fit.to_json()["bias"] == pytest.approx(fit.read_ms / m.latency.median_ms, rel=1e-3)
    assert m.raw == plain.raw or m.raw.median_ms == pytest.approx(plain.raw.median_ms, rel=0.05)
    # the other work ended before the anchored batch: that clean reading stands, unanchored
    calm = DebugRuntime(debug_device, busy=lambda i: 0.0)
    m, fit = measure_anchored(calm.timer(anchored_artefact, {}, "item"),
                              Reference(calm.timer(anchored_artefact, {}, "ref"), ref_ms),
                              [Anchor(calm.timer(anchored_artefact, {}, "a0"), 1.0)],
                              protocol=PROTO, contention=calm.contention(), busy_limit=0.5)
    assert fit is None and not m.contended
    assert m.latency.median_ms == pytest.approx(truth, rel=0.02)


def test_a_probe_caught_on_a_slow_moment_is_lowered_to_the_fastest_reference_reading():
    from hwnas.profile.reference_network import lower_quiet_time

    ref = {"arch": "a", "quiet_ms": 0.4}
    recs = [{"median_ms": 1.0, "p90_ms": 1.1, "std_ms": 0.01, "load": 0.7},
            {"median_ms": 2.0, "p90_ms": 2.2, "std_ms": 0.02, "load": 0.75}]
    assert lower_quiet_time(recs, ref) == pytest.approx(0.7)
    assert ref["quiet_ms"] == pytest.approx(0.28) and ref["probed_quiet_ms"] == 0.4
    assert [r["median_ms"] for r in recs] == pytest.approx([0.7, 1.4])
    assert [r["load"] for r in recs] == pytest.approx([1.0, 0.75 / 0.7], abs=1e-4)
    # a probe that was quiet, or records without a reference reading, change nothing
    quiet = [{"median_ms": 1.0, "load": 0.97}, {"median_ms": 1.0, "load": 1.2}]
    assert lower_quiet_time(quiet, {"quiet_ms": 0.4}) == 1.0 and quiet[0]["median_ms"] == 1.0
    raw = [{"median_ms": 1.0, "load": None}]
    assert lower_quiet_time(raw, {"quiet_ms": 0.4}) == 1.0
