"""The archive of evaluated genomes, its objective/latency Pareto front and ``pareto.png``."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from hwnas._io import atomic_write_bytes

__all__ = ["Archive", "pareto_mask", "plot_front"]


def pareto_mask(latency: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Points that no other point beats on both lower latency and higher score."""
    order = np.lexsort((-score, latency))                     # latency asc, score desc
    best = np.maximum.accumulate(score[order])
    keep = np.r_[True, score[order][1:] > best[:-1]]
    mask = np.zeros(len(score), bool)
    mask[order[keep]] = True
    return mask


class Archive:
    """Every genome a strategy evaluated, with its score, latencies and feasibility."""

    def __init__(self, problem) -> None:
        self.problem = problem
        self._g: list[np.ndarray] = []
        self._s: list[np.ndarray] = []
        self._lat: list[np.ndarray] = []
        self._f: list[np.ndarray] = []
        self._o: list[np.ndarray] = []

    def add(self, genomes: np.ndarray, ev) -> None:
        self._g.append(genomes.copy())                        # callers repair rows in place
        self._s.append(ev.score)
        self._lat.append(ev.latency_ms)
        self._f.append(ev.feasible)
        self._o.append(self._others_ok(ev))

    def _others_ok(self, ev) -> np.ndarray:
        """Rows that meet every constraint except the primary target's latency budget."""
        p = self.problem
        ratio = ev.bound_ms / p._budget
        ok = np.delete(ratio, p.targets.index(p.primary), axis=0).max(0, initial=0.0) <= 1.0
        limits = {"params": p.constraints.max_params, "mflops": p.constraints.max_mflops,
                  "act_kb": p.constraints.max_act_kb}
        for k, v in ev.costs.items():
            ok &= v <= limits[k]
        return ok

    def arrays(self):
        """All evaluations; repeats are harmless (the front keeps the first of equal points)."""
        return (np.concatenate(self._g), np.concatenate(self._s), np.concatenate(self._lat, 1),
                np.concatenate(self._f))

    def front(self, limit: int = 200) -> list[dict]:
        """The front on (primary-target latency, score) among archs that meet every other
        constraint, at most ``limit`` points, in latency order."""
        if not self._g:
            return []
        g, s, lat, feas = self.arrays()
        ti = self.problem.targets.index(self.problem.primary)
        keep = np.flatnonzero(np.concatenate(self._o))
        idx = keep[pareto_mask(lat[ti][keep], s[keep])]
        idx = idx[np.argsort(lat[ti][idx])]
        if len(idx) > limit:
            idx = idx[np.linspace(0, len(idx) - 1, limit).round().astype(int)]
        space = self.problem.space
        return [{"arch": str(space.from_genome(g[i])), "score": float(s[i]),
                 "latency_ms": {t: float(lat[k, i]) for k, t in enumerate(self.problem.targets)},
                 "feasible": bool(feas[i])} for i in idx]


def plot_front(path: str | Path, archive: Archive, best: dict, title: str,
               max_points: int = 4000) -> Path:
    """Score against primary-target latency: evaluated archs, the front, the budget, the pick."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    problem = archive.problem
    t = problem.primary
    ti = problem.targets.index(t)
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    if archive._g:
        g, s, lat, feas = archive.arrays()
        pick = np.random.default_rng(0).permutation(len(s))[:max_points]
        ax.scatter(lat[ti][pick], s[pick], s=4, c=np.where(feas[pick], "tab:blue", "lightgray"),
                   label="evaluated (blue: meets every constraint)", rasterized=True)
        front = archive.front()
        label = "Pareto front" + (" (meeting the other constraints)"
                                  if len(problem.constraints.latency) > 1 else "")
        ax.plot([p["latency_ms"][t] for p in front], [p["score"] for p in front], "-",
                color="tab:orange", lw=1.5, label=label)
    if t in problem.constraints.targets:
        ax.axvline(problem.constraints.budget(t), color="tab:red", ls="--",
                   label=f"budget {problem.constraints.budget(t):.4g} ms")
    ax.scatter([best["predicted_latency_ms"][t]], [best["objective"]["value"]], marker="*",
               s=180, c="gold", edgecolors="black", zorder=5, label="chosen arch")
    ax.set_xlabel(f"predicted latency on {t}, median ms (budget checked on the "
                  f"{problem.constraints.margin_text()})", fontsize=8)
    ax.set_ylabel(problem.objective.name)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())
