"""``report.md`` for a deploy bundle, with a predicted-against-measured plot."""
from __future__ import annotations

from pathlib import Path

from hwnas._io import atomic_write_text

__all__ = ["plot_predicted_vs_measured", "write_report", "tuning_line", "emulation_line"]


def tuning_line(tuning: dict) -> str:
    """``Tuned kernels: 23/23 (database ..., tuned on CPU X with TVM Y)``, or what is missing."""
    n, k = tuning.get("kernels", 0), tuning.get("tuned", 0)
    line = f"Tuned kernels: {k}/{n}"
    if tuning.get("database"):
        line += f" (tuning database {tuning['database']}"
        if tuning.get("tuned_on"):
            line += f", tuned on {tuning['tuned_on']} with TVM {tuning.get('tvm')}"
        line += ")"
    else:
        line += " (no tuning database: every kernel is TVM's untuned default)"
    if k < n:
        line += f"; {n - k} kernels run untuned code: tune the space with `hwnas tune`"
    return line + "."


def emulation_line(manifest: dict) -> str | None:
    """What the report says when the bundle or its table was timed on an emulated device."""
    lat = manifest["latency"].get("measured") or {}
    table = manifest.get("deploy", {}).get("table", {})
    emulator = lat.get("emulator") or table.get("emulator")
    if not (lat.get("emulated") or table.get("emulated")):
        return None
    target = manifest["target"]["name"]
    return (f"- **Emulated device**: the latencies here were measured on an emulator "
            f"({emulator}), not on a {target}; they show that the bundle runs on the "
            f"architecture, not that it meets the budget on the device.")


def plot_predicted_vs_measured(rounds: list[dict], budget_ms: float, path: Path) -> Path:
    """Each round's chosen arch: predicted (x) against measured (y), with y=x and the budget."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4.5), dpi=110)
    pred = [r["predicted_ms"] for r in rounds]
    meas = [r["measured"]["median_ms"] for r in rounds]
    lo, hi = 0.0, max(pred + meas + [budget_ms]) * 1.15
    ax.plot([lo, hi], [lo, hi], color="0.6", lw=1, ls="--", label="measured = predicted")
    ax.axhline(budget_ms, color="tab:red", lw=1.2, label=f"budget {budget_ms:g} ms")
    ax.scatter(pred, meas, c=range(len(rounds)), cmap="viridis", zorder=3, s=40)
    for i, (x, y) in enumerate(zip(pred, meas), 1):
        ax.annotate(f"round {i}", (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set(xlim=(lo, hi), ylim=(lo, hi), xlabel="predicted latency (ms)",
           ylabel="measured median latency (ms)", title="Deploy rounds: predicted vs measured")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)
    return path


def _accuracy_line(manifest: dict) -> str:
    """The bundle's accuracy, measured or predicted, and its source (and the search's figure
    beside a measured one)."""
    from hwnas.predict.accuracy_sources import accuracy_text

    record = manifest.get("accuracy")
    if not record:                  # a manifest written before it stated its accuracy source
        acc = manifest["weights"].get("accuracy")
        return (f"- Accuracy: {acc:.4f} on the held-out split of "
                f"{manifest['weights'].get('dataset')}" if acc is not None
                else "- Accuracy: not measured (untrained weights)")
    line = f"- Accuracy: {accuracy_text(record)}" + (f": {record['note']}"
                                                      if record.get("top1") is not None else "")
    if record.get("search"):
        line += f"; the search went by {accuracy_text(record['search'])}"
    return line + "."


def _weights_line(manifest: dict) -> str:
    """Where the bundle's weights come from; random weights are said to be random."""
    w = manifest.get("weights") or {}
    if not w.get("trained"):
        return ("- Weights: **random weights** (untrained): the bundle's latency is real, its "
                "outputs are not a trained network's; deploy with --checkpoint for trained ones.")
    return f"- Weights: {w.get('source')}."


def write_report(out_dir: Path, manifest: dict, rounds: list[dict], budget_ms: float) -> Path:
    lat = manifest["latency"]["measured"]
    emulated = emulation_line(manifest)
    margin = manifest["latency"].get("contended_margin")
    lines = [
        f"# hwnas deploy: `{manifest['arch']}` on {manifest['target']['name']}",
        "",
        f"- Budget: **{budget_ms:g} ms**; measured median **{lat['median_ms']:.3f} ms** "
        f"(p90 {lat['p90_ms']:.3f} ms, std {lat['std_ms']:.3f} ms, n={lat['n']}) on {lat['device']}.",
        *([emulated] if emulated else []),
        f"- Predicted: {manifest['latency']['predicted_ms']:.3f} ms "
        f"({manifest['latency']['predictor']} predictor).",
        _weights_line(manifest),
        _accuracy_line(manifest),
        f"- Rounds: {len(rounds)}.",
        f"- {tuning_line(manifest.get('tuning', {}))}",
        "",
        "Measured latencies are drift-corrected: each bundle was timed interleaved with the "
        "table's reference network, and its time relative to the reference is scaled to the "
        "device's quiet speed; *raw* is the time as it ran, *load* how much slower than quiet "
        "the reference ran meanwhile; *other work* the cores other processes held while it "
        "was timed (a local device only; from half a core on, *contended*: the ratio to the "
        "reference itself moves with each network's size, so a contended bundle is timed "
        "again beside anchor networks of the table, of known quiet time, and divided by their "
        "bias at its size: *read* in the table" + (f"; the loop judges a contended measurement "
                                       f"{100 * margin:g}% slower than that" if margin else "")
        + "). *As shipped* is the bundle run the way a program runs it: its `runner.py` in a "
        "fresh process, called from Python, raw. An uncontended bundle is judged by the "
        "slowest of measured, raw and as shipped.",
        "",
        "| round | arch | predicted ms | measured ms | raw ms | as shipped ms | load | other work "
        "| within budget |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(rounds, 1):
        meas = r["measured"]
        m = meas["median_ms"]
        raw = meas.get("raw", {}).get("median_ms", m)
        load = f"x{meas['load']:.2f}" if meas.get("load") else "-"
        busy = meas.get("busy_cores")
        other = "-" if busy is None else f"{busy:.2f} cores" + (
            " (contended)" if meas.get("contended") else "")
        if meas.get("anchored"):
            fit = meas["anchored"]
            other += f", read {fit['read_ms']:.3f} ms (anchors x{fit['bias']:.3f})"
        again = (f" (round {r['repeat_of']}'s subnet again: its measurement, not re-timed)"
                 if r.get("repeat_of") else "")
        if r.get("margin") is not None:
            again += f" (probe: searched with a {100 * r['margin']:.1f}% margin)"
        judged = r.get("judged_ms", m)
        verdict = "yes" if judged <= budget_ms else "no"
        if judged != round(m, 5):
            verdict += f" (judged {judged:.3f} ms)"
        shipped = meas.get("shipped")
        shipped = "-" if shipped is None else f"{shipped['median_ms']:.3f}"
        lines.append(f"| {i} | `{r['arch']}`{again} | {r['predicted_ms']:.3f} | {m:.3f} | "
                     f"{raw:.3f} | {shipped} | {load} | {other} | {verdict} |")
    lines += ["", "![Pareto front](pareto.png)", "",
              "![Predicted vs measured](predicted_vs_measured.png)", ""]
    return atomic_write_text(out_dir / "report.md", "\n".join(lines))
