"""The semantic distortion of the TOSC-SR loss, shared by every trainer that uses one.

A frozen task network T judges the reconstruction x_hat against the clean image x:

- one class per image (softmax classifiers such as ``classifier-cnn``): cross-entropy of
  T(x_hat) to the label (the variational bound on I(X_hat; Y) of the paper) or the KL from
  T's belief on x;
- which classes are present (sigmoid multi-label networks such as ``scene-classifier-cnn``):
  the summed binary cross-entropy to the multi-hot target, or the summed Bernoulli KL from
  T's per-class probabilities on x.

The task is chosen by name and checked by :func:`~tosc.tasks.check_training_task` (never a
held-out network). A name may join several networks with "+" (``"classifier-cnn+classifier-mlp-train"``):
the semantic distortion is then the mean of each network's own term (:class:`TaskEnsemble`), so
no one network's inductive bias decides alone what the codec keeps.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import registry
from ..errors import ConfigError
from .classifiers import check_training_task

__all__ = ["SEMANTIC_KINDS", "TASK_JOIN", "task_names", "TaskEnsemble", "is_multilabel", "load_training_task",
           "semantic_targets", "semantic_distortion"]

SEMANTIC_KINDS = ("ce", "kl", "kl-feature")
#: weight of a network's relative feature distance in the "kl-feature" term (nats per unit of
#: ||phi(x_hat) - phi(x)||^2 / ||phi(x)||^2): it halves the KL's fall with the rate at 0.5 bpp
FEATURE_WEIGHT = 0.5
# joins the task networks of an ensemble term in a training ``task`` setting: a task list,
# not a system name (systems' "+" parts are read from the registry, never parsed)
TASK_JOIN = "+"


def task_names(task: str) -> tuple[str, ...]:
    """The task networks a training ``task`` setting names: "a+b+c" -> ("a", "b", "c"); one name
    -> (name,). Each is checked by ``check_training_task``; a repeated or empty name, or a mix of
    one-label and multi-label networks, is a ConfigError."""
    if not isinstance(task, str):
        raise ConfigError(f"task must be a name, or names joined with {TASK_JOIN!r} (got {task!r})")
    names = tuple(part.strip() for part in task.split(TASK_JOIN))
    if any(not n for n in names):
        raise ConfigError(f"task {task!r} has an empty name")
    if len(set(names)) != len(names):
        raise ConfigError(f"task {task!r} names a network twice")
    for name in names:
        check_training_task(name)
    if len({registry.meta_of("task", n).get("output") for n in names}) > 1:
        raise ConfigError(f"task {task!r} mixes one-label and multi-label networks")
    return names


class TaskEnsemble(torch.nn.Module):
    """Frozen task networks whose semantic terms :func:`semantic_distortion` averages (each
    network's KL or cross-entropy on its own output, not a KL of averaged logits)."""

    def __init__(self, networks: list[torch.nn.Module]) -> None:
        super().__init__()
        if not networks:
            raise ConfigError("an ensemble needs at least one task network")
        self.networks = torch.nn.ModuleList(networks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The mean logits, N x classes (for scoring only; the loss uses each network's own)."""
        return torch.stack([net(x) for net in self.networks]).mean(0)


def is_multilabel(task: str) -> bool:
    """True when the task network(s) answer "which classes are present" (one sigmoid per class)."""
    return registry.meta_of("task", task_names(task)[0]).get("output") == "present"


def load_training_task(name: str) -> torch.nn.Module:
    """The frozen task network ``name`` for a training loss (refuses held-out networks); for
    names joined with "+", a :class:`TaskEnsemble` of them."""
    names = task_names(name)
    # every task factory loads the network frozen, in eval mode
    networks = [registry.get("task", n).factory() for n in names]
    return networks[0] if len(networks) == 1 else TaskEnsemble(networks).eval()


def semantic_targets(data, task: str) -> torch.Tensor:
    """The targets of ``task``'s semantic term for a data set: its labels (int64 N) for a one-label
    classifier, ``SceneSet.present`` as float N x classes in {0, 1} for a multi-label one."""
    if not is_multilabel(task):
        return data.labels
    present = getattr(data, "present", None)
    if present is None:
        raise ConfigError(f"{task} is a multi-label scene network; {data.name} has no scene annotations")
    return present.float()


def semantic_distortion(task: torch.nn.Module, x_hat: torch.Tensor, x: torch.Tensor, labels: torch.Tensor,
                        kind: str, clean: dict | None = None) -> torch.Tensor:
    """Per-image semantic distortion in nats, float [N].

    x_hat, x: N x C x H x W in [0, 1] (x_hat is clamped first). labels: int64 [N] (one class
    per image) or float [N, classes] in {0, 1} (multi-hot, for a multi-label task). kind:
    "ce" (to the labels) or "kl" (from the task's output on x; labels unused), or "kl-feature":
    the KL plus ``FEATURE_WEIGHT`` times the relative squared distance of the network's learnt
    features (its ``features`` module, where it has one with weights: a CNN's last feature maps)
    between x_hat and x, a dense term that does not saturate once the decision is right. A
    :class:`TaskEnsemble` gives the mean of its networks' distortions. ``clean``: a dict that
    keeps the networks' outputs on x from one call to the next, for a caller that scores many
    x_hat against the same x (an encoder's search); the values are those computed without it.
    """
    if isinstance(task, TaskEnsemble):
        return torch.stack([semantic_distortion(net, x_hat, x, labels, kind, clean) for net in task.networks]).mean(0)

    def on_clean(what: str, compute):
        if clean is None:
            with torch.no_grad():
                return compute()
        key = (id(task), what)
        if key not in clean:
            with torch.no_grad():
                clean[key] = compute()
        return clean[key]

    logits = task(x_hat.clamp(0, 1))
    if labels.ndim == 2:
        if kind == "ce":
            return F.binary_cross_entropy_with_logits(logits, labels.float(), reduction="none").sum(1)
        p = on_clean("p", lambda: torch.sigmoid(task(x)))
        entropy = on_clean("entropy", lambda: F.binary_cross_entropy(p, p, reduction="none"))
        # KL(Bern(p) || Bern(q)) = BCE(q; target p) - H(p)
        return (F.binary_cross_entropy_with_logits(logits, p, reduction="none") - entropy).sum(1)
    if kind == "ce":
        return F.cross_entropy(logits, labels, reduction="none")
    target = on_clean("log_p", lambda: F.log_softmax(task(x), dim=1))
    kl = F.kl_div(F.log_softmax(logits, dim=1), target, log_target=True, reduction="none").sum(1)
    features = getattr(task, "features", None)
    if kind != "kl-feature" or features is None or not any(True for _ in features.parameters()):
        return kl
    reference = on_clean("features", lambda: features(x).flatten(1))
    moved = (features(x_hat.clamp(0, 1)).flatten(1) - reference).pow(2).sum(1)
    return kl + FEATURE_WEIGHT * moved / (reference.pow(2).sum(1) + 1e-6)
