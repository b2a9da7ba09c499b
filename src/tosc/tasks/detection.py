"""Held-out object detection on scenes: torchvision's FCOS on a small MobileNetV3 backbone, scored
by mAP with torchmetrics' MeanAveragePrecision (COCO's evaluator underneath).

The detector is torchvision's :class:`~torchvision.models.detection.FCOS` (anchor-free, one
stage) over :func:`~torchvision.models.mobilenet_v3_small` features (built with
``weights=None``: nothing is downloaded, everything is trained here on clean scenes) and a
64-channel :class:`~torchvision.models.detection.backbone_utils.BackboneWithFPN` on the
stride-8, 16 and 32 stages plus a max-pooled stride-64 level. Only the wiring is ours: channel
count, the input resolution (torchvision's transform resizes the 64 x 64 scene to
``input_size``) and the anchor sizes that assign objects to pyramid levels.

Inputs are scenes float N x C x H x W in [0, 1] (grey scenes are repeated to 3 channels);
outputs follow torchvision: one dict per image with ``boxes`` (float M x 4, x0 y0 x1 y1 in the
input image's pixels), ``scores`` and ``labels`` (class 0..9).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn
from tqdm import tqdm

from .. import registry
from ..checkpoint import load_checkpoint, save_checkpoint
from ..errors import ConfigError, CorruptFileError, DataError
from ..zoo import task_path
from .scenes import frozen

__all__ = ["DETECTION_TASK", "SceneDetector", "build_detector", "load_detector", "detect", "detection_map",
           "train_detector", "export_detector"]

DETECTION_TASK = "scene-detector-fcos"
ARCH = "fcos-mobilenet-v3-small-fpn"


class SceneDetector(nn.Module):
    """torchvision FCOS with a MobileNetV3-small FPN backbone, for N x C x H x W scenes in [0, 1].

    ``forward(images, targets)`` returns FCOS's loss dict in training mode (targets: list of
    ``{"boxes": float M x 4, "labels": int64 M}``) and a list of detections in eval mode.
    """

    def __init__(self, in_channels: int, n_classes: int, image_size: int, input_size: int, fpn_channels: int = 64,
                 score_thresh: float = 0.05) -> None:
        super().__init__()
        from torchvision.models import mobilenet_v3_small
        from torchvision.models.detection import FCOS
        from torchvision.models.detection.anchor_utils import AnchorGenerator
        from torchvision.models.detection.backbone_utils import BackboneWithFPN
        from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

        if in_channels not in (1, 3):
            raise ConfigError(f"the detector takes 1 or 3 channels, got {in_channels}")
        if fpn_channels <= 0 or fpn_channels % 32:
            raise ConfigError(f"fpn_channels must be a positive multiple of 32 (FCOS's group norm), got {fpn_channels}")
        self.in_channels, self.image_size, self.input_size = in_channels, image_size, input_size
        self.n_classes, self.fpn_channels = n_classes, fpn_channels
        features = mobilenet_v3_small(weights=None, norm_layer=nn.BatchNorm2d).features
        # ends of the stride-8, 16 and 32 stages of MobileNetV3-small (24, 48 and 576 channels)
        backbone = BackboneWithFPN(features, {"3": "0", "8": "1", "12": "2"}, [24, 48, 576], fpn_channels,
                                   extra_blocks=LastLevelMaxPool())
        # FCOS puts an object on level l when its largest centre-to-side distance is within
        # [4, 8] x anchor size: sizes of 1/32 .. 1/4 of the input send the 5-70 px items (at 128 px)
        # to the stride-8 and 16 levels
        sizes = tuple((input_size / 32 * 2 ** i,) for i in range(4))
        self.fcos = FCOS(backbone, n_classes, min_size=input_size, max_size=input_size,
                         image_mean=[0.5] * 3, image_std=[0.25] * 3,
                         anchor_generator=AnchorGenerator(sizes, ((1.0,),) * 4),
                         score_thresh=score_thresh, detections_per_img=50, topk_candidates=200)

    def forward(self, images: torch.Tensor, targets: list[dict[str, torch.Tensor]] | None = None):
        if images.ndim != 4 or images.shape[1] != self.in_channels:
            raise DataError(f"expected scenes N x {self.in_channels} x H x W, got {tuple(images.shape)}")
        rgb = images.expand(-1, 3, -1, -1) if self.in_channels == 1 else images
        return self.fcos(list(rgb), targets)


def build_detector(in_channels: int, n_classes: int, image_size: int, input_size: int = 128,
                   fpn_channels: int = 64) -> SceneDetector:
    return SceneDetector(in_channels, n_classes, image_size, input_size, fpn_channels)


def _config(model: SceneDetector) -> dict:
    return {"in_channels": model.in_channels, "n_classes": model.n_classes, "image_size": model.image_size,
            "input_size": model.input_size, "fpn_channels": model.fpn_channels}


def load_detector(name: str = DETECTION_TASK, path: str | Path | None = None) -> SceneDetector:
    """The trained detector in eval mode with frozen weights (stored in float16, run in float32)."""
    path = Path(path) if path is not None else task_path(name)
    ckpt = load_checkpoint(path, kind="task", arch=ARCH)
    cfg = ckpt["config"]
    model = build_detector(cfg["in_channels"], cfg["n_classes"], cfg["image_size"], cfg["input_size"],
                           cfg["fpn_channels"])
    try:
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()})
    except RuntimeError as exc:
        raise CorruptFileError(f"{path}: weights do not fit the detector ({str(exc).splitlines()[0]})") from None
    return frozen(model)


registry.register("task", DETECTION_TASK,
                  "FCOS + MobileNetV3-small object detector on scenes (held-out task, scored by mAP)",
                  role="held-out", output="boxes", images="scenes", channels=1)(
    lambda **kw: load_detector(DETECTION_TASK, **kw))


@torch.no_grad()
def detect(model: SceneDetector, images: torch.Tensor, batch_size: int = 64) -> list[dict[str, torch.Tensor]]:
    """Detections (one dict per image: boxes float M x 4, scores float M, labels int64 M)."""
    model.eval()
    out: list[dict[str, torch.Tensor]] = []
    for i in range(0, len(images), batch_size):
        out.extend({k: v.cpu() for k, v in d.items()} for d in model(images[i:i + batch_size]))
    return out


def detection_map(predictions: list[dict[str, torch.Tensor]], targets: list[dict[str, torch.Tensor]]) -> dict:
    """COCO-style mean average precision over classes: ``map_50`` (IoU 0.5) and ``map`` (mean over
    IoU 0.50:0.05:0.95), from torchmetrics' MeanAveragePrecision (pycocotools backend)."""
    from torchmetrics.detection import MeanAveragePrecision

    if len(predictions) != len(targets):
        raise DataError(f"{len(predictions)} predictions but {len(targets)} targets")
    if not targets:
        return {"map_50": float("nan"), "map": float("nan")}
    metric = MeanAveragePrecision(box_format="xyxy", iou_type="bbox", backend="pycocotools")
    metric.update([{k: p[k] for k in ("boxes", "scores", "labels")} for p in predictions],
                  [{"boxes": t["boxes"].float(), "labels": t["labels"].long()} for t in targets])
    result = metric.compute()
    return {"map_50": float(result["map_50"]), "map": float(result["map"])}


def _flip(images: torch.Tensor, targets: list[dict], flips: torch.Tensor) -> tuple[torch.Tensor, list[dict]]:
    """Horizontal flips of the chosen images and their boxes (a label-preserving augmentation)."""
    width = images.shape[-1]
    images = torch.where(flips[:, None, None, None], images.flip(3), images)
    out = []
    for t, f in zip(targets, flips.tolist()):
        boxes = t["boxes"].clone()
        if f:
            boxes[:, [0, 2]] = width - t["boxes"][:, [2, 0]]
        out.append({"boxes": boxes, "labels": t["labels"]})
    return images, out


def _noisy(images: torch.Tensor, noise_max: float, gen: torch.Generator) -> torch.Tensor:
    """Half the images (at random) with Gaussian noise of sigma uniform in [0, noise_max] / 255,
    clipped to [0, 1] and rounded to 8 bits like a decoded image."""
    n = len(images)
    sigma = torch.rand(n, generator=gen) * (torch.rand(n, generator=gen) < 0.5) * noise_max / 255
    noise = torch.randn(images.shape, generator=gen)
    return ((images + sigma[:, None, None, None] * noise).clamp(0, 1) * 255).round() / 255


def train_detector(train, validation, *, epochs: int = 8, batch_size: int = 32, lr: float = 2e-3,
                   input_size: int = 128, fpn_channels: int = 64, seed: int = 0, state: str | Path,
                   out: str | Path | None = None, init_from: str | Path | None = None, progress: bool = True,
                   noise_max: float = 0.0, on_epoch: Callable[[int, dict], None] | None = None) -> dict:
    """Train the detector on clean scenes (``SceneSet`` train / validation), resumable.

    AdamW with a linear warm-up over the first 300 steps and cosine decay; horizontal flips;
    with ``noise_max`` > 0 (grey levels of 255), half the training scenes get Gaussian noise of a
    sigma uniform in [0, noise_max], rounded to 8 bits (a detector that saw only clean scenes lost
    19 points of mAP@0.5 to noise of sigma 2, so it judged decoded scenes by their tiny errors).
    After every epoch the whole training state goes atomically to ``state`` (so a killed run
    resumes from its last finished epoch with the same result) and validation mAP is measured;
    at the end the best epoch's weights are written to ``out`` (the zoo by default) in float16,
    with the validation metrics of exactly those stored weights. Returns those metrics.
    ``init_from``: a detector checkpoint to start from (a second, longer schedule after a first).
    """
    if epochs <= 0 or batch_size <= 0 or lr <= 0:
        raise ConfigError("epochs, batch_size and lr must be positive")
    if noise_max < 0:
        raise ConfigError(f"noise_max must be >= 0 grey levels, got {noise_max}")
    torch.manual_seed(seed)
    c, h, w = train.shape
    if h != w:
        raise ConfigError(f"the detector expects square scenes, got {h} x {w}")
    n_classes = len(train.classes)
    model = build_detector(c, n_classes, h, input_size, fpn_channels)
    if init_from is not None:
        start_model = load_detector(path=init_from)
        if _config(start_model) != _config(model):
            raise ConfigError(f"{init_from}: a detector of another shape ({_config(start_model)})")
        model.load_state_dict(start_model.state_dict())
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=1e-4)
    steps_per_epoch = math.ceil(len(train) / batch_size)
    total = epochs * steps_per_epoch
    warm = min(300, total // 4 + 1)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, total - warm))))
    gen = torch.Generator().manual_seed(seed)
    targets = train.detection_targets()
    val_targets = validation.detection_targets()
    config = {**_config(model), "dataset": train.name, "n_train": len(train),
              "n_validation": len(validation), "epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed,
              **({} if init_from is None else {"init_from": str(init_from)}),
              **({} if noise_max == 0 else {"noise_max": noise_max})}
    history: list[dict] = []
    best: tuple[float, dict | None] = (-1.0, None)
    start_epoch, elapsed = 0, 0.0
    state = Path(state)
    if state.is_file():
        saved = load_checkpoint(state, kind="training-state", arch=ARCH)
        if saved["config"] != config:
            raise ConfigError(f"{state}: holds a run with another configuration; remove it or pass another --state")
        model.load_state_dict(saved["state_dict"])
        opt.load_state_dict(saved["optimizer"])
        sched.load_state_dict(saved["scheduler"])
        gen.set_state(saved["generator"])
        torch.set_rng_state(saved["torch_rng"])
        start_epoch, elapsed, history = saved["epoch"], saved["elapsed_s"], saved["history"]
        best = (saved["best_score"], saved["best_state"])
    for epoch in range(start_epoch, epochs):
        began = time.time()
        model.train()
        order = torch.randperm(len(train), generator=gen)
        bar = tqdm(range(0, len(train), batch_size), desc=f"detector epoch {epoch + 1}/{epochs}",
                   disable=not progress, leave=False)
        for i in bar:
            idx = order[i:i + batch_size]
            flips = torch.rand(len(idx), generator=gen) < 0.5
            images, batch_targets = _flip(train.images[idx], [targets[j] for j in idx.tolist()], flips)
            if noise_max > 0:
                images = _noisy(images, noise_max, gen)
            losses = model(images, batch_targets)
            loss = sum(losses.values())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            opt.step()
            sched.step()
            bar.set_postfix({k.split("_")[-1]: f"{v.item():.3f}" for k, v in losses.items()})
        scores = detection_map(detect(model, validation.images), val_targets)
        elapsed += time.time() - began
        history.append({"epoch": epoch + 1, "scenes_seen": (epoch + 1) * len(train), "elapsed_s": elapsed, **scores})
        if progress:
            tqdm.write(f"detector epoch {epoch + 1}: validation mAP@0.5 {scores['map_50']:.4f}, "
                       f"mAP@[.5:.95] {scores['map']:.4f} ({elapsed:.0f} s)")
        if scores["map_50"] > best[0]:
            best = (scores["map_50"], {k: v.clone() for k, v in model.state_dict().items()})
        save_checkpoint(state, kind="training-state", arch=ARCH, state_dict=model.state_dict(), config=config,
                        optimizer=opt.state_dict(), scheduler=sched.state_dict(), generator=gen.get_state(),
                        torch_rng=torch.get_rng_state(), epoch=epoch + 1, elapsed_s=elapsed, history=history,
                        best_score=best[0], best_state=best[1])
        if on_epoch is not None:
            on_epoch(epoch + 1, history[-1])
    return export_detector(state, validation, out=out)


def export_detector(state: str | Path, validation, *, out: str | Path | None = None) -> dict:
    """Write the best epoch so far of the training run in ``state`` as a task checkpoint (float16
    weights: half the size, and the validation mAP stored beside them is measured on exactly those
    weights). Also usable while a run is still going. Returns the metrics."""
    saved = load_checkpoint(state, kind="training-state", arch=ARCH)
    cfg = saved["config"]
    if cfg["n_validation"] != len(validation):
        raise ConfigError(f"{state}: validated on {cfg['n_validation']} scenes, got {len(validation)}")
    stored = {k: v.half() if v.is_floating_point() else v for k, v in saved["best_state"].items()}
    model = build_detector(cfg["in_channels"], cfg["n_classes"], cfg["image_size"], cfg["input_size"],
                           cfg["fpn_channels"])
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in stored.items()})
    final = detection_map(detect(model, validation.images), validation.detection_targets())
    metrics = {"validation_map_50": final["map_50"], "validation_map": final["map"],
               "epochs_done": saved["epoch"], "train_time_s": saved["elapsed_s"], "history": saved["history"]}
    save_checkpoint(out if out is not None else task_path(DETECTION_TASK), kind="task", arch=ARCH,
                    state_dict=stored, config=cfg, metrics=metrics)
    return metrics
