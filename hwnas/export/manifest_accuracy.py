"""The accuracy a bundle's manifest states, and where it comes from.

A bundle whose weights were evaluated states their top-1 on the held-out split, *measured*,
source ``supernet`` (the checkpoint the weights came from). A bundle of untrained weights
states the figure its search went by (``arch.json``'s ``accuracy``: the source that gave it,
measured or predicted, extrapolation or not), or that none is known. The search's figure is
kept beside a measured one, so that the two can be compared.
"""
from __future__ import annotations

from hwnas.predict.accuracy_sources import MEASURED, SUPERNET

__all__ = ["manifest_accuracy"]


def manifest_accuracy(weights: dict, searched: dict | None = None) -> dict:
    """``weights``: ``subnet_with_weights``' record; ``searched``: the search's ``accuracy``
    record of this arch (None: the arch did not come from a search)."""
    searched = searched if isinstance(searched, dict) else None
    if weights.get("trained") and weights.get("accuracy") is not None:
        out = {"source": SUPERNET, "kind": MEASURED, "top1": float(weights["accuracy"]),
               "origin": str(weights.get("source")), "extrapolation": None,
               "note": f"top-1 of this bundle's weights on the held-out {weights.get('split')} "
                       f"split of {weights.get('dataset')} ({weights.get('n_eval')} images)"}
    elif searched is not None and searched.get("top1") is not None:
        return {**searched, "source_note": searched.get("note"),
                "note": "the search's figure for this arch (the bundle's weights were not "
                        "evaluated)"}
    else:
        why = (f"the weights ({weights.get('source')}) were not evaluated here (no held-out "
               "data)" if weights.get("trained") else "random weights (untrained)")
        out = {"source": None, "kind": None, "top1": None, "extrapolation": None,
               "note": f"not known: {why}, and the arch came with no search figure"}
    if searched is not None:
        out["search"] = searched
    return out
