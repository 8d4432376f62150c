"""The few-shot latency predictor against the simplest line a user could fit, on every column
of the published latency data.

    python benchmarks/fewshot_vs_lines.py [--seeds 5] [--tolerance 0.01] [--json PATH]

For every device column of ``nb201_latency_ms.csv`` and ``fbnet_latency_ms.csv`` (GPUs at
batch 1, whose latency follows the number of layers more than the MACs, included), at k = 10
and 20 samples of that column: the few-shot predictor (``hwnas adapt``'s, the other columns as
sources) and the lines latency = a·x + b fitted by least squares on the same k samples, for x
each of MACs, depth and parameters. Both are scored on all of the column's other archs:
Spearman and the share within ±10 %, each the mean over ``--seeds`` seeds. A column passes
when the few-shot predictor's mean is at least the best line's less ``--tolerance`` on both
metrics (the best line chosen per metric).

``--json PATH`` writes ``every_column_ok``, ``columns``, ``failing`` (column, k, metric and
the two figures) and the per-column rows. Nothing is timed on this machine.
"""
from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import parser, write_json  # noqa: E402
from latency_predictor import BASELINE_KS, fewshot_device  # noqa: E402


def main() -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--tolerance", type=float, default=0.01)
    p.add_argument("--spaces", default="nb201,fbnet")
    args = p.parse_args()

    from hwnas.predict.external import load_external
    from hwnas.spaces import get_space

    t0 = time.perf_counter()
    rows, failing = [], []
    print(f"{'space':<6} {'column':<14} {'k':>3} {'few-shot ρ':>10} {'best line ρ':>17} "
          f"{'few-shot ±10%':>13} {'best line ±10%':>20}  verdict")
    for space_name in args.spaces.split(","):
        space, matrix = get_space(space_name), load_external(space_name)
        for dev in matrix.devices:
            r = fewshot_device(space, matrix, dev, args.seeds, baselines=True)
            for k in BASELINE_KS:
                rho, _, w10 = r["by_k"][k]
                lines = r["lines"][k]
                best_rho = max(lines, key=lambda n: lines[n][0])
                best_w = max(lines, key=lambda n: lines[n][1])
                row = {"space": space_name, "column": dev, "k": k, "fewshot_spearman": rho,
                       "fewshot_within10": w10, "best_line_spearman": lines[best_rho][0],
                       "best_line_spearman_feature": best_rho,
                       "best_line_within10": lines[best_w][1],
                       "best_line_within10_feature": best_w, "lines": lines}
                bad = [(m, mine, theirs) for m, mine, theirs in
                       (("spearman", rho, lines[best_rho][0]),
                        ("within10", w10, lines[best_w][1]))
                       if mine < theirs - args.tolerance]
                row["ok"] = not bad
                failing += [{"space": space_name, "column": dev, "k": k, "metric": m,
                             "fewshot": mine, "best_line": theirs} for m, mine, theirs in bad]
                rows.append(row)
                print(f"{space_name:<6} {dev:<14} {k:>3} {rho:>10.4f} {lines[best_rho][0]:>9.4f} "
                      f"({best_rho:<6}) {w10:>13.1%} {lines[best_w][1]:>11.1%} ({best_w:<6})  "
                      f"{'ok' if not bad else 'LOSES ' + ', '.join(m for m, *_ in bad)}",
                      flush=True)
    figures = {"every_column_ok": not failing, "columns": len({(r["space"], r["column"])
                                                               for r in rows}),
               "failing": failing, "tolerance": args.tolerance, "seeds": args.seeds,
               "wall_s": round(time.perf_counter() - t0, 1), "rows": rows}
    print(f"\n{figures['columns']} columns, k = {', '.join(map(str, BASELINE_KS))}: "
          f"{'every one at least the best line' if not failing else f'{len(failing)} shortfalls'}"
          f" (less {args.tolerance}); {figures['wall_s']:.0f} s")
    write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
