"""Task networks run on received images: the classifier used in the codec's loss
(trained on clean images, then frozen) and held-out networks of other architectures
that the codecs never see, used only to judge multi-task generalisation (among them
non-convolutional ones: HOG + linear and logistic regression on pixels), and a held-out
segmentation task (``segmenter-unet``, scored by IoU against the clean image's mask)."""

from .classifiers import (
    training_task,
    held_out_tasks,
    check_training_task,
    build_classifier,
    load_task_network,
    train_classifier,
    train_classifiers,
    accuracy,
    predict,
)
from .classical import HOGLinear, PixelLinear, fit_linear_head
from .segmentation import (
    SEGMENTATION_TASK,
    FOREGROUND_THRESHOLD,
    item_masks,
    load_segmenter,
    mean_iou,
    predict_masks,
    segmentation_iou,
    train_segmenter,
)

from . import detection, scenes  # noqa: F401  (register the scene tasks, metadata images="scenes")
from . import ensemble  # noqa: F401  (register the training-only extra classifiers, role "training-extra")

# Derived from the registry once every task above is registered (the registry's metadata, not
# these names, is the source of truth; a task added to it appears here by itself).
TRAINING_TASK = training_task()
HELD_OUT_TASKS = held_out_tasks("class")

__all__ = [
    "TRAINING_TASK",
    "HELD_OUT_TASKS",
    "training_task",
    "held_out_tasks",
    "check_training_task",
    "build_classifier",
    "load_task_network",
    "train_classifier",
    "train_classifiers",
    "accuracy",
    "predict",
    "HOGLinear",
    "PixelLinear",
    "fit_linear_head",
    "SEGMENTATION_TASK",
    "FOREGROUND_THRESHOLD",
    "item_masks",
    "load_segmenter",
    "mean_iou",
    "predict_masks",
    "segmentation_iou",
    "train_segmenter",
]
