"""Once-for-All's published MobileNetV3 supernet files: the ofa-mbv3 plugin's checkpoint format.

OFA publishes its supernets (``ofa_mbv3_d234_e346_k357_w1.2`` and its kin) as
``torch.save({"state_dict": ...})`` of its ``OFAMobileNetV3``. hwnas's ``OFASupernet`` computes
the same function (centre-cropped kernels through the 7to5 / 5to3 transform matrices, SE with
reduction 4 and divisor 8, hard-swish and hard-sigmoid, BN eps 1e-5, leading channels first);
only the module names differ. This module turns such a mapping into a loaded hwnas supernet:

* ``KEY_RULES`` renames every OFA key (both ways: OFA → hwnas to load, hwnas → OFA to name
  what is missing). OFA's block ``i`` (1..20) is hwnas's ``blocks[i - 1]``; OFA's
  ``blocks.0`` is hwnas's fixed ``first_block``. OFA's feature mix has no bias; hwnas's
  gets zeros, which computes the same;
* keys of OFA's older releases (``.mobile_inverted_conv.``, and BN / conv / linear names one
  wrapper more or less deep) are read as OFA's own loader reads them;
* the file has no ``meta.json``: the space configuration is the one of the plugin whose
  widths, classes and input channels the shapes show.

Anything else is one ``DataError`` line: the first key that does not fit, the first key that
is missing, or the first shape that differs. Reading the file (``torch.load(...,
weights_only=True)``) is ``hwnas.train.checkpoint``'s job; this module only sees the mapping.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch

from hwnas.errors import DataError

__all__ = ["KEY_RULES", "to_hwnas_key", "to_ofa_key", "recognises", "ofa_state_dict",
           "infer_space", "ofa_supernet"]

# placeholders of KEY_RULES: <i> OFA's block index (hwnas's is one less), <bn> a BN entry
_SLOTS = {"i": r"(?P<i>0|[1-9][0-9]*)", "bn": r"(?P<bn>weight|bias|running_mean|running_var|"
          r"num_batches_tracked)", "m": r"(?P<m>7to5|5to3)", "se": r"(?P<se>reduce|expand)",
          "p": r"(?P<p>weight|bias)"}

#: (OFA key, hwnas key); ``<name>`` is a placeholder of ``_SLOTS``, the rest is literal
KEY_RULES: tuple[tuple[str, str], ...] = (
    ("first_conv.conv.weight", "stem.0.weight"),
    ("first_conv.bn.<bn>", "stem.1.<bn>"),
    ("blocks.0.conv.depth_conv.conv.weight", "first_block.dw.0.weight"),
    ("blocks.0.conv.depth_conv.bn.<bn>", "first_block.dw.1.<bn>"),
    ("blocks.0.conv.point_linear.conv.weight", "first_block.project.0.weight"),
    ("blocks.0.conv.point_linear.bn.<bn>", "first_block.project.1.<bn>"),
    ("blocks.<i>.conv.inverted_bottleneck.conv.conv.weight", "blocks.<i>.expand.conv.weight"),
    ("blocks.<i>.conv.inverted_bottleneck.bn.bn.<bn>", "blocks.<i>.expand.bn.<bn>"),
    ("blocks.<i>.conv.depth_conv.conv.<m>_matrix", "blocks.<i>.dw.transform_<m>"),
    ("blocks.<i>.conv.depth_conv.conv.conv.weight", "blocks.<i>.dw.conv.weight"),
    ("blocks.<i>.conv.depth_conv.bn.bn.<bn>", "blocks.<i>.dw.bn.<bn>"),
    ("blocks.<i>.conv.depth_conv.se.fc.<se>.<p>", "blocks.<i>.se.<se>.<p>"),
    ("blocks.<i>.conv.point_linear.conv.conv.weight", "blocks.<i>.project.conv.weight"),
    ("blocks.<i>.conv.point_linear.bn.bn.<bn>", "blocks.<i>.project.bn.<bn>"),
    ("final_expand_layer.conv.weight", "final_expand.0.weight"),
    ("final_expand_layer.bn.<bn>", "final_expand.1.<bn>"),
    ("feature_mix_layer.conv.weight", "feature_mix.0.weight"),
    ("classifier.linear.<p>", "classifier.<p>"),
)

#: hwnas keys OFA's network lacks, and what computes the same (OFA's feature mix has no bias)
_ZERO_FILLED = ("feature_mix.0.bias",)

#: renames OFA's own loader applies to a key it does not know: (old, new), tried in order
_ALIASES = ((".bn.bn.", ".bn."), (".conv.conv.weight", ".conv.weight"),
            (".linear.linear.", ".linear."), (".linear.", ".linear.linear."),
            ("bn.", "bn.bn."), ("conv.weight", "conv.conv.weight"))
_EXAMPLE = "blocks.1.conv.depth_conv.conv.conv.weight"


def _compile(template: str) -> tuple[re.Pattern, str]:
    """``template`` as a regex, and as a format string."""
    parts = re.split(r"<(\w+)>", template)
    rx = "".join(_SLOTS[p] if n % 2 else re.escape(p) for n, p in enumerate(parts))
    fmt = "".join(f"{{{p}}}" if n % 2 else p for n, p in enumerate(parts))
    return re.compile(rx), fmt


_FORWARD = [(_compile(o)[0], _compile(h)[1]) for o, h in KEY_RULES]
_BACKWARD = [(_compile(h)[0], _compile(o)[1]) for o, h in KEY_RULES]


def _rename(key: str, rules, shift: int) -> str | None:
    """``key`` by the first rule that matches it, the block index moved by ``shift``."""
    for rx, fmt in rules:
        m = rx.fullmatch(key)
        if m is not None:
            groups = m.groupdict()
            if "i" in groups:
                groups["i"] = int(groups["i"]) + shift
                if groups["i"] < 0:             # OFA's blocks.0 is the fixed first block
                    return None
            return fmt.format(**groups)
    return None


def to_hwnas_key(ofa_key: str) -> str | None:
    """The hwnas supernet's name of an OFA key (None: no rule covers it)."""
    return _rename(ofa_key, _FORWARD, -1)


def to_ofa_key(hwnas_key: str) -> str | None:
    """OFA's name of an hwnas supernet key (None: OFA's network has no such entry)."""
    return _rename(hwnas_key, _BACKWARD, +1)


def _current_name(key: str) -> str:
    """``key`` under OFA's current names (older releases' names read as OFA reads them)."""
    key = key.replace(".mobile_inverted_conv.", ".conv.")
    if to_hwnas_key(key) is not None:
        return key
    for old, new in _ALIASES:
        if old in key and to_hwnas_key(key.replace(old, new)) is not None:
            return key.replace(old, new)
    return key


def recognises(obj: Any) -> bool:
    """Whether a state dict (or ``{"state_dict": ...}``) read from a file has OFA's key names:
    its first key is one of them."""
    state = obj.get("state_dict") if isinstance(obj, Mapping) and "state_dict" in obj else obj
    first = next(iter(state), None) if isinstance(state, Mapping) else None
    return isinstance(first, str) and to_hwnas_key(_current_name(first)) is not None


def ofa_state_dict(obj: Any, where: str) -> dict[str, torch.Tensor]:
    """hwnas-keyed tensors of an OFA checkpoint object (``{"state_dict": ...}``, or the bare
    state_dict), in the file's order; the first key that fits no rule is named."""
    state = obj.get("state_dict") if isinstance(obj, Mapping) and "state_dict" in obj else obj
    if not isinstance(state, Mapping) or not state:
        raise DataError(f"{where} is not a Once-for-All checkpoint: no 'state_dict' mapping of "
                        "names to tensors")
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        name = to_hwnas_key(_current_name(key)) if isinstance(key, str) else None
        if name is None:
            raise DataError(f"{where}: key '{key}' does not fit Once-for-All's MobileNetV3 "
                            f"layout (keys like '{_EXAMPLE}')")
        if not torch.is_tensor(value):
            raise DataError(f"{where}: key '{key}' holds a {type(value).__name__}, not a tensor")
        if name in out:
            raise DataError(f"{where}: key '{key}' repeats an entry under an older OFA name")
        out[name] = value
    return out


def _need(state: Mapping[str, torch.Tensor], key: str, where: str, dims: int) -> tuple:
    t = state.get(key)
    if t is None:
        raise DataError(f"{where}: key '{to_ofa_key(key)}' of Once-for-All's MobileNetV3 "
                        "layout is missing")
    if t.dim() != dims:
        raise DataError(f"{where}: key '{to_ofa_key(key)}' has shape {tuple(t.shape)}, "
                        f"expected {dims} dimensions")
    return tuple(t.shape)


def infer_space(plugin, state: Mapping[str, torch.Tensor], where: str):
    """``(space, configuration name)``: the configuration of ``plugin`` (the space's) whose
    widths, classes and input channels the hwnas-keyed ``state`` has."""
    from hwnas.spaces import get_space

    stem = _need(state, "stem.0.weight", where, 4)
    n_stages = len(plugin.space.strides)
    depth = max(plugin.space.depths)
    seen = {"in_chans": stem[1], "stem_chs": stem[0],
            "widths": tuple(_need(state, f"blocks.{s * depth}.project.conv.weight", where, 4)[0]
                            for s in range(n_stages)),
            "final_chs": _need(state, "final_expand.0.weight", where, 4)[0],
            "mix_chs": _need(state, "feature_mix.0.weight", where, 4)[0],
            "num_classes": _need(state, "classifier.weight", where, 2)[0]}
    have = []
    for cfg in plugin.configs:
        space = get_space(f"{plugin.name}-{cfg}")
        if all(getattr(space, k) == v for k, v in seen.items()):
            return space, f"{plugin.name}-{cfg}"
        have.append(f"{plugin.name}-{cfg} (widths {space.widths}, {space.num_classes} classes, "
                    f"{space.in_chans}-channel input)")
    raise DataError(f"{where}: an OFA MobileNetV3 supernet of widths {seen['widths']}, "
                    f"{seen['num_classes']} classes and {seen['in_chans']}-channel input fits "
                    f"no configuration of '{plugin.name}': {'; '.join(have)}")


def ofa_supernet(plugin, obj: Any, where: str) -> tuple[Any, torch.nn.Module, str]:
    """``(space, supernet, configuration name)`` of the object read from OFA's file at
    ``where``, the supernet built by ``plugin`` and in eval mode."""
    state = ofa_state_dict(obj, where)
    space, config = infer_space(plugin, state, where)
    net = plugin.build_supernet(space)
    own = net.state_dict()
    for name, value in state.items():
        if name not in own or name in _ZERO_FILLED:
            raise DataError(f"{where}: key '{to_ofa_key(name)}' does not fit the {config} "
                            "supernet")
        if value.shape != own[name].shape:
            raise DataError(f"{where}: key '{to_ofa_key(name)}' has shape "
                            f"{tuple(value.shape)}, the {config} supernet's is "
                            f"{tuple(own[name].shape)}")
    missing = [k for k in own if k not in state and k not in _ZERO_FILLED]
    if missing:
        raise DataError(f"{where}: key '{to_ofa_key(missing[0])}' of the {config} supernet is "
                        "missing")
    full = {**state, **{k: torch.zeros_like(own[k]) for k in _ZERO_FILLED}}
    net.load_state_dict({k: v.to(own[k].dtype) for k, v in full.items()})
    return space, net.eval(), config
