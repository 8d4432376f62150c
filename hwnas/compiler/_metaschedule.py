"""The one module that imports TVM's MetaSchedule.

TVM moved MetaSchedule from ``tvm.meta_schedule`` to ``tvm.s_tir.meta_schedule``; its builder
internals (``_worker_func``, ``_serialize_params``) are private and may move again. Every use in
hwnas goes through here, so that a TVM upgrade that moves them is a change to this file alone.
"""
from __future__ import annotations

__all__ = ["meta_schedule", "builder_parts"]


def meta_schedule():
    """The ``meta_schedule`` package of the installed TVM."""
    from tvm.s_tir import meta_schedule as ms

    return ms


def builder_parts():
    """``(BuilderResult, PyBuilder, serialize_params, local_worker)``: what a builder of our own
    needs (``local_worker`` is the function ``LocalBuilder`` runs in each worker process)."""
    from tvm.s_tir.meta_schedule.builder import BuilderResult, PyBuilder
    from tvm.s_tir.meta_schedule.builder.local_builder import _serialize_params, _worker_func

    return BuilderResult, PyBuilder, _serialize_params, _worker_func
