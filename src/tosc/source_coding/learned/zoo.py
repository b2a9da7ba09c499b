"""Finding trained codecs: by name, by the model id in a .tosc header, or all of them."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from ...checkpoint import checkpoint_index
from ...errors import UnknownNameError
from ...zoo import codec_path, zoo_dir
from .codec import LearnedCodec

__all__ = ["CodecEntry", "list_codecs", "damaged_codecs", "find_codec_by_id", "resolve_codec"]


@dataclass
class CodecEntry:
    name: str
    path: Path
    variant: str
    lambda_p: float
    lambda_s: float
    metrics: dict
    arch: str = "tiny-image-codec"  # "conv-codec-v3" for codec v3 (one variable-rate checkpoint)


def list_codecs(folder: Path | None = None) -> list[CodecEntry]:
    """Codec checkpoints of the zoo, read from its index (tosc.checkpoint.checkpoint_index)."""
    folder = folder or zoo_dir() / "codecs"
    entries = []
    for name, info in checkpoint_index(folder).items():
        path = folder / name
        if "error" in info or info.get("kind") != "codec":
            # one bad file must not hide the others, nor vanish unseen (see damaged_codecs)
            problem = info.get("error") or f"{path}: is a {info.get('kind')} checkpoint, expected codec"
            warnings.warn(f"skipping {problem}", stacklevel=2)
            continue
        train = (info.get("config") or {}).get("train", {})
        entries.append(CodecEntry(path.stem, path, info.get("variant") or "?", train.get("lambda_p", float("nan")),
                                  train.get("lambda_s", float("nan")), info.get("metrics") or {},
                                  info.get("arch") or "tiny-image-codec"))
    return entries


def damaged_codecs(folder: Path | None = None) -> list[str]:
    """File names in the codec zoo that cannot be read as codecs: a system built from the zoo
    records them in its results, since it runs with fewer models than were installed."""
    folder = folder or zoo_dir() / "codecs"
    return [name for name, info in checkpoint_index(folder).items() if "error" in info or info.get("kind") != "codec"]


def load_any_codec(path: Path, device: str = "cpu"):
    """The codec in ``path``, whichever architecture its checkpoint holds."""
    from ...checkpoint import load_checkpoint
    from .conv_codec import ARCH as CONV_ARCH, ConvLearnedCodec

    if load_checkpoint(path, kind="codec").get("arch") == CONV_ARCH:
        return ConvLearnedCodec.load(path, device)
    return LearnedCodec.load(path, device)


def resolve_codec(name_or_path: str, device: str = "cpu"):
    """A codec (:class:`LearnedCodec` or codec v3's ``ConvLearnedCodec``) by zoo name or path."""
    path = Path(name_or_path)
    if path.suffix == ".pt" or path.exists():
        return load_any_codec(path, device)
    if codec_path(name_or_path).exists():  # a damaged zoo file says so, rather than "unknown model"
        return load_any_codec(codec_path(name_or_path), device)
    names = [e.name for e in list_codecs()]
    if name_or_path not in names:
        raise UnknownNameError(f"unknown model {name_or_path!r}; known: {', '.join(names) or 'none (train one with tosc train)'}")
    return load_any_codec(codec_path(name_or_path), device)


def find_codec_by_id(model_id: bytes):
    for entry in list_codecs():
        codec = load_any_codec(entry.path)
        if codec.model_id == model_id:
            return codec
    raise UnknownNameError(f"no installed model has id {model_id.hex()}; pass --model")
