"""The best few changes to a chain of layers under a latency budget: a multiple-choice knapsack
solved by dynamic programming over the layers, within a trust region.

Each layer picks one candidate. Relative to the current choice (the *incumbent*), a candidate
brings an estimated ``gain`` (a first-order model: how much changing this layer alone changes
the objective) and a latency change ``delta_ms`` (exact for a table sum). Within a run of
layers (a stage) a *skip* ends the run, so the later layers of the run are skipped too; those
forced skips do not count as changes. At most ``max_changes`` layers change: the first-order
model holds near the incumbent only.

The latency changes are summed on a grid of ``grid_ms``; the grid spans the largest decrease and
the largest increase the changes can reach, so a move may raise one layer's latency and pay for
it with later layers. What comes back is the best estimated choices whose summed change fits
``slack_ms``, best first; the caller evaluates them exactly.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["LayerMoves", "best_moves"]

_NEG = -1e30


@dataclass(frozen=True)
class LayerMoves:
    """Per layer (lists of equal length): each candidate's ``gain`` and ``delta_ms`` relative to
    ``incumbent``; ``skip`` is the skip candidate's index (None: not skippable); ``runs`` the
    run id of each layer."""

    gain: list[np.ndarray]
    delta_ms: list[np.ndarray]
    incumbent: list[int]
    skip: list[int | None]
    runs: list[int]


def _options(moves: LayerMoves, i: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``(candidate, from an ended run, counts as a change)`` that leave layer ``i`` with
    its run open (blocks, from an open run) and ended (its skip: chosen, or forced)."""
    inc, skip = moves.incumbent[i], moves.skip[i]
    open_ = [(c, 0, int(c != inc)) for c in range(len(moves.gain[i])) if c != skip]
    ended = [] if skip is None else [(skip, 0, int(skip != inc)), (skip, 1, 0)]
    return np.array(open_, np.int64).reshape(-1, 3), np.array(ended, np.int64).reshape(-1, 3)


def _range(moves: LayerMoves, steps: list[np.ndarray], max_changes: int) -> tuple[int, int]:
    """(largest decrease, largest increase) in grid steps that ``max_changes`` changes reach: a
    skip also drops the later layers of its run."""
    n = len(steps)
    down, up = [], []
    for i in range(n):
        d = max(0, -int(min(s for c, s in enumerate(steps[i]) if c != moves.skip[i])))
        if moves.skip[i] is not None:
            tail = sum(int(steps[j][moves.skip[j]]) for j in range(i, n)
                       if moves.runs[j] == moves.runs[i] and moves.skip[j] is not None)
            d = max(d, -tail)
        down.append(d)
        up.append(max(0, int(steps[i].max())))
    return (sum(sorted(down, reverse=True)[:max_changes]),
            sum(sorted(up, reverse=True)[:max_changes]))


def best_moves(moves: LayerMoves, slack_ms: float, max_changes: int, k: int,
               grid_ms: float) -> list[tuple[float, list[int]]]:
    """Up to ``k`` distinct choices other than the incumbent, of positive estimated gain and a
    summed latency change within ``slack_ms`` (± half a grid step per changed layer), as
    ``(estimated gain, choice)``, best first."""
    n = len(moves.incumbent)
    steps = [np.rint(np.asarray(d, float) / grid_ms).astype(np.int64) for d in moves.delta_ms]
    lo, up = _range(moves, steps, max_changes)
    nb, nt = lo + up + 1, max_changes + 1
    pad = max(int(np.abs(st).max()) for st in steps)
    # [run ended?, changes (one NEG row in front), bin (NEG margins)]: a shifted copy of the
    # states is then a slice
    padded = np.full((2, nt + 1, nb + 2 * pad), _NEG)
    value = padded[:, 1:, pad:pad + nb]
    value[0, 0, lo] = 0.0
    arg = np.zeros((n, 2, nt, nb), np.int8)                       # the option each state took
    options: list[tuple[np.ndarray, np.ndarray]] = []
    merged_from_ended: dict[int, np.ndarray] = {}
    for i in range(n):
        if i and moves.runs[i] != moves.runs[i - 1]:               # a new run: open again
            merged_from_ended[i] = value[1] > value[0]
            np.maximum(value[0], value[1], out=value[0])
            value[1] = _NEG
        options.append(_options(moves, i))
        new = np.full((2, nt, nb), _NEG)
        for to, opts in enumerate(options[-1]):
            if not len(opts):
                continue
            # the best option per state, kept option by option (the first of equals, as an
            # argmax over them would: a strided argmax over a stacked copy cost most of the
            # search's time)
            gains = moves.gain[i][opts[:, 0]]
            best, which = new[to], arg[i, to]
            for j, (e, c, sh) in enumerate(zip(opts[:, 1], opts[:, 2], pad - steps[i][opts[:, 0]])):
                cand = padded[e, 1 - c:1 - c + nt, sh:sh + nb] + gains[j]
                better = cand > best
                np.copyto(best, cand, where=better)
                which[better] = j
        value[...] = new
    limit = lo + int(np.floor(slack_ms / grid_ms + 1e-9))
    if limit < 0:
        return []
    fits = value[:, :, :min(limit, nb - 1) + 1]
    flat = fits.reshape(-1)
    out, seen = [], {tuple(moves.incumbent)}
    for idx in np.argsort(-flat, kind="stable"):
        if flat[idx] <= 1e-12 or len(out) >= k:
            break
        ended, t, b = (int(v) for v in np.unravel_index(idx, fits.shape))
        choice = [0] * n
        for i in range(n - 1, -1, -1):
            c, from_ended, counted = (int(v) for v in options[i][ended][arg[i, ended, t, b]])
            choice[i] = c
            b, t, ended = b - int(steps[i][c]), t - counted, from_ended
            if i in merged_from_ended:                         # the run before was open or ended
                ended = int(merged_from_ended[i][t, b])
        key = tuple(choice)
        if key not in seen:
            seen.add(key)
            out.append((float(flat[idx]), choice))
    return out
