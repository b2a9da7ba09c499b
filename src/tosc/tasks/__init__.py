"""Task networks run on received images: the classifier used in the codec's loss
(trained on clean images, then frozen) and held-out networks of other architectures
that the codecs never see, used only to judge multi-task generalisation."""

from .classifiers import (
    ARCHITECTURES,
    TRAINING_TASK,
    HELD_OUT_TASKS,
    build_classifier,
    load_task_network,
    train_classifier,
    accuracy,
    predict,
)

__all__ = [
    "ARCHITECTURES",
    "TRAINING_TASK",
    "HELD_OUT_TASKS",
    "build_classifier",
    "load_task_network",
    "train_classifier",
    "accuracy",
    "predict",
]
