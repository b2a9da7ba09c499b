"""Image classifiers: architectures, training on clean images, frozen loading.

Inputs are float tensors N x C x H x W in [0, 1]; outputs are logits N x n_classes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import registry
from ..checkpoint import load_checkpoint, save_checkpoint
from ..data import ImageSet, load_dataset
from ..errors import ConfigError, DataError
from ..training import fit_best_epoch, fit_state_path
from ..zoo import task_path

__all__ = ["training_task", "held_out_tasks", "check_training_task", "build_classifier", "load_task_network",
           "fit_end_to_end", "train_classifier", "train_classifiers", "accuracy", "predict", "augment"]


def _conv_bn(c_in: int, c_out: int, k: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class ConvNet(nn.Module):
    """VGG-style: two blocks of two 3x3 convs with max-pooling, then two linear layers."""

    def __init__(self, in_channels: int, n_classes: int, width: int = 16) -> None:
        super().__init__()
        self.features = nn.Sequential(
            _conv_bn(in_channels, width), _conv_bn(width, width), nn.MaxPool2d(2),
            _conv_bn(width, 2 * width), _conv_bn(2 * width, 2 * width), nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.3), nn.LazyLinear(128), nn.ReLU(inplace=True),
                                  nn.Dropout(0.3), nn.Linear(128, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class MLP(nn.Module):
    """Two hidden layers on the flattened pixels: no convolution at all."""

    def __init__(self, in_channels: int, n_classes: int, hidden: int = 256) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.LazyLinear(hidden), nn.ReLU(inplace=True), nn.Dropout(0.2),
                                 nn.Linear(hidden, hidden // 2), nn.ReLU(inplace=True), nn.Linear(hidden // 2, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class _Residual(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 5, stride, 2, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 5, 1, 2, bias=False), nn.BatchNorm2d(c_out),
        )
        self.skip = (nn.Identity() if stride == 1 and c_in == c_out else
                     nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.skip(x))


class ResNet(nn.Module):
    """Small residual net with 5x5 kernels, strided downsampling and global average pooling."""

    def __init__(self, in_channels: int, n_classes: int, width: int = 16) -> None:
        super().__init__()
        self.net = nn.Sequential(
            _Residual(in_channels, width, 1), _Residual(width, 2 * width, 2), _Residual(2 * width, 4 * width, 2),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * width, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _register_classifier(name: str, network: Callable[[int, int], nn.Module], role: str, description: str,
                         fit: Callable[..., float] | None = None) -> None:
    """A classifier task: ``network(in_channels, n_classes)`` builds it untrained; the registered
    factory loads the trained, frozen one from the zoo. ``fit`` (signature of ``fit_end_to_end``,
    the default) is how ``train_classifier`` fits it."""
    meta = {"fit": fit} if fit is not None else {}
    registry.register("task", name, description, role=role, output="class", network=network, **meta)(
        lambda **kw: load_task_network(name, **kw))


_register_classifier("classifier-cnn", ConvNet, "training", "VGG-style CNN classifier (the task in the TOSC-SR loss)")
_register_classifier("classifier-mlp", MLP, "held-out", "held-out MLP classifier (never used in codec training)")
_register_classifier("classifier-resnet", ResNet, "held-out",
                     "held-out 5x5 ResNet classifier (never used in codec training)")


def training_task() -> str:
    """The task network codecs and JSCC models are trained through (role "training")."""
    (name,) = registry.select("task", role="training")
    return name


def held_out_tasks(output: str | None = "class") -> tuple[str, ...]:
    """Registered task networks that never take part in training, sorted; ``output="class"``
    (the default) keeps the classifiers, ``"mask"`` the segmenters, None all of them."""
    criteria = {"role": "held-out", **({"output": output} if output else {})}
    return tuple(registry.select("task", **criteria))


def check_training_task(name: str) -> str:
    """``name`` if a training run may use it as its task network: a registered classifier that
    is not held out (held-out networks judge generalisation, so training must never see them)."""
    entry = registry.get("task", name)
    if entry.meta.get("role") == "held-out":
        raise ConfigError(f"{name} is a held-out network: it must never be used in training")
    if entry.meta.get("output") not in ("class", "present"):
        raise ConfigError(f"{name} is not a classifier; the training task must be one")
    return name


def build_classifier(arch: str, in_channels: int, n_classes: int, image_hw: tuple[int, int]) -> nn.Module:
    """An untrained classifier registered as task ``arch`` (e.g. "classifier-cnn")."""
    classifiers = registry.select("task", output="class")
    if arch not in classifiers:
        raise ConfigError(f"unknown classifier architecture {arch!r}; known: {', '.join(classifiers)}")
    model = registry.get("task", arch).meta["network"](in_channels, n_classes)
    with torch.no_grad():  # materialise lazy layers
        model.eval()(torch.zeros(1, in_channels, *image_hw))
    return model


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Predicted labels (int64, N) for images N x C x H x W in [0, 1]."""
    model.eval()
    device = next(model.parameters()).device
    return torch.cat([model(images[i:i + batch_size].to(device)).argmax(1).cpu()
                      for i in range(0, len(images), batch_size)]) if len(images) else torch.zeros(0, dtype=torch.long)


def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    if len(images) != len(labels):
        raise DataError(f"{len(images)} images but {len(labels)} labels")
    known = labels >= 0
    if not known.any():
        return float("nan")
    return (predict(model, images)[known] == labels[known]).double().mean().item()


def load_task_network(name: str, path: str | Path | None = None) -> nn.Module:
    """A trained task network in eval mode with frozen weights."""
    path = Path(path) if path is not None else task_path(name)
    ckpt = load_checkpoint(path, kind="task")
    cfg = ckpt["config"]
    model = build_classifier(ckpt["arch"], cfg["in_channels"], cfg["n_classes"], tuple(cfg["image_hw"]))
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random shifts of up to 2 pixels and horizontal flips of a batch N x C x H x W (one shift for
    the batch, a flip per image; both preserve class labels and, applied to stacked image and
    mask channels, masks)."""
    n, _, h, w = x.shape
    padded = F.pad(x, (2, 2, 2, 2))
    dy, dx = torch.randint(0, 5, (2,), generator=generator).tolist()
    x = padded[:, :, dy:dy + h, dx:dx + w]
    flip = torch.rand(n, generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def fit_end_to_end(model: nn.Module, train: ImageSet, val: ImageSet, *, epochs: int, batch_size: int, lr: float,
                   generator: torch.Generator, desc: str, progress: bool, state_path: str | Path | None = None) -> float:
    """Every weight of ``model`` by cross-entropy on shifted and flipped training images; returns
    the best validation accuracy (its epoch's weights are loaded). ``state_path``: resumable
    state (see :func:`tosc.training.fit_best_epoch`)."""

    def batch_loss(idx: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(model(augment(train.images[idx], generator)), train.labels[idx])

    return fit_best_epoch(model, len(train), batch_loss, lambda: accuracy(model, val.images, val.labels),
                          epochs=epochs, batch_size=batch_size, lr=lr, generator=generator, desc=desc,
                          score_name="validation accuracy", progress=progress, state_path=state_path)


def train_classifier(arch: str, *, dataset: str = "fashion-mnist", epochs: int = 8, batch_size: int = 128,
                     lr: float = 2e-3, seed: int = 0, out: str | Path | None = None, root=None,
                     progress: bool = True) -> dict:
    """Train ``arch`` on clean training images; keep the best validation epoch; write a checkpoint.

    Returns the metrics dict (validation and test accuracy) that is also stored in the file.
    The task's registered ``fit`` (default ``fit_end_to_end``) fits the weights.
    """
    fit = registry.meta_of("task", arch).get("fit", fit_end_to_end)
    if epochs <= 0 or batch_size <= 0 or lr <= 0:
        raise ConfigError("epochs, batch_size and lr must be positive")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    train = load_dataset(dataset, "train", root=root, seed=seed)
    val = load_dataset(dataset, "validation", root=root, seed=seed)
    test = load_dataset(dataset, "test", root=root)
    c, h, w = train.shape
    model = build_classifier(arch, c, len(train.classes), (h, w))
    start = time.time()
    out = Path(out) if out is not None else task_path(arch)
    best_val = fit(model, train, val, epochs=epochs, batch_size=batch_size, lr=lr, generator=gen, desc=arch,
                   progress=progress, state_path=fit_state_path(out))
    metrics = {"validation_accuracy": best_val, "test_accuracy": accuracy(model, test.images, test.labels),
               "train_time_s": time.time() - start}
    config = {"dataset": dataset, "epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed,
              "in_channels": c, "n_classes": len(train.classes), "image_hw": [h, w]}
    save_checkpoint(out, kind="task", arch=arch,
                    state_dict=model.state_dict(), config=config, metrics=metrics)
    return metrics


def train_classifiers(names: list[str], only: list[str] | None = None, *, what: str = "a classifier of this kind",
                      zoo: str | Path | None = None, **fit_options) -> Iterator[tuple[str, dict]]:
    """:func:`train_classifier` for each registered task of ``names`` (all, or those in ``only``,
    which must be among them, else ``ConfigError`` saying they are not ``what``), written to
    ``zoo``/tasks/<name>.pt (default: the model zoo). Yields (name, metrics) as each one is
    fitted, so a script can report them as they come."""
    unknown = sorted(set(only or ()) - set(names))
    if unknown:
        raise ConfigError(f"not {what}: {', '.join(unknown)}; known: {', '.join(names)}")
    for name in names:
        if only and name not in only:
            continue
        out = Path(zoo) / "tasks" / f"{name}.pt" if zoo else task_path(name)
        yield name, train_classifier(name, out=out, **fit_options)
