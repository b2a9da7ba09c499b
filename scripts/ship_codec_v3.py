#!/usr/bin/env python
"""Put a trained codec v3 checkpoint into the zoo, with its measured validation curve.

    .venv/bin/python scripts/ship_codec_v3.py runs/v3c/mse-long.pt mse-only-v3 \
        --warm-start runs/v3/mse-only.pt runs/v3b/bal0.25.pt

Freezes the model (integer hyper-synthesis, CDF tables), measures real streams on the first
``--images`` images of the validation split at a few quality indices (bpp, mean PSNR, accuracy
of the training classifier; for a codec trained on scenes, the validation scenes and the
exact-set accuracy of the multi-label scene classifier) and writes ``src/tosc/zoo/codecs/NAME.pt`` without optimiser
state. ``train_time_s`` is the checkpoint's own training time plus that of every warm start
listed, so the README can state the whole recipe's cost.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

import tosc  # noqa: F401
from tosc.cli.script import exits_on_error

SHIP_QUALITIES = (0, 16, 32, 64, 96, 127)


def validation_scorer(val):
    """(task name, score) of a shipped validation curve: ``score(decoded)`` is the accuracy of the
    training classifier on ``val`` (an :class:`~tosc.data.ImageSet`), or for scenes the exact-set
    accuracy of the multi-label scene classifier the scene codecs are trained through."""
    from tosc.tasks import TRAINING_TASK, accuracy, load_task_network
    from tosc.tasks.semantic import load_training_task

    if hasattr(val, "present"):
        from tosc.tasks.scenes import multilabel_scores, predict_present, scene_training_task

        name = scene_training_task(val.images.shape[1])
        task = load_training_task(name)
        return name, lambda decoded: multilabel_scores(predict_present(task, decoded), val.present)["exact_set_accuracy"]
    task = load_task_network(TRAINING_TASK)
    return TRAINING_TASK, lambda decoded: accuracy(task, decoded, val.labels)


@exits_on_error
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src")
    parser.add_argument("name")
    parser.add_argument("--warm-start", nargs="*", default=[], help="checkpoints this one was warm-started from")
    parser.add_argument("--images", type=int, default=1000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    from tosc.checkpoint import load_checkpoint
    from tosc.data import load_dataset
    from tosc.metrics import psnr_db
    from tosc.source_coding.learned.conv_codec import ConvLearnedCodec, stream_bits
    from tosc.zoo import zoo_dir

    ckpts = [load_checkpoint(p, kind="codec") for p in [args.src, *args.warm_start]]
    # a training checkpoint keeps its time in train_state; a shipped (zoo) codec, warm-started
    # from, has the whole chain's time at the top level
    times = [c.get("train_state", {}).get("train_time_s", c.get("train_time_s", 0.0)) for c in ckpts]
    dest = zoo_dir() / "codecs" / f"{args.name}.pt"
    # measure the model as it will be read back (float16 weights), not the training copy
    ConvLearnedCodec.load(args.src).save(dest)
    codec = ConvLearnedCodec.load(dest)
    # the validation split of the data set it was trained on (Fashion-MNIST or scenes)
    dataset = ckpts[0]["config"].get("train", {}).get("dataset", "fashion-mnist")
    val = load_dataset(dataset, "validation", limit=args.images)
    x = val.images
    h, w = x.shape[-2:]
    name, score = validation_scorer(val)
    metrics = {"images": len(x), "split": "validation", "dataset": dataset, "task": name,
               "qualities": list(SHIP_QUALITIES), "bpp": [], "psnr_db": [], "accuracy": []}
    for q in SHIP_QUALITIES:
        streams = codec.encode(x, q)
        decoded = codec.decode(streams, (h, w))
        metrics["bpp"].append(float(np.mean([stream_bits(s) for s in streams]) / (h * w)))
        metrics["psnr_db"].append(psnr_db(decoded, x).mean().item())
        metrics["accuracy"].append(score(decoded))
        print(f"q{q:3d}: {metrics['bpp'][-1]:.3f} bpp  {metrics['psnr_db'][-1]:.2f} dB  {name} {metrics['accuracy'][-1]:.3f}")
    codec.meta["metrics"] = metrics
    codec.save(dest, train_time_s=float(sum(times)), warm_start=list(args.warm_start))
    print(f"wrote {dest} ({dest.stat().st_size / 1e6:.2f} MB), training time {sum(times) / 60:.1f} min in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
