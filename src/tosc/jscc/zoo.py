"""The shipped analog models (``src/tosc/zoo/jscc/<name>.pt``, or ``$TOSC_ZOO/jscc``), found by name."""

from __future__ import annotations

import functools
from pathlib import Path

from ..checkpoint import load_checkpoint
from ..errors import UnknownNameError
from ..zoo import zoo_dir
from .model import DeepJSCC, JSCCConfig

__all__ = ["jscc_path", "load_jscc", "jscc_names", "strip_training_state", "ship_jscc"]

CHECKPOINT_KIND = "jscc"
ARCH = "deep-jscc"


def jscc_path(name: str) -> Path:
    return zoo_dir() / "jscc" / f"{name}.pt"


def jscc_names() -> list[str]:
    """The models the registered analog systems send with (their ``source`` metadata)."""
    from .. import registry

    return sorted({registry.get("system", name).meta["source"] for name in registry.select("system", family="jscc")})


def load_jscc(name_or_path: str | Path) -> tuple[DeepJSCC, dict]:
    """A trained model in eval mode with frozen weights, and its checkpoint (config, metrics, variant)."""
    path = Path(name_or_path)
    if path.suffix != ".pt":
        path = jscc_path(str(name_or_path))
        if not path.exists():
            known = ", ".join(jscc_names()) or "none (run scripts/train_jscc.py)"
            raise UnknownNameError(f"no trained JSCC model {name_or_path!r}; known: {known}")
    return _load(str(path.resolve()))


@functools.lru_cache(maxsize=8)
def _load(path: str) -> tuple[DeepJSCC, dict]:
    ckpt = load_checkpoint(path, kind=CHECKPOINT_KIND, arch=ARCH)
    model = DeepJSCC(JSCCConfig.from_dict(ckpt["config"]["model"]))
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    info = {k: v for k, v in ckpt.items() if k != "state_dict"}
    return model, info


def strip_training_state(path: str | Path) -> None:
    """Drop optimizer and scheduler state from a finished JSCC checkpoint (see
    :func:`tosc.training.strip_training_state`)."""
    from ..training import strip_training_state as strip

    strip(path, kind=CHECKPOINT_KIND, arch=ARCH)


def ship_jscc(work: str | Path, name: str) -> Path:
    """Copy a finished training checkpoint to the zoo as model ``name``, without optimizer state
    (weights, config, metrics and history), atomically; returns the zoo path."""
    import shutil

    shipped = jscc_path(name)
    shipped.parent.mkdir(parents=True, exist_ok=True)
    tmp = shipped.with_suffix(".tmp")
    shutil.copyfile(work, tmp)
    strip_training_state(tmp)
    tmp.replace(shipped)
    return shipped
