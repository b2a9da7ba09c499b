"""Multi-object scenes made from Fashion-MNIST items (``fashion-scenes``, ``fashion-scenes-rgb``).

A scene is a square canvas (64 x 64 by default) holding 1 to 4 Fashion-MNIST items, each
resized to a random side of 30-55% of the canvas and placed at a random position so that
any two items' boxes share at most ``MAX_OVERLAP`` of the smaller one's area. Items are
pasted in order through their filled masks (pixel > 0.1, holes filled, as in the
segmentation task), later items on top. Every scene comes with each visible item's class,
tight box and mask; ``labels`` holds the class of the item with the largest visible area,
so code written for one label per image still has a meaningful one.

Split purity: train and validation scenes use only items of Fashion-MNIST's train and
validation splits (the same seeded carve-out as ``fashion-mnist``), test scenes only items
of the official test file; each scene records its items' indices in the official file
(``source_indices``) and :func:`render_scenes` rebuilds the pixels from those indices.

Everything is a pure function of (split, seed, validation fraction, size, count, colour):
the layout is drawn scene by scene from one ``numpy`` generator, so the first ``n`` scenes
do not depend on how many are made. Items are resized in one batch per item size and the
scenes painted in chunks of ``RENDER_CHUNK``; results stay cached in the process (seconds
for the 20,000 training scenes on one thread, most of it filling the items' masks).

The RGB variant colours each item (random hue, saturation 0.5-1, value 0.75-1, times the
item's grey level) and lays it on a procedural background: a dim random colour modulated
by a sinusoidal grating and smooth value noise, so that colour and texture are exercised.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .. import registry
from ..errors import ConfigError, DataError
from .base import ImageSet, split_indices
from .fashion_mnist import CLASSES, _read_all, find_root

__all__ = [
    "SCENE_COUNTS", "MAX_ITEMS", "DEFAULT_SIZE", "SCALE_RANGE", "MAX_OVERLAP", "SceneSet", "SceneLayout",
    "make_scenes", "scene_layout", "draw_layout", "render_scenes", "item_masks_28", "is_scene_set", "scene_summary",
]

SCENE_COUNTS = {"train": 20000, "validation": 2000, "test": 4000}
MAX_ITEMS = 4
DEFAULT_SIZE = 64
MIN_SIZE = 32
SCALE_RANGE = (0.30, 0.55)  # item side as a fraction of the canvas side
MAX_OVERLAP = 0.2  # box intersection over the smaller box, for any two items
PLACEMENT_TRIES = 30  # an item that finds no free place in this many draws is left out
FOREGROUND_THRESHOLD = 0.1  # as tosc.tasks.segmentation (that module imports data, not the reverse)


@dataclass
class SceneSet(ImageSet):
    """Scenes of one split: an :class:`ImageSet` plus per-item annotations (K = ``MAX_ITEMS`` slots,
    in paste order; unused slots have class -1).

    images: float32 N x C x S x S in [0, 1] (C = 1, or 3 for the RGB variant).
    labels: int64 N, the class of the item with the largest visible area.
    indices: int64 N, the scene's position in the split.
    object_classes: int64 N x K, class 0..9 or -1.
    boxes: float32 N x K x 4, tight box of the visible mask as (x0, y0, x1, y1) in pixels, with
        x1, y1 one past the last pixel (torchvision's convention); zeros in unused slots.
    instance_map: uint8 N x S x S, 0 for background, k + 1 where item k is visible.
    source_indices: int64 N x K, the item's index in the official Fashion-MNIST file named by
        ``source_file`` ("train" for train and validation scenes, "test" for test scenes); -1 pads.
    """

    object_classes: torch.Tensor | None = None
    boxes: torch.Tensor | None = None
    instance_map: torch.Tensor | None = None
    source_indices: torch.Tensor | None = None
    source_file: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        n, _, h, w = self.images.shape
        for field, shape in (("object_classes", (n, MAX_ITEMS)), ("boxes", (n, MAX_ITEMS, 4)),
                             ("instance_map", (n, h, w)), ("source_indices", (n, MAX_ITEMS))):
            value = getattr(self, field)
            if value is None or tuple(value.shape) != shape:
                got = None if value is None else tuple(value.shape)
                raise DataError(f"{self.name}: {field} must have shape {shape}, got {got}")

    def subset(self, limit: int | None) -> "SceneSet":
        if limit is None:
            return self
        if limit <= 0:
            raise ConfigError(f"limit must be positive, got {limit}")
        sliced = {f: getattr(self, f)[:limit] for f in
                  ("images", "labels", "indices", "object_classes", "boxes", "instance_map", "source_indices")}
        return dataclasses.replace(self, **sliced)

    @property
    def present(self) -> torch.Tensor:
        """Multi-hot targets, bool N x n_classes: which classes appear in each scene."""
        out = torch.zeros(len(self), len(self.classes), dtype=torch.bool)
        valid = self.object_classes >= 0
        rows = torch.arange(len(self))[:, None].expand_as(self.object_classes)
        out[rows[valid], self.object_classes[valid]] = True
        return out

    @property
    def masks(self) -> torch.Tensor:
        """Foreground masks (bool N x S x S): pixels covered by any item."""
        return self.instance_map > 0

    def item_mask(self, k: int) -> torch.Tensor:
        """Visible mask of slot k (bool N x S x S)."""
        return self.instance_map == k + 1

    def detection_targets(self) -> list[dict[str, torch.Tensor]]:
        """One dict per scene, ``{"boxes": float32 M x 4 (x0, y0, x1, y1), "labels": int64 M}``
        with class numbers 0..9 (the format of torchmetrics' MeanAveragePrecision)."""
        out = []
        for classes, boxes in zip(self.object_classes, self.boxes):
            keep = classes >= 0
            out.append({"boxes": boxes[keep].clone(), "labels": classes[keep].clone()})
        return out


def is_scene_set(data: ImageSet) -> bool:
    return isinstance(data, SceneSet)


def scene_summary(data: SceneSet) -> dict:
    """Items per scene (histogram 1..K), objects per class and box sides (pixels) of one split."""
    valid = data.object_classes >= 0
    per_scene = valid.sum(1)
    sides = (data.boxes[..., 2:] - data.boxes[..., :2])[valid]
    return {
        "items_per_scene": {str(k): int((per_scene == k).sum()) for k in range(1, MAX_ITEMS + 1)},
        "objects_per_class": {c: int((data.object_classes == i).sum()) for i, c in enumerate(data.classes)},
        "box_side_px": {"min": float(sides.min()), "mean": float(sides.mean()), "max": float(sides.max())},
    }


@dataclass(frozen=True)
class SceneLayout:
    """Where each item goes (numpy arrays, N scenes x K slots; -1 / 0 in unused slots).

    source_indices: int64, index into the official file; sides: int64, the item's square side
        in pixels; ys, xs: int64, top-left corner; colours: float32 N x K x 3 (RGB only);
    background: float32 N x 8 (RGB only): base colour (3), grating frequency (cycles per pixel),
    angle, phase, grating gain and noise gain; noise: float32 N x 8 x 8 (RGB only), the coarse
    value noise that :func:`render_scenes` upsamples.
    """

    size: int
    rgb: bool
    source_indices: np.ndarray
    sides: np.ndarray
    ys: np.ndarray
    xs: np.ndarray
    colours: np.ndarray | None = None
    background: np.ndarray | None = None
    noise: np.ndarray | None = None


@functools.lru_cache(maxsize=2)
def _filled_masks(root: str, which: str) -> np.ndarray:
    """Filled foreground masks (bool N x 28 x 28) of every item of an official file."""
    return item_masks_28(_read_all(find_root(root or None).resolve())[f"{which}_images"][:, 0])


def item_masks_28(items: np.ndarray, threshold: float = FOREGROUND_THRESHOLD) -> np.ndarray:
    """Filled foreground masks (bool N x h x w) of uint8 item images N x h x w."""
    from scipy import ndimage

    raw = items.astype(np.float32) / 255.0 > threshold
    # one labelled pass over the whole stack: 3-D structure with no links between items
    structure = np.zeros((3, 3, 3), bool)
    structure[1] = ndimage.generate_binary_structure(2, 1)
    return ndimage.binary_fill_holes(raw, structure=structure)


def _tight_boxes(masks: np.ndarray) -> np.ndarray:
    """(y0, x0, y1, x1) of each mask (N x h x w), one past the end; an empty mask gives zeros."""
    rows, cols = masks.any(2), masks.any(1)
    h, w = masks.shape[1:]
    y0, x0 = rows.argmax(1), cols.argmax(1)
    y1, x1 = h - rows[:, ::-1].argmax(1), w - cols[:, ::-1].argmax(1)
    empty = ~rows.any(1)
    out = np.stack([y0, x0, y1, x1], 1)
    out[empty] = 0
    return out


def draw_layout(n: int, pool: np.ndarray, item_boxes: np.ndarray, *, size: int = DEFAULT_SIZE, rgb: bool = False,
                seed: int = 0) -> SceneLayout:
    """Draw ``n`` scene layouts from the items ``pool`` (indices into the official file).

    item_boxes: int N_file x 4, each item's tight box (y0, x0, y1, x1) on its 28 x 28 image, used
    for the overlap bound. Items are taken in the order of seeded permutations of the pool
    (each item is used once before any is used twice).
    """
    if n <= 0:
        raise ConfigError(f"the number of scenes must be positive, got {n}")
    if size < MIN_SIZE:
        raise ConfigError(f"scenes need a canvas of at least {MIN_SIZE} pixels, got {size}")
    if len(pool) == 0:
        raise DataError("no items to make scenes from")
    rng = np.random.default_rng(seed)
    order = rng.permutation(pool)
    cursor = 0
    src = np.full((n, MAX_ITEMS), -1, np.int64)
    sides = np.zeros((n, MAX_ITEMS), np.int64)
    ys = np.zeros((n, MAX_ITEMS), np.int64)
    xs = np.zeros((n, MAX_ITEMS), np.int64)
    smin, smax = (max(8, int(round(f * size))) for f in SCALE_RANGE)
    for i in range(n):
        placed: list[np.ndarray] = []  # (y0, x0, y1, x1) on the canvas, float
        slot = 0
        for _ in range(rng.integers(1, MAX_ITEMS + 1)):
            if cursor == len(order):
                order, cursor = rng.permutation(pool), 0
            item = order[cursor]
            cursor += 1
            side = int(rng.integers(smin, smax + 1))
            corners = rng.integers(0, size - side + 1, size=(PLACEMENT_TRIES, 2))
            box28 = item_boxes[item] * (side / 28.0)
            boxes = np.concatenate([corners, corners], 1) + box28  # tries x 4
            ok = np.ones(PLACEMENT_TRIES, bool)
            area = (box28[2] - box28[0]) * (box28[3] - box28[1])
            for other in placed:
                ih = np.maximum(np.minimum(boxes[:, 2], other[2]) - np.maximum(boxes[:, 0], other[0]), 0)
                iw = np.maximum(np.minimum(boxes[:, 3], other[3]) - np.maximum(boxes[:, 1], other[1]), 0)
                smaller = min(area, (other[2] - other[0]) * (other[3] - other[1]))
                ok &= ih * iw <= MAX_OVERLAP * max(smaller, 1e-9)
            if not ok.any() or area <= 0:
                continue
            t = int(ok.argmax())
            placed.append(boxes[t])
            src[i, slot], sides[i, slot] = item, side
            ys[i, slot], xs[i, slot] = corners[t]
            slot += 1
    colours = background = noise = None
    if rgb:
        colours = _item_colours(rng, n)
        background, noise = _background_params(rng, n, size)
    return SceneLayout(size, rgb, src, sides, ys, xs, colours, background, noise)


def _hsv_to_rgb(hsv: np.ndarray) -> np.ndarray:
    from skimage.color import hsv2rgb

    return hsv2rgb(hsv.reshape(-1, 1, 3)).reshape(hsv.shape).astype(np.float32)


def _item_colours(rng: np.random.Generator, n: int) -> np.ndarray:
    hsv = np.stack([rng.random((n, MAX_ITEMS)), rng.uniform(0.5, 1.0, (n, MAX_ITEMS)),
                    rng.uniform(0.75, 1.0, (n, MAX_ITEMS))], -1)
    return _hsv_to_rgb(hsv)


def _background_params(rng: np.random.Generator, n: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    base = _hsv_to_rgb(np.stack([rng.random(n), rng.uniform(0.2, 0.6, n), rng.uniform(0.15, 0.45, n)], -1))
    params = np.concatenate([base, np.stack([rng.uniform(2.0, 8.0, n) / size, rng.uniform(0, np.pi, n),
                                             rng.uniform(0, 2 * np.pi, n), rng.uniform(0.0, 0.35, n),
                                             rng.uniform(0.2, 0.6, n)], 1)], 1).astype(np.float32)
    return params, rng.random((n, 8, 8), dtype=np.float32)


def _backgrounds(params: np.ndarray, noise: np.ndarray, size: int) -> torch.Tensor:
    """Procedural textured backgrounds, float32 N x 3 x S x S in [0, 1]: the base colour times
    (1 + gain * sinusoidal grating + gain * bicubic-upsampled value noise)."""
    p = torch.from_numpy(params)
    base, (freq, angle, phase, grating_gain, noise_gain) = p[:, :3], (c[:, None, None] for c in p[:, 3:].T)
    yy, xx = (g.float() for g in torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij"))
    smooth = F.interpolate(torch.from_numpy(noise)[:, None], size=(size, size), mode="bicubic",
                           align_corners=False)[:, 0]
    along = torch.cos(angle) * xx + torch.sin(angle) * yy
    texture = 1.0 + grating_gain * torch.sin(2 * torch.pi * freq * along + phase) + noise_gain * (smooth - 0.5)
    return (base[:, :, None, None] * texture[:, None]).clamp_(0, 1)


RENDER_CHUNK = 1024  # scenes painted at a time: bounded float32 memory whatever the count


def render_scenes(layout: SceneLayout, items: np.ndarray, filled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Paint the scenes of ``layout`` from the official file's items.

    items: uint8 N_file x 28 x 28; filled: bool N_file x 28 x 28 (:func:`item_masks_28` of items).
    Returns (images uint8 N x C x S x S, instance map uint8 N x S x S). Like every other image set
    in tosc the scenes are 8-bit pictures: values are multiples of 1/255 once divided by 255.
    """
    n, size = len(layout.sides), layout.size
    channels = 3 if layout.rgb else 1
    images = np.empty((n, channels, size, size), np.uint8)
    instance = np.zeros((n, size, size), np.uint8)
    for lo in range(0, n, RENDER_CHUNK):
        hi = min(n, lo + RENDER_CHUNK)
        if layout.rgb:
            canvas = _backgrounds(layout.background[lo:hi], layout.noise[lo:hi], size).numpy()
        else:
            canvas = np.zeros((hi - lo, 1, size, size), np.float32)
        _paste(layout, lo, hi, items, filled, canvas, instance[lo:hi])
        images[lo:hi] = np.rint(canvas * 255.0)
    return images, instance


def _paste(layout: SceneLayout, lo: int, hi: int, items: np.ndarray, filled: np.ndarray, canvas: np.ndarray,
           instance: np.ndarray) -> None:
    """Paste the items of scenes lo..hi onto ``canvas`` (float32 in place) and mark ``instance``."""
    sides, src = layout.sides[lo:hi], layout.source_indices[lo:hi]
    used = src >= 0
    # resize every used item once, grouped by side (one interpolate call per side)
    resized: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
    for side in np.unique(sides[used]):
        rows, slots = np.nonzero(used & (sides == side))
        idx = src[rows, slots]
        side = int(side)
        pix = torch.from_numpy(items[idx].astype(np.float32) / 255.0)[:, None]
        pix = F.interpolate(pix, size=(side, side), mode="bilinear", antialias=True,
                            align_corners=False)[:, 0].clamp_(0, 1).numpy()
        mask = torch.from_numpy(filled[idx].astype(np.float32))[:, None]
        mask = F.interpolate(mask, size=(side, side), mode="bilinear", antialias=True,
                             align_corners=False)[:, 0].numpy() > 0.5
        for j, (r, k) in enumerate(zip(rows.tolist(), slots.tolist())):
            resized[(r, k)] = (pix[j], mask[j])
    for k in range(MAX_ITEMS):  # paste order: later slots on top
        for r in np.nonzero(used[:, k])[0].tolist():
            pix, mask = resized[(r, k)]
            y, x, s = layout.ys[lo + r, k], layout.xs[lo + r, k], sides[r, k]
            window = canvas[r, :, y:y + s, x:x + s]
            if layout.rgb:
                window[:, mask] = pix[mask][None] * layout.colours[lo + r, k][:, None]
            else:
                window[0][mask] = pix[mask]
            instance[r, y:y + s, x:x + s][mask] = k + 1


def _annotations(layout: SceneLayout, instance: np.ndarray, file_labels: np.ndarray):
    """Classes, boxes (x0, y0, x1, y1) and dominant labels from the visible masks."""
    n = len(instance)
    classes = np.full((n, MAX_ITEMS), -1, np.int64)
    boxes = np.zeros((n, MAX_ITEMS, 4), np.float32)
    areas = np.zeros((n, MAX_ITEMS), np.int64)
    for k in range(MAX_ITEMS):
        visible = instance == k + 1
        areas[:, k] = visible.sum((1, 2))
        present = areas[:, k] > 0
        tight = _tight_boxes(visible)  # y0, x0, y1, x1
        boxes[present, k] = tight[present][:, [1, 0, 3, 2]]
        classes[present, k] = file_labels[layout.source_indices[present, k]]
    labels = classes[np.arange(n), areas.argmax(1)]
    source = np.where(classes >= 0, layout.source_indices, -1)
    return classes, boxes, labels, source


def _pool(split: str, seed: int, validation_fraction: float, n_train_file: int) -> tuple[str, np.ndarray]:
    if split == "test":
        return "test", None  # type: ignore[return-value]
    val_idx, train_idx = split_indices(n_train_file, seed, [validation_fraction, 1 - validation_fraction])
    return "train", (val_idx if split == "validation" else train_idx)


_SPLIT_CODES = {"train": 0, "validation": 1, "test": 2}


def scene_layout(split: str, *, n: int | None = None, size: int = DEFAULT_SIZE, rgb: bool = False, seed: int = 0,
                 validation_fraction: float = 0.1, root=None) -> tuple[str, SceneLayout]:
    """The official file ("train" or "test") and the layout that :func:`make_scenes` paints for
    these arguments (so a test can rebuild the pixels from the recorded items)."""
    if split not in _SPLIT_CODES:
        raise ConfigError(f"unknown split {split!r}; expected one of {', '.join(_SPLIT_CODES)}")
    n = SCENE_COUNTS[split] if n is None else int(n)
    arrays = _read_all(find_root(root).resolve())
    which, pool = _pool(split, seed, validation_fraction, len(arrays["train_labels"]))
    if pool is None:
        pool = np.arange(len(arrays["test_labels"]))
    filled = _filled_masks(str(root) if root is not None else "", which)
    layout_seed = np.random.SeedSequence([seed, _SPLIT_CODES[split], size]).generate_state(1)[0]
    return which, draw_layout(n, pool, _tight_boxes(filled), size=size, rgb=rgb, seed=layout_seed)


@functools.lru_cache(maxsize=4)
def _make_cached(split: str, seed: int, validation_fraction: float, size: int, n: int, rgb: bool, root: str):
    which, layout = scene_layout(split, n=n, size=size, rgb=rgb, seed=seed, validation_fraction=validation_fraction,
                                 root=root or None)
    arrays = _read_all(find_root(root or None).resolve())
    images, instance = render_scenes(layout, arrays[f"{which}_images"][:, 0], _filled_masks(root, which))
    classes, boxes, labels, source = _annotations(layout, instance, arrays[f"{which}_labels"])
    return which, images, instance, classes, boxes, labels, source


def make_scenes(split: str = "train", *, n: int | None = None, size: int = DEFAULT_SIZE, rgb: bool = False,
                seed: int = 0, validation_fraction: float = 0.1, root=None, transform=None) -> SceneSet:
    """Scenes of one split (see the module docstring); ``n`` defaults to ``SCENE_COUNTS[split]``.

    ``transform`` may change pixel values only (boxes and masks refer to the canvas), so one that
    changes the image shape raises :class:`ConfigError`.
    """
    if split not in _SPLIT_CODES:
        raise ConfigError(f"unknown split {split!r}; expected one of {', '.join(_SPLIT_CODES)}")
    n = SCENE_COUNTS[split] if n is None else int(n)
    if n <= 0:
        raise ConfigError(f"the number of scenes must be positive, got {n}")
    resolved = str(find_root(root))
    which, images, instance, classes, boxes, labels, source = _make_cached(
        split, int(seed), float(validation_fraction), int(size), n, bool(rgb), str(root) if root is not None else "")
    tensor = torch.from_numpy(images).float().div_(255.0)  # a new tensor: the cache stays untouched
    if transform is not None:
        shape = tuple(tensor.shape)
        tensor = transform(tensor)
        if tuple(tensor.shape) != shape:
            raise ConfigError(f"scene transforms must keep the image shape {shape} (boxes and masks refer to it), "
                              f"got {tuple(tensor.shape)}")
    return SceneSet(
        name="fashion-scenes-rgb" if rgb else "fashion-scenes",
        split=split,
        images=tensor,
        labels=torch.from_numpy(labels.copy()),
        indices=torch.arange(n, dtype=torch.int64),
        classes=list(CLASSES),
        root=resolved,
        object_classes=torch.from_numpy(classes.copy()),
        boxes=torch.from_numpy(boxes.copy()),
        instance_map=torch.from_numpy(instance.copy()),
        source_indices=torch.from_numpy(source.copy()),
        source_file=which,
    )


@registry.register("dataset", "fashion-scenes",
                   "64x64 grayscale scenes of 1-4 Fashion-MNIST items with classes, boxes and masks")
def load_fashion_scenes(*, split: str, root=None, seed: int = 0, validation_fraction: float = 0.1,
                        transform=None) -> SceneSet:
    return make_scenes(split, seed=seed, validation_fraction=validation_fraction, root=root, transform=transform)


@registry.register("dataset", "fashion-scenes-rgb",
                   "64x64 RGB scenes: coloured Fashion-MNIST items on procedural textured backgrounds")
def load_fashion_scenes_rgb(*, split: str, root=None, seed: int = 0, validation_fraction: float = 0.1,
                            transform=None) -> SceneSet:
    return make_scenes(split, rgb=True, seed=seed, validation_fraction=validation_fraction, root=root,
                       transform=transform)
