"""Finding trained codecs: by name, by the model id in a .tosc header, or all of them."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from ...checkpoint import load_checkpoint
from ...errors import CorruptFileError, UnknownNameError
from ...zoo import codec_path, zoo_dir
from .codec import LearnedCodec

__all__ = ["CodecEntry", "list_codecs", "find_codec_by_id", "resolve_codec"]


@dataclass
class CodecEntry:
    name: str
    path: Path
    variant: str
    lambda_p: float
    lambda_s: float
    metrics: dict


def list_codecs(folder: Path | None = None) -> list[CodecEntry]:
    folder = folder or zoo_dir() / "codecs"
    entries = []
    for path in sorted(folder.glob("*.pt")):
        try:
            ckpt = load_checkpoint(path, kind="codec")
        except CorruptFileError as exc:  # one bad file must not hide the others, nor vanish unseen
            warnings.warn(f"skipping {exc}", stacklevel=2)
            continue
        train = ckpt["config"].get("train", {})
        entries.append(CodecEntry(path.stem, path, ckpt.get("variant", "?"), train.get("lambda_p", float("nan")),
                                  train.get("lambda_s", float("nan")), ckpt.get("metrics", {})))
    return entries


def resolve_codec(name_or_path: str, device: str = "cpu") -> LearnedCodec:
    path = Path(name_or_path)
    if path.suffix == ".pt" or path.exists():
        return LearnedCodec.load(path, device)
    if codec_path(name_or_path).exists():  # a damaged zoo file says so, rather than "unknown model"
        return LearnedCodec.load(name_or_path, device)
    names = [e.name for e in list_codecs()]
    if name_or_path not in names:
        raise UnknownNameError(f"unknown model {name_or_path!r}; known: {', '.join(names) or 'none (train one with tosc train)'}")
    return LearnedCodec.load(name_or_path, device)


def find_codec_by_id(model_id: bytes) -> LearnedCodec:
    for entry in list_codecs():
        codec = LearnedCodec.load(entry.path)
        if codec.model_id == model_id:
            return codec
    raise UnknownNameError(f"no installed model has id {model_id.hex()}; pass --model")
