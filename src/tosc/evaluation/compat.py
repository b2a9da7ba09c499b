"""Which systems can code which images, and the default systems of a data set, from metadata.

What a system can code is read from its registry entry (``family``, ``source``) and from the
configuration stored in its model files (the zoo's checkpoint index, no weights loaded):

- ``classic``: grey or colour, of the sizes the codec takes (its ``min_side`` / ``max_side``;
  VVC's 4:2:0 input also needs an even width and height);
- ``learned`` (the first learned family): the image shape its zoo models were trained on
  (1 x 28 x 28 for the shipped ones);
- ``learned-v3``: any size from 16 x 16 up, with the channel count of its checkpoint;
- ``jscc``: the channel count and image size in its checkpoint.

A system whose model files are not installed raises :class:`~tosc.errors.UnknownNameError`
here, as building it would.

The default selection (:func:`default_systems`) of a data set is the full grid's: each classic
codec and learned family, the analog systems, and the proposed codecs over the bound links, but
only systems trained on the kind of image the data set holds (metadata ``trained_on``: "items"
for single Fashion-MNIST items, "scenes" for multi-object scenes), that can code its images and
whose models and tools are installed. Images of any other data set (a user's folder, CIFAR-10)
are neither: every learned system that can code them is taken, whatever it was trained on. For
scenes and other images, every classic codec is taken both whole-file and payload-only (headers
weigh less on larger images, and both are reported).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Callable

from .. import registry
from ..errors import IncompatibleSystemError, UnknownNameError

__all__ = ["ImageSupport", "image_support", "check_codes", "data_kind", "default_systems"]


@dataclass(frozen=True)
class ImageSupport:
    """The images a system codes: ``channels`` (None: any) and ``hw`` (height, width; None: any
    size from ``min_side`` to ``max_side`` pixels a side, both even where ``even_sides``)."""

    channels: int | None = None
    hw: tuple[int, int] | None = None
    min_side: int = 1
    max_side: int | None = None
    even_sides: bool = False

    def accepts(self, shape: tuple[int, int, int]) -> bool:
        c, h, w = shape
        if self.hw is not None:
            return (self.channels is None or self.channels == c) and self.hw == (h, w)
        return ((self.channels is None or self.channels == c) and min(h, w) >= self.min_side
                and (self.max_side is None or max(h, w) <= self.max_side)
                and not (self.even_sides and (h % 2 or w % 2)))

    def describe(self) -> str:
        if self.hw is not None:
            size = f"of {self.hw[0]}x{self.hw[1]}"
        elif self.min_side <= 1 and self.max_side is None:
            size = "of any size"
        else:
            size = (f"with sides of at least {self.min_side} pixels" if self.max_side is None
                    else f"with sides of {self.min_side} to {self.max_side} pixels")
        if self.hw is None and self.even_sides:
            size += ", width and height even"
        channels = "images" if self.channels is None else f"{self.channels}-channel images"
        return f"{channels} {size}"


def _index(folder) -> dict[str, dict]:
    from ..checkpoint import checkpoint_index

    return checkpoint_index(folder) if folder.is_dir() else {}


def image_support(system: str) -> ImageSupport:
    """The images ``system`` can code (see the module docstring). Raises UnknownNameError for an
    unknown system or one whose model files are not installed."""
    from ..zoo import zoo_dir

    meta = registry.get("system", system).meta
    family, source = meta.get("family"), meta.get("source")
    if family == "classic":
        from ..source_coding import classic

        codec = classic.get_codec(source)
        return ImageSupport(min_side=codec.min_side, max_side=codec.max_side,
                            even_sides=getattr(codec, "even_sides", False))
    if family == "learned":
        shapes = {(cfg["in_channels"], tuple(cfg["image_hw"])) for info in _index(zoo_dir() / "codecs").values()
                  if info.get("variant") == source and info.get("arch", "tiny-image-codec") == "tiny-image-codec"
                  for cfg in [((info.get("config") or {}).get("codec") or {})] if "image_hw" in cfg}
        if not shapes:
            raise UnknownNameError(f"{system}: no trained {source} codecs in the model zoo")
        if len(shapes) > 1:  # models of one family code one shape; mixed files code none reliably
            raise IncompatibleSystemError(f"{system}: the zoo's {source} models were trained on different image "
                                          f"shapes ({sorted(shapes)})")
        ((channels, hw),) = shapes
        return ImageSupport(int(channels), (int(hw[0]), int(hw[1])))
    if family == "learned-v3":
        info = _index(zoo_dir() / "codecs").get(f"{source}.pt")
        if info is None or "error" in info:
            raise UnknownNameError(f"{system}: no trained codec {source} in the model zoo")
        from ..source_coding.learned.conv import MIN_IMAGE_SIDE

        return ImageSupport(int(((info.get("config") or {}).get("codec") or {})["in_channels"]), min_side=MIN_IMAGE_SIDE)
    if family == "jscc":
        info = _index(zoo_dir() / "jscc").get(f"{source}.pt")
        if info is None or "error" in info:
            raise UnknownNameError(f"{system}: no trained JSCC model {source} in the model zoo")
        model = ((info.get("config") or {}).get("model") or {})
        return ImageSupport(int(model["in_channels"]), tuple(int(v) for v in model["image_hw"]))
    return ImageSupport()  # a family this module does not know: the system itself will say


def check_codes(system: str, shape: tuple[int, int, int], dataset: str = "") -> None:
    """Raise :class:`IncompatibleSystemError` naming ``system`` and the image shape (C x H x W)
    when the system cannot code such images (UnknownNameError when it is not installed)."""
    support = image_support(system)
    if not support.accepts(tuple(shape)):
        where = f" of {dataset}" if dataset else ""
        raise IncompatibleSystemError(
            f"{system} cannot code the {'x'.join(map(str, shape))} images{where}: it codes only "
            f"{support.describe()}")


def data_kind(data) -> str:
    """"scenes" for a :class:`~tosc.data.scenes.SceneSet`, else "items" (the ``trained_on`` values)."""
    from ..data.scenes import is_scene_set

    return "scenes" if is_scene_set(data) else "items"


def _in_full_grid(meta, kind: str) -> bool:
    """Whether a system with registry metadata ``meta`` is in the default grid of images of
    ``kind``: "items", "scenes" or "other" (:func:`default_systems`)."""
    family, link = meta.get("family"), meta.get("link")
    if family == "classic":
        # single items: payload only, as the grid always ran; scenes and other images: whole file and payload
        return link == "ldpc" and (kind != "items" or meta.get("measure") == "payload")
    if kind != "other" and meta.get("trained_on", "items") != kind:
        return False
    return link == "ldpc" or meta.get("mode") == "analog" or (bool(meta.get("proposed")) and meta.get("mode") == "ideal")


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def default_systems(dataset: str = "fashion-mnist", split: str = "test", *,
                    say: Callable[[str], None] | None = _to_stderr, root: str | None = None) -> tuple[str, ...]:
    """The systems a full evaluation of ``dataset`` runs (see the module docstring), sorted by name.
    Systems not installed (model files, or a tool such as the VVenC encoder: each candidate is
    built once) or unable to code the images are left out, each with a line to ``say`` (standard
    error by default, so that a shell's ``$(...)`` around a selection takes the names alone)."""
    from ..data import load_dataset
    from ..errors import DependencyMissingError
    from ..systems import build_system

    data = load_dataset(dataset, split, root=root, limit=1)
    kind, shape = data_kind(data), tuple(data.images.shape[1:])
    if kind == "items" and dataset != "fashion-mnist":  # the item-trained systems learnt Fashion-MNIST only
        kind = "other"
    chosen = []
    for name in registry.names("system"):
        if not _in_full_grid(registry.meta_of("system", name), kind):
            continue
        try:
            check_codes(name, shape, dataset)
            build_system(name)
        except (UnknownNameError, IncompatibleSystemError, DependencyMissingError) as exc:
            if say is not None:
                why = str(exc)
                if why.startswith(name):  # "X cannot code ..." -> "X: it cannot code ..."
                    why = "it" + why[len(name):]
                say(f"(leaving out {name}: {why})")
            continue
        chosen.append(name)
    return tuple(chosen)
