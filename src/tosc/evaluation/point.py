"""One operating point: a system sends a set of images over a channel at (SNR, CBR).

The noise seed of a point is derived from its coordinates (channel, SNR, CBR) and the
user's seed only, never from the system or the order points run in: every system sees
the same noise, and a grid split over processes gives the same numbers as one process.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from ..channel import channel_uses, parse_cbr
from .. import registry
from ..metrics import ms_ssim, psnr_db
from ..results import ChannelSpec, RateSpec, ResultRecord
from ..systems import System, Transmission
from ..training import task_judges, task_trained_on
from ..errors import CorruptFileError
from ..tasks import (HELD_OUT_TASKS, SEGMENTATION_TASK, TRAINING_TASK, accuracy, load_segmenter, load_task_network,
                     segmentation_iou)

__all__ = ["OperatingPoint", "point_seed", "run_point", "score_images", "item_task_networks", "scene_task_networks",
           "score_scene_images"]


@dataclass(frozen=True)
class OperatingPoint:
    channel: str
    snr_db: float
    cbr: Fraction


def point_seed(seed: int, point: OperatingPoint) -> int:
    key = f"{seed}|{point.channel}|{float(point.snr_db)!r}|{point.cbr}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "little") % (2**63)


_TASKS: dict[str, torch.nn.Module] = {}


def _task(name: str) -> torch.nn.Module:
    if name not in _TASKS:
        _TASKS[name] = load_task_network(name)
    return _TASKS[name]


def _segmenter(name: str, shape: tuple[int, int, int]) -> torch.nn.Module | None:
    """The segmenter if it is installed and was trained on images of this shape (C, H, W)."""
    key = f"seg:{name}"
    if key not in _TASKS:
        try:
            _TASKS[key] = load_segmenter(name)
        except CorruptFileError:  # not installed: seg_iou is not measured
            _TASKS[key] = None
    net = _TASKS[key]
    if net is None or net.enc1[0].in_channels != shape[0] or shape[1] % 4 or shape[2] % 4:
        return None
    return net


_SCORES: dict[tuple, tuple] = {}  # per process: (task set, image key) -> that image's scores

#: bump when the meaning of a stored score row changes in a way the code digest does not catch
SCORE_FORMAT = 1
_SCORE_KINDS: dict[tuple, str | None] = {}


_SCORE_CACHE = f"scores-v{SCORE_FORMAT}"  # tosc.diskcache.shared_cache name


def _score_store():
    from ..diskcache import shared_cache

    return shared_cache(_SCORE_CACHE)


def _score_kind(tasks: tuple[str, ...], segmenter: str | None) -> str | None:
    """What an image's stored scores depend on besides the image: the task and segmenter
    files' contents, the source of the scoring code (this module, tosc.metrics, tosc.tasks)
    and the torch / torchmetrics versions. None (no disk cache) when a network's file cannot
    be read: loading it then raises the error that names it."""
    from .. import metrics as metrics_module
    from .. import tasks as tasks_package
    from ..diskcache import file_digest, source_digest
    from ..zoo import task_path, zoo_dir

    key = (tasks, segmenter, str(zoo_dir()))
    if key not in _SCORE_KINDS:
        import torchmetrics

        try:
            names = (*tasks, *([segmenter] if segmenter else []))
            networks = [f"{name}={file_digest(task_path(name))}" for name in names]
        except OSError:
            _SCORE_KINDS[key] = None
            return None
        task_sources = sorted(Path(tasks_package.__file__).parent.glob("*.py"))
        code = source_digest(__file__, metrics_module, *task_sources)
        _SCORE_KINDS[key] = (f"scores{SCORE_FORMAT}|{','.join(networks)}|seg={segmenter}|code={code}"
                             f"|torch={torch.__version__}|torchmetrics={torchmetrics.__version__}")
    return _SCORE_KINDS[key]


def _disk_scores(kind: str | None, keys: list[bytes], width: int) -> dict[bytes, tuple]:
    """Scores stored on disk for ``keys`` (rows of ``width`` float64 values); {} when the
    disk cache is off, absent or unusable (:func:`tosc.diskcache.cache_lookup`)."""
    from ..diskcache import cache_lookup

    out = {}
    for key, value in cache_lookup(_SCORE_CACHE, kind, keys).items():
        row = np.frombuffer(value, dtype="<f8")
        if len(row) == width:
            out[key] = tuple(float(v) for v in row)
    return out


def _store_scores(kind: str | None, rows: dict[bytes, tuple]) -> None:
    from ..diskcache import cache_store

    cache_store(_SCORE_CACHE, kind, {k: np.asarray(v, dtype="<f8").tobytes() for k, v in rows.items()})


def _image_keys(received: torch.Tensor, reference: torch.Tensor, labels: torch.Tensor) -> list[bytes]:
    rec = np.ascontiguousarray(received.detach().cpu().float().numpy())
    ref = np.ascontiguousarray(reference.detach().cpu().float().numpy())
    lab = labels.detach().cpu().numpy()
    return [hashlib.sha256(rec[i].tobytes() + ref[i].tobytes() + int(lab[i]).to_bytes(8, "little", signed=True))
            .digest() for i in range(len(rec))]


@torch.no_grad()
def _score_each(received: torch.Tensor, reference: torch.Tensor, labels: torch.Tensor, tasks: tuple[str, ...],
                seg) -> list[tuple]:
    """Per image: (PSNR dB, MS-SSIM, 1/0/NaN correct per task, IoU or NaN)."""
    from ..tasks import item_masks, predict

    psnr = psnr_db(received, reference).tolist()
    # one image at a time: MS-SSIM of a batch depends on the batch in the last float bits, and
    # at 28 x 28 (upsampled to 112 x 112) single images are also faster than large batches
    msssim = [ms_ssim(received[i:i + 1], reference[i:i + 1]).item() for i in range(len(received))]
    known = (labels >= 0).tolist()
    correct = [(predict(_task(name), received) == labels).tolist() for name in tasks]
    if seg is not None:
        from ..tasks.segmentation import predict_masks

        pred, truth = predict_masks(seg, received), item_masks(reference)
        inter = (pred & truth).flatten(1).sum(1).double()
        union = (pred | truth).flatten(1).sum(1).double()
        iou = torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union)).tolist()
    else:
        iou = [float("nan")] * len(received)
    return [(psnr[i], msssim[i], *(float(c[i]) if known[i] else float("nan") for c in correct), iou[i])
            for i in range(len(received))]


def score_images(received: torch.Tensor, reference: torch.Tensor, labels: torch.Tensor,
                 tasks: tuple[str, ...] = (TRAINING_TASK, *HELD_OUT_TASKS),
                 segmenter: str | None = SEGMENTATION_TASK) -> dict[str, float]:
    """PSNR (mean of per-image dB; ``psnr_db_of_mean_mse``: the PSNR of their mean squared
    error, images in [0, 1]), MS-SSIM (upsampled, see tosc.metrics), task accuracies and,
    where the segmenter fits the images, ``seg_iou``: the mean IoU of the item mask it predicts
    on ``received`` against the ground-truth mask of the clean ``reference`` (tosc.tasks.segmentation).

    Scores are per image and depend on nothing else, so each distinct (received, reference,
    label) is scored once per process: the fallback image, or a classic decode that many
    operating points share, costs one evaluation. Scores also go to an on-disk cache
    (``scores-v1.sqlite3`` in the cache folder, :mod:`tosc.diskcache`) keyed by the image
    and by the task files' and scoring code's digests, so a second run of the same grid
    looks them up (the values are the same bit for bit: stored as float64).
    """
    seg = _segmenter(segmenter, tuple(reference.shape[1:])) if segmenter else None
    task_key = (tuple(tasks), segmenter if seg is not None else None)
    keys = _image_keys(received, reference, labels)
    missing: dict[bytes, int] = {}
    for i, key in enumerate(keys):
        if (task_key, key) not in _SCORES and key not in missing:
            missing[key] = i
    if missing:
        if len(_SCORES) > 1_000_000:
            _SCORES.clear()
        # then the disk (scores of an earlier run), and only what is in neither is computed
        kind = _score_kind(tuple(tasks), task_key[1])
        for key, score in _disk_scores(kind, list(missing), 3 + len(tasks)).items():
            _SCORES[(task_key, key)] = score
            del missing[key]
    if missing:
        rows = list(missing.values())
        computed = dict(zip(missing, _score_each(received[rows], reference[rows], labels[rows], tasks, seg)))
        for key, score in computed.items():
            _SCORES[(task_key, key)] = score
        _store_scores(kind, computed)
    table = np.array([_SCORES[(task_key, key)] for key in keys], dtype=np.float64).reshape(len(keys), -1)
    with np.errstate(invalid="ignore"):
        means = [float(np.nanmean(col)) if len(col) and not np.isnan(col).all() else float("nan")
                 for col in table.T] if len(keys) else [float("nan")] * (3 + len(tasks))
    metrics = {"psnr_db": means[0], "ms_ssim": means[1]}
    if len(keys):
        # the PSNR of the mean squared error, from the same per-image values: where some images
        # arrive losslessly (counted at the cap in psnr_db's mean) it weighs the worst images most
        mse = np.power(10.0, -table[:, 0] / 10.0)
        metrics["psnr_db_of_mean_mse"] = float(-10.0 * np.log10(mse.mean()))
    for j, name in enumerate(tasks):
        metrics["accuracy" if name == TRAINING_TASK else f"accuracy_{name}"] = means[2 + j]
    if seg is not None:
        metrics["seg_iou"] = means[-1]
    return metrics


def item_task_networks(dataset: str, shape: tuple[int, int, int]) -> tuple[str, ...]:
    """The one-label classifiers (the training one, then the held-out ones) that judge images of
    ``dataset`` at ``shape``: those trained on that data set at that size. Images of any other
    data set (a user's image folder, CIFAR-10) are scored by PSNR and MS-SSIM only: a Fashion-MNIST
    classifier's accuracy on them would measure nothing."""
    return tuple(name for name in (TRAINING_TASK, *HELD_OUT_TASKS) if task_judges(name, dataset, tuple(shape)))


def scene_task_networks(shape: tuple[int, int, int]) -> tuple[str, ...]:
    """The registered scene task networks (task metadata ``images="scenes"``) that were trained on
    images of ``shape`` (C, H, W), sorted: a network for grey 64 x 64 scenes does not judge colour
    scenes. Read from the zoo's checkpoint index (no weights loaded); a network whose file is not
    readable there is kept, so that loading it says what is wrong."""
    out = []
    for name in registry.select("task", images="scenes"):
        seen = task_trained_on(name)
        if seen is None or seen["shape"] in (None, tuple(shape)):
            out.append(name)
    return tuple(out)


def _scene_tasks(names: tuple[str, ...]):
    """The loaded networks of ``names`` as a SceneTasks (one detector and segmenter at most) and, per
    metric key that :func:`tosc.tasks.scene_scores.score_scenes` writes, the network behind it."""
    from ..tasks.scene_scores import SceneTasks

    tasks, scored_by = SceneTasks(), {}
    for name in names:
        output = registry.meta_of("task", name).get("output")
        key = f"scene:{name}"
        if key not in _TASKS:
            _TASKS[key] = registry.get("task", name).factory()
        if output == "boxes":
            tasks.detector = _TASKS[key]
            scored_by.update({"det_map_50": name, "det_map": name})
        elif output == "present":
            tasks.classifiers[name] = _TASKS[key]
            scored_by.update({f"scene_exact_{name}": name, f"scene_f1_{name}": name})
        elif output == "scene-mask":
            tasks.segmenter = _TASKS[key]
            scored_by["scene_seg_iou"] = name
    return tasks, scored_by


_SCENE_SCORES: dict[tuple, dict[str, float]] = {}  # per process: (networks, received, scenes) -> scores


def _scene_key(received: torch.Tensor, scenes) -> tuple[bytes, bytes]:
    rec = np.ascontiguousarray(received.detach().cpu().float().numpy())
    n = len(received)
    truth = hashlib.sha256()
    for part in (scenes.images[:n], scenes.object_classes[:n], scenes.boxes[:n], scenes.instance_map[:n]):
        truth.update(np.ascontiguousarray(part.numpy()).tobytes())
    return hashlib.sha256(rec.tobytes()).digest(), truth.digest()


def score_scene_images(received: torch.Tensor, scenes, names: tuple[str, ...] | None = None
                       ) -> tuple[dict[str, float], dict[str, str]]:
    """Scores of ``received`` (float N x C x H x W in [0, 1], decoded from the first N scenes of the
    :class:`~tosc.data.scenes.SceneSet` ``scenes``) and which network gave each task score.

    PSNR and MS-SSIM as :func:`score_images`; then the scene tasks ``names`` (default: every one
    that fits, :func:`scene_task_networks`) against the scenes' annotations, by
    :func:`tosc.tasks.scene_scores.score_scenes`: ``det_map_50``, ``det_map`` (detection mAP@0.5
    and mAP@[.5:.95], a set metric over all N scenes), ``scene_exact_<task>`` and
    ``scene_f1_<task>`` (exact-set accuracy, mean F1), ``scene_seg_iou``.

    The task scores are computed for the whole set at once (detection mAP does not split into
    per-image parts) and kept per process by content: a point whose received scenes equal an
    earlier one's (e.g. every image fell back) costs one evaluation.
    """
    from ..tasks.scene_scores import score_scenes

    n = len(received)
    metrics = score_images(received, scenes.images[:n], scenes.labels[:n], tasks=(), segmenter=None)
    names = scene_task_networks(tuple(scenes.images.shape[1:])) if names is None else tuple(names)
    tasks, scored_by = _scene_tasks(names)
    if not n or not names:
        return metrics, scored_by
    key = (names, *_scene_key(received, scenes))
    if key not in _SCENE_SCORES:
        if len(_SCENE_SCORES) > 10_000:
            _SCENE_SCORES.clear()
        _SCENE_SCORES[key] = score_scenes(received, scenes, tasks)
    metrics.update(_SCENE_SCORES[key])
    return metrics, scored_by


def run_point(system: System, images: torch.Tensor, labels: torch.Tensor, point: OperatingPoint, *,
              dataset: str, split: str, seed: int, config: dict | None = None,
              scenes=None) -> tuple[Transmission, ResultRecord]:
    """Send ``images`` (N x C x H x W in [0, 1]) through ``system`` at ``point`` and score them.

    ``scenes``: the :class:`~tosc.data.scenes.SceneSet` the images come from; then the scene
    tasks score the record (:func:`score_scene_images`) instead of the one-label classifiers,
    and ``config["task_networks"]`` names the network behind each task metric."""
    n, c, h, w = images.shape
    k = channel_uses(point.cbr, (c, h, w))
    started = time.perf_counter()
    tx = system.transmit(images, snr_db=point.snr_db, n_channel_uses=k, channel=point.channel,
                         seed=point_seed(seed, point))
    transmit_s = time.perf_counter() - started
    started = time.perf_counter()
    if scenes is None:
        tasks = item_task_networks(dataset, (c, h, w))
        segmenter = SEGMENTATION_TASK if task_judges(SEGMENTATION_TASK, dataset, (c, h, w)) else None
        metrics = score_images(tx.received, images, labels, tasks=tasks, segmenter=segmenter)
        if tasks != (TRAINING_TASK, *HELD_OUT_TASKS):  # say which networks judged (none: other images)
            config = {**(config or {}), "task_networks": list(tasks)}
    else:
        metrics, scored_by = score_scene_images(tx.received, scenes)
        config = {**(config or {}), "task_networks": scored_by}
    metrics["failure_rate"] = float(1.0 - tx.ok.mean()) if n else float("nan")
    metrics["did_not_fit_rate"] = float(1.0 - tx.fitted.mean()) if n else float("nan")
    metrics["decode_error_rate"] = float(tx.decode_errors.mean()) if n else float("nan")
    metrics["failed_codewords_per_image"] = float(tx.failed_codewords.mean()) if n else float("nan")
    payload = float(tx.payload_bits.mean()) if n else 0.0
    record = ResultRecord(
        system=system.name, dataset=dataset, split=split, n_images=n,
        channel=ChannelSpec(point.channel, float(point.snr_db)),
        rate=RateSpec(bpp=payload / (h * w), payload_bits_per_image=payload,
                      channel_uses_per_image=float(tx.channel_uses.mean()) if n else 0.0, cbr=float(point.cbr)),
        metrics=metrics,
        timings_s={"transmit": transmit_s, "score": time.perf_counter() - started},
        config={"channel_uses_allotted": k, "mode": system.mode, **tx.info, **(config or {})},
        seed=seed,
    )
    return tx, record
