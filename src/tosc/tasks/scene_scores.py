"""Scores of the scene tasks on received (decoded) scenes, for the evaluation to record.

:func:`score_scenes` runs every scene task network on the received images and compares with
the clean scenes' annotations (never with the clean images' own predictions), returning one
flat dict of numbers:

- ``det_map_50``, ``det_map``: detection mAP at IoU 0.5 and mAP over IoU 0.50:0.05:0.95
  (COCO's definition, torchmetrics' MeanAveragePrecision) of the held-out detector;
- ``scene_exact_<task>``, ``scene_f1_<task>``: exact-set accuracy and mean per-class F1 of
  each multi-label scene classifier (see :func:`tosc.tasks.scenes.multilabel_scores`);
- ``scene_seg_iou``: mean IoU of the scene segmenter against the scenes' item masks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn

from .. import registry
from ..errors import DataError
from .detection import detect, detection_map
from .scenes import multilabel_scores, predict_present, scene_segmentation_iou

__all__ = ["SceneTasks", "load_scene_tasks", "score_scenes"]


@dataclass
class SceneTasks:
    """The frozen scene networks: multi-label classifiers by name, a detector and a segmenter
    (either may be None to skip it)."""

    classifiers: dict[str, nn.Module] = field(default_factory=dict)
    detector: nn.Module | None = None
    segmenter: nn.Module | None = None


def load_scene_tasks(channels: int = 1) -> SceneTasks:
    """Every registered scene task network for scenes of ``channels`` (registry metadata
    ``images="scenes"``, ``channels``), from the zoo; no detector or segmenter where none is
    registered for those scenes (colour scenes have classifiers only)."""
    def load(name: str) -> nn.Module:
        return registry.get("task", name).factory()

    def one(output: str) -> nn.Module | None:
        names = registry.select("task", images="scenes", output=output, channels=channels)
        return load(names[0]) if names else None

    return SceneTasks(classifiers={n: load(n) for n in registry.select("task", images="scenes", output="present",
                                                                        channels=channels)},
                      detector=one("boxes"), segmenter=one("scene-mask"))


def score_scenes(received: torch.Tensor, scenes, tasks: SceneTasks) -> dict[str, float]:
    """Task scores of ``received`` (float N x C x H x W in [0, 1], decoded from the first N scenes of
    the :class:`~tosc.data.scenes.SceneSet` ``scenes``) against the scenes' annotations."""
    n = len(received)
    if received.ndim != 4 or n > len(scenes) or tuple(received.shape[1:]) != tuple(scenes.shape):
        raise DataError(f"received {tuple(received.shape)} does not match scenes of shape {tuple(scenes.shape)}")
    reference = scenes.subset(n) if n else scenes
    out: dict[str, float] = {}
    if tasks.detector is not None:
        scores = detection_map(detect(tasks.detector, received), reference.detection_targets()[:n])
        out["det_map_50"], out["det_map"] = scores["map_50"], scores["map"]
    for name, model in tasks.classifiers.items():
        scores = multilabel_scores(predict_present(model, received), reference.present[:n])
        out[f"scene_exact_{name}"], out[f"scene_f1_{name}"] = scores["exact_set_accuracy"], scores["mean_f1"]
    if tasks.segmenter is not None:
        out["scene_seg_iou"] = scene_segmentation_iou(tasks.segmenter, received, reference.masks[:n])
    return out
