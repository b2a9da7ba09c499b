"""Task networks on multi-object scenes (``fashion-scenes``): which classes are present
(multi-label classification) and where the items are (segmentation).

- ``scene-classifier-cnn``: a small CNN with global max pooling, one logit per class
  (sigmoid: "class present"). Trained on clean scenes and frozen; it is the task network in
  the TOSC-SR loss on scenes (differentiable, 72 k parameters).
- ``scene-classifier-hog``: held out, not a CNN: histograms of oriented gradients
  (8 x 8-pixel cells, 2 x 2-cell blocks, 9 orientations; skimage's definition) fed to a
  one-hidden-layer perceptron. The codecs never see it.
- ``scene-segmenter-unet``: the tiny U-Net of :mod:`tosc.tasks.segmentation` trained on scenes,
  with the scenes' own item masks as ground truth (thresholding would fail on textured RGB
  backgrounds).

Multi-label scores (both reported, both from predictions at probability 0.5):
``exact_set_accuracy``, the share of scenes whose predicted set of classes is exactly the true
set, and ``mean_f1``, the per-class F1 over all scenes averaged over the classes (macro F1).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import registry
from ..checkpoint import load_checkpoint, save_checkpoint
from ..errors import ConfigError, CorruptFileError, DataError
from ..zoo import task_path
from ..training import fit_best_epoch, fit_state_path
from .segmentation import build_segmenter, load_segmenter, mean_iou, predict_masks

__all__ = ["frozen", "SCENE_TRAINING_TASK", "SCENE_HELD_OUT_CLASSIFIER", "SCENE_SEGMENTATION_TASK",
           "SCENE_TRAINING_TASK_RGB", "SCENE_HELD_OUT_CLASSIFIER_RGB", "scene_training_task", "SceneCNN", "HogMLP",
           "hog_features", "build_scene_classifier", "load_scene_classifier", "predict_present",
           "multilabel_scores", "train_scene_classifier", "train_scene_segmenter", "scene_segmentation_iou"]

SCENE_TRAINING_TASK = "scene-classifier-cnn"
SCENE_HELD_OUT_CLASSIFIER = "scene-classifier-hog"
SCENE_SEGMENTATION_TASK = "scene-segmenter-unet"
# the same two classifiers for fashion-scenes-rgb (registry metadata channels=3)
SCENE_TRAINING_TASK_RGB = "scene-classifier-cnn-rgb"
SCENE_HELD_OUT_CLASSIFIER_RGB = "scene-classifier-hog-rgb"


def _conv(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class SceneCNN(nn.Module):
    """Multi-label CNN: 16 -> 32 -> 64 channels over three 2x poolings, global max pooling (an item
    anywhere counts), dropout and one logit per class. Input N x C x H x W in [0, 1]; output N x K."""

    def __init__(self, in_channels: int, n_classes: int, width: int = 16) -> None:
        super().__init__()
        self.features = nn.Sequential(
            _conv(in_channels, width), nn.MaxPool2d(2),
            _conv(width, 2 * width), _conv(2 * width, 2 * width), nn.MaxPool2d(2),
            _conv(2 * width, 4 * width), _conv(4 * width, 4 * width), nn.MaxPool2d(2),
            _conv(4 * width, 4 * width),
        )
        self.head = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(4 * width, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


HOG_CELL, HOG_BLOCK, HOG_ORIENTATIONS = 8, 2, 9
# L2-Hys regulariser, in units of summed gradient magnitude per block (an item edge gives about
# 10-20). skimage's 1e-5 blows the faint noise of any decoded black background up to unit-norm
# blocks: with it, Gaussian noise of half a grey level (sigma 0.5/255) took this network's
# exact-set accuracy from 0.21 to 0.03 on 500 validation scenes while scene-classifier-cnn kept
# its 0.26, so it judged whether the background was exactly zero, not the scene.
HOG_EPS = 1.0


def hog_features(images: torch.Tensor) -> torch.Tensor:
    """HOG descriptors (float32 N x D) of images N x C x H x W in [0, 1]: 8 x 8-pixel cells,
    2 x 2-cell blocks, 9 orientations, L2-Hys with regulariser ``HOG_EPS``, computed by
    :class:`tosc.tasks.classical.HOG` (equal to ``skimage.feature.hog`` with that eps; colour images
    are first averaged over channels)."""
    from .classical import HOG

    if images.ndim != 4:
        raise DataError(f"expected images N x C x H x W, got shape {tuple(images.shape)}")
    with torch.no_grad():
        return HOG(HOG_ORIENTATIONS, HOG_CELL, HOG_BLOCK, eps=HOG_EPS)(images.float().mean(1, keepdim=True))


class HogMLP(nn.Module):
    """HOG descriptors -> one hidden layer of 256 -> one logit per class. Takes images N x C x H x W
    in [0, 1] like every task network (HOG is computed inside, without gradients)."""

    def __init__(self, in_channels: int, n_classes: int, image_hw: tuple[int, int], hidden: int = 256) -> None:
        super().__init__()
        n_features = hog_features(torch.zeros(1, in_channels, *image_hw)).shape[1]
        self.mlp = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(inplace=True), nn.Dropout(0.3),
                                 nn.Linear(hidden, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(hog_features(x).to(next(self.parameters()).device))


SCENE_ARCHITECTURES = {"scene-cnn": SceneCNN, "hog-mlp": HogMLP}  # architecture -> network class


def build_scene_classifier(arch: str, in_channels: int, n_classes: int, image_hw: tuple[int, int]) -> nn.Module:
    if arch == "scene-cnn":
        return SceneCNN(in_channels, n_classes)
    if arch == "hog-mlp":
        return HogMLP(in_channels, n_classes, image_hw)
    raise ConfigError(f"unknown scene classifier architecture {arch!r}; known: {', '.join(SCENE_ARCHITECTURES)}")


def load_scene_classifier(name: str = SCENE_TRAINING_TASK, path: str | Path | None = None) -> nn.Module:
    """A trained scene classifier in eval mode with frozen weights."""
    path = Path(path) if path is not None else task_path(name)
    ckpt = load_checkpoint(path, kind="task")
    if ckpt["arch"] not in SCENE_ARCHITECTURES:
        raise CorruptFileError(f"{path}: holds architecture {ckpt['arch']!r}, not a scene classifier")
    cfg = ckpt["config"]
    model = build_scene_classifier(ckpt["arch"], cfg["in_channels"], cfg["n_classes"], tuple(cfg["image_hw"]))
    model.load_state_dict(ckpt["state_dict"])
    return frozen(model)


def frozen(model: nn.Module) -> nn.Module:
    """``model`` in eval mode with gradients off for its weights (a task network judges, never learns)."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


# Registry metadata: images="scenes" keeps these apart from the Fashion-MNIST networks. The
# scene CNN's role is "scene-training" (the network a codec trained on scenes goes through),
# since "training" names the single Fashion-MNIST training network (tosc.tasks.training_task).
# ``channels``: the scenes a network judges, grey (fashion-scenes) or colour (fashion-scenes-rgb).
for _channels, _cnn, _hog in ((1, SCENE_TRAINING_TASK, SCENE_HELD_OUT_CLASSIFIER),
                              (3, SCENE_TRAINING_TASK_RGB, SCENE_HELD_OUT_CLASSIFIER_RGB)):
    _colour = "" if _channels == 1 else " of colour scenes"
    registry.register("task", _cnn,
                      f"multi-label scene CNN{_colour}: which classes are present (the task in the TOSC-SR loss on "
                      "scenes)", role="scene-training", output="present", images="scenes", channels=_channels)(
        lambda _name=_cnn, **kw: load_scene_classifier(_name, **kw))
    registry.register("task", _hog,
                      f"held-out multi-label scene classifier{_colour}, not a CNN: HOG features + MLP",
                      role="held-out", output="present", images="scenes", channels=_channels)(
        lambda _name=_hog, **kw: load_scene_classifier(_name, **kw))


def scene_training_task(channels: int = 1) -> str:
    """The registered scene-training network (the TOSC-SR loss's task) for scenes of ``channels``."""
    (name,) = registry.select("task", role="scene-training", channels=channels)
    return name


registry.register("task", SCENE_SEGMENTATION_TASK,
                  "tiny U-Net item segmenter trained on scenes (held-out task, IoU against the scenes' item masks)",
                  role="held-out", output="scene-mask", images="scenes", channels=1)(
    lambda **kw: load_segmenter(SCENE_SEGMENTATION_TASK, **kw))


@torch.no_grad()
def predict_present(model: nn.Module, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Predicted multi-hot sets (bool N x K, probability above 0.5) for images N x C x H x W."""
    model.eval()
    if not len(images):
        return torch.zeros(0, 0, dtype=torch.bool)
    return torch.cat([model(images[i:i + batch_size]) > 0 for i in range(0, len(images), batch_size)])


def multilabel_scores(predicted: torch.Tensor, present: torch.Tensor) -> dict:
    """``exact_set_accuracy`` (share of scenes with exactly the true set of classes) and ``mean_f1``
    (per-class F1 over all scenes, averaged over classes; a class with neither true nor predicted
    members counts as F1 1) of bool N x K predictions against bool N x K truth."""
    if predicted.shape != present.shape:
        raise DataError(f"predictions {tuple(predicted.shape)} and targets {tuple(present.shape)} differ")
    if not len(present):
        return {"exact_set_accuracy": float("nan"), "mean_f1": float("nan")}
    predicted, present = predicted.bool(), present.bool()
    exact = (predicted == present).all(1).double().mean().item()
    tp = (predicted & present).sum(0).double()
    fp = (predicted & ~present).sum(0).double()
    fn = (~predicted & present).sum(0).double()
    denom = 2 * tp + fp + fn
    f1 = torch.where(denom > 0, 2 * tp / denom.clamp_min(1), torch.ones_like(denom))
    return {"exact_set_accuracy": exact, "mean_f1": f1.mean().item()}


def scene_segmentation_iou(model: nn.Module, received: torch.Tensor, masks: torch.Tensor) -> float:
    """Mean IoU of the masks predicted on ``received`` (N x C x H x W) against the scenes' item
    masks (bool N x H x W, e.g. ``SceneSet.masks``)."""
    if received.shape[0] != masks.shape[0] or received.shape[2:] != masks.shape[1:]:
        raise DataError(f"received {tuple(received.shape)} and masks {tuple(masks.shape)} differ")
    return mean_iou(predict_masks(model, received, batch_size=250), masks.bool())


def _flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random horizontal flips (label- and mask-preserving; items already sit at random places,
    so no shifts)."""
    flip = torch.rand(len(x), generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def train_scene_classifier(arch: str, train, validation, *, epochs: int = 6, batch_size: int = 64, lr: float = 2e-3,
                           seed: int = 0, out: str | Path, progress: bool = True) -> dict:
    """Train a scene classifier of architecture ``arch`` ("scene-cnn" or "hog-mlp") on clean scenes
    (binary cross-entropy per class; random flips for the CNN); keep the best validation
    epoch (mean F1); write the checkpoint to ``out``."""
    if arch not in SCENE_ARCHITECTURES:
        raise ConfigError(f"unknown scene classifier architecture {arch!r}; known: {', '.join(SCENE_ARCHITECTURES)}")
    if epochs <= 0 or batch_size <= 0 or lr <= 0:
        raise ConfigError("epochs, batch_size and lr must be positive")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    c, h, w = train.shape
    model = build_scene_classifier(arch, c, len(train.classes), (h, w))
    targets = train.present.float()
    start = time.time()
    if arch == "hog-mlp":
        # HOG is fixed: compute it once and train the perceptron on the descriptors
        features = hog_features(train.images)
        val_features = hog_features(validation.images)

        def batch_loss(idx: torch.Tensor) -> torch.Tensor:
            return F.binary_cross_entropy_with_logits(model.mlp(features[idx]), targets[idx])

        def validate() -> float:
            model.eval()
            with torch.no_grad():
                return multilabel_scores(model.mlp(val_features) > 0, validation.present)["mean_f1"]
    else:
        def batch_loss(idx: torch.Tensor) -> torch.Tensor:
            return F.binary_cross_entropy_with_logits(model(_flip(train.images[idx], gen)), targets[idx])

        def validate() -> float:
            return multilabel_scores(predict_present(model, validation.images), validation.present)["mean_f1"]

    fit_best_epoch(model, len(train), batch_loss, validate, epochs=epochs, batch_size=batch_size, lr=lr,
                   generator=gen, desc=arch, score_name="validation mean F1", progress=progress,
                   state_path=fit_state_path(out))
    scores = multilabel_scores(predict_present(model, validation.images), validation.present)
    metrics = {f"validation_{k}": v for k, v in scores.items()}
    metrics["train_time_s"] = time.time() - start
    config = {"dataset": train.name, "n_train": len(train), "epochs": epochs, "batch_size": batch_size, "lr": lr,
              "seed": seed, "in_channels": c, "n_classes": len(train.classes), "image_hw": [h, w]}
    save_checkpoint(out, kind="task", arch=arch,
                    state_dict=model.state_dict(), config=config, metrics=metrics)
    return metrics


def train_scene_segmenter(train, validation, *, epochs: int = 3, batch_size: int = 64, lr: float = 3e-3,
                          width: int = 12, seed: int = 0, out: str | Path | None = None, progress: bool = True) -> dict:
    """Train the tiny U-Net on clean scenes against their item masks; keep the best validation epoch."""
    if epochs <= 0 or batch_size <= 0 or lr <= 0:
        raise ConfigError("epochs, batch_size and lr must be positive")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    c, h, w = train.shape
    model = build_segmenter(c, (h, w), width)
    masks = train.masks.float()[:, None]
    start = time.time()

    def batch_loss(idx: torch.Tensor) -> torch.Tensor:
        both = _flip(torch.cat([train.images[idx], masks[idx]], 1), gen)  # the same flip for both
        return F.binary_cross_entropy_with_logits(model(both[:, :c]), both[:, c])

    out = Path(out) if out is not None else task_path(SCENE_SEGMENTATION_TASK)
    best = fit_best_epoch(model, len(train), batch_loss,
                          lambda: scene_segmentation_iou(model, validation.images, validation.masks),
                          epochs=epochs, batch_size=batch_size, lr=lr, generator=gen, desc=SCENE_SEGMENTATION_TASK,
                          score_name="validation IoU", progress=progress, state_path=fit_state_path(out))
    metrics = {"validation_iou": best, "train_time_s": time.time() - start}
    config = {"dataset": train.name, "n_train": len(train), "epochs": epochs, "batch_size": batch_size, "lr": lr,
              "seed": seed, "width": width, "in_channels": c, "image_hw": [h, w], "ground_truth": "scene item masks"}
    save_checkpoint(out, kind="task", arch="tiny-unet",
                    state_dict=model.state_dict(), config=config, metrics=metrics)
    return metrics
