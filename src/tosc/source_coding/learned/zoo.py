"""Finding trained codecs: by name, by the model id in a .tosc header, or all of them."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from ...checkpoint import checkpoint_index
from ...errors import UnknownNameError
from ...zoo import codec_path, zoo_dir
from .codec import LearnedCodec

__all__ = ["CodecEntry", "list_codecs", "family_codecs", "damaged_codecs", "find_codec_by_id", "resolve_codec"]


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


def family_codecs(variant: str, folder: Path | None = None) -> list[CodecEntry]:
    """The zoo's single-rate checkpoints of the old family of ``variant`` (mse-only, tosc-sr,
    task-only), in index order."""
    return [e for e in list_codecs(folder) if e.variant == variant and e.arch == "tiny-image-codec"]


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


def find_codec_by_id(model_id: bytes, folder: Path | None = None):
    """The zoo's codec whose model id is ``model_id`` (a .tosc header's), else UnknownNameError.

    A model id is a digest of the loaded weights, so finding one used to load codec after codec
    (all 29 shipped ones for ``tosc-sr-v3``: 15 s and 1 GB for ``tosc decode``). The ids are
    remembered beside the zoo's index, per file identity (size, mtime, ctime, inode), so a file
    is loaded again only when it changed, and the one that matches is loaded once more to
    confirm."""
    import json

    from ...checkpoint import index_cache_path
    from ...io import atomic_write_json

    folder = folder or zoo_dir() / "codecs"
    index = checkpoint_index(folder)
    entries = {e.path.name: e for e in list_codecs(folder)}
    ids_path = index_cache_path(folder).with_suffix(".ids.json")
    try:
        known = {name: v for name, v in json.loads(ids_path.read_text()).items()
                 if name in index and v.get("identity") == index[name]["identity"]}
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        known = {}
    wanted = model_id.hex()
    # first the file remembered with this id, then those not remembered yet
    order = [n for n in entries if known.get(n, {}).get("model_id") == wanted] + [n for n in entries if n not in known]
    found, changed = None, False
    for name in order:
        codec = load_any_codec(entries[name].path)
        changed |= known.get(name, {}).get("model_id") != codec.model_id.hex()
        known[name] = {"identity": index[name]["identity"], "model_id": codec.model_id.hex()}
        if codec.model_id == model_id:
            found = codec
            break
    if changed:
        try:
            atomic_write_json(ids_path, known)
        except Exception:  # noqa: BLE001 - a cache that cannot be written is only slower
            pass
    if found is None:
        raise UnknownNameError(f"no installed model has id {wanted}; pass --model")
    return found
