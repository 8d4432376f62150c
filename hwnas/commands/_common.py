"""Argument helpers shared by several verbs (arch/space resolution, device options)."""
from __future__ import annotations

import contextlib
from pathlib import Path

from hwnas._data import is_checkpoint_file
from hwnas._io import read_json
from hwnas.errors import ArchError, DataError, HwnasError
from hwnas.spaces import DEFAULT_SPACE, get_space, space_from_config, space_names

__all__ = ["add_space_args", "add_device_args", "add_force_arg", "resolve_space", "resolve_arch",
           "connect_runtime", "space_help", "default_to_searched", "as_flags"]


def space_help(what: str = "search space") -> str:
    """``--space``'s help: the default and every name a space is known by."""
    return f"{what} (default {DEFAULT_SPACE}): {', '.join(space_names(configurations=True))}"


def add_force_arg(p, kind: str) -> None:
    """``--force`` of a verb whose ``--out`` folder is replaced as a whole (``hwnas._outputs``)."""
    p.add_argument("--force", action="store_true",
                   help=f"write the {kind} into --out even when that folder holds files hwnas "
                        f"did not write: they are kept beside it, and only a file named like "
                        f"one of the {kind}'s own (arch.json, ...) is replaced. Without it such "
                        f"a folder is refused, naming the first such file; nothing hwnas did "
                        f"not write is ever deleted")


def add_space_args(p) -> None:
    p.add_argument("--space", help=space_help())
    p.add_argument("--checkpoint", metavar="DIR|FILE",
                   help="supernet checkpoint: weights and space config come from it (a folder "
                        "or shipped name, or a .pth file of Once-for-All's published format)")
    p.add_argument("--num-classes", type=int, help="classifier size (default: the space's)")
    p.add_argument("--in-chans", type=int, help="input channels (default: the space's)")
    p.add_argument("--width-mult", type=float, help="width multiplier (spaces that have one)")
    p.add_argument("--resolutions", help="comma-separated input sizes, e.g. 128,160,192,224")


def add_device_args(p, many_keys: bool = False) -> None:
    p.add_argument("--rpc", metavar="HOST:PORT", help="TVM RPC server of the device")
    p.add_argument("--tracker", metavar="HOST:PORT", help="TVM RPC tracker")
    if many_keys:   # several device kinds in one command, e.g. --key rpi4 --key jetson-orin
        p.add_argument("--key", action="append", metavar="KEY[=TARGET]",
                       help="device key registered at the tracker; repeat for several kinds")
    else:
        p.add_argument("--key", help="device key registered at the tracker")


def _space_overrides(args) -> dict:
    out = {}
    for name in ("num_classes", "in_chans", "width_mult"):
        if getattr(args, name, None) is not None:
            out[name] = getattr(args, name)
    if getattr(args, "resolutions", None):
        try:
            out["resolutions"] = [int(v) for v in args.resolutions.split(",")]
        except ValueError:
            raise HwnasError(f"--resolutions must be comma-separated integers, got '{args.resolutions}'") from None
    return out


def _check_config(cfg, where: str, error) -> None:
    """A space configuration read from a file, its errors naming the file and the field."""
    try:
        space_from_config(cfg)
    except HwnasError as exc:
        raise error(f"{where}: {exc}") from None


def resolve_space(args, arch_json: dict | None = None):
    """Space config precedence: checkpoint (its meta, or a Once-for-All file's shapes) >
    arch.json's space_config > defaults; flags override."""
    cfg: dict | None = None
    if is_checkpoint_file(getattr(args, "checkpoint", None)):
        from hwnas.train.checkpoint import checkpoint_space

        cfg = checkpoint_space(args.checkpoint).config()     # Once-for-All's file format
    elif getattr(args, "checkpoint", None):
        from hwnas._data import checkpoint_dir

        ckpt = checkpoint_dir(args.checkpoint)
        meta = read_json(ckpt / "meta.json", "checkpoint metadata", DataError)
        cfg = meta.get("space") if isinstance(meta, dict) else None
        if not isinstance(cfg, dict):
            raise DataError(f"{ckpt / 'meta.json'}: no 'space' object")
        _check_config(cfg, f"{ckpt / 'meta.json'}: field 'space'", DataError)
    elif arch_json and isinstance(arch_json.get("space_config"), dict):
        cfg = arch_json["space_config"]
    if cfg is not None:
        cfg = {**cfg, **_space_overrides(args)}
        return space_from_config(cfg)
    return get_space(args.space or DEFAULT_SPACE, **_space_overrides(args))


def default_to_searched(args) -> None:
    """Without ``--checkpoint`` or any space option, a plain space name (or none) means the
    configuration that deploy searches: the space's shipped checkpoint's. (Its class defaults
    are ImageNet's, which the shipped checkpoint is not.)"""
    from hwnas.spaces import resolve_space_name

    if args.checkpoint is None and not any(
            getattr(args, k, None) for k in ("resolutions", "width_mult", "num_classes",
                                             "in_chans")):
        plugin, config = resolve_space_name(args.space or DEFAULT_SPACE)
        if config is None:
            args.checkpoint = plugin.default_checkpoint


def resolve_arch(text: str) -> tuple[dict | None, str]:
    """``text`` is an arch string or a path to an ``arch.json``; returns (json or None, string)."""
    p = Path(text)
    if text.endswith(".json") or p.is_file():
        obj = read_json(p, "arch file", ArchError)
        if not isinstance(obj, dict) or not isinstance(obj.get("arch"), str):
            raise ArchError(f"{p}: expected an object with an 'arch' string")
        if "space_config" in obj:
            _check_config(obj["space_config"], f"{p}: field 'space_config'", ArchError)
        return obj, obj["arch"]
    return None, text


def connect_runtime(target, args):
    from hwnas.runtime import connect

    return connect(target, rpc=getattr(args, "rpc", None), tracker=getattr(args, "tracker", None),
                   key=getattr(args, "key", None))


@contextlib.contextmanager
def as_flags(words: dict[str, str]):
    """The front door's errors name its keyword arguments (``force=True``); within this block
    each such word is replaced by the CLI flag that sets it (``--force``)."""
    try:
        yield
    except HwnasError as exc:
        text = str(exc)
        for word, flag in words.items():
            text = text.replace(word, flag)
        exc.args = (text,)
        raise
