#!/usr/bin/env python
"""Train the shipped scene task networks on clean ``fashion-scenes`` (seeded; run niced, one thread).

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python scripts/train_scene_tasks.py detector \\
        [--train-scenes 6000] [--epochs 5] [--state runs/scenes/detector.state]
    .venv/bin/python scripts/train_scene_tasks.py export-detector      # best epoch so far -> zoo
    .venv/bin/python scripts/train_scene_tasks.py cnn                  # scene-classifier-cnn (TOSC-SR loss)
    .venv/bin/python scripts/train_scene_tasks.py hog                  # held-out scene-classifier-hog
    .venv/bin/python scripts/train_scene_tasks.py segmenter            # held-out scene U-Net
    .venv/bin/python scripts/train_scene_tasks.py score [--test-scenes 4000] [--noise 0 2 4]  # shipped networks, test scenes

The detector run checkpoints its whole state after every epoch and resumes from ``--state``
when rerun with the same arguments (kill it at any time). Checkpoints go to
src/tosc/zoo/tasks/ unless ``--out`` says otherwise; the final line gives the validation
scores and the training time.
"""

from __future__ import annotations

import argparse
import json
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("task", choices=["detector", "export-detector", "cnn", "hog", "segmenter", "score"])
    parser.add_argument("--dataset", default="fashion-scenes", help="fashion-scenes or fashion-scenes-rgb")
    parser.add_argument("--train-scenes", type=int, default=None,
                        help="first N training scenes (default: by task); beyond the split's 20,000 the "
                             "seeded layout continues with new scenes of the same training items")
    parser.add_argument("--validation-scenes", type=int, default=1000)
    parser.add_argument("--test-scenes", type=int, default=None, help="score: first N test scenes (default all)")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--input-size", type=int, default=128, help="detector: side the scenes are resized to")
    parser.add_argument("--fpn-channels", type=int, default=32, help="detector: channels of the FPN and FCOS head")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--state", default="runs/scenes/detector.state", help="detector: resumable training state")
    parser.add_argument("--init-from", default=None, help="detector: checkpoint to start from (a second schedule)")
    parser.add_argument("--out", default=None, help="checkpoint path (default: the model zoo)")
    parser.add_argument("--noise", type=float, nargs="+", default=[0.0],
                        help="score: also with Gaussian noise of these sigmas in grey levels (of 255; seeded, "
                             "rounded to 8 bits): how fragile each network is to small pixel errors")
    parser.add_argument("--noise-augment", type=float, default=0.0,
                        help="detector: Gaussian noise of sigma up to this many grey levels on half the training scenes")
    parser.add_argument("--detector", default=None, help="score: this detector checkpoint instead of the shipped one")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    from tosc.data import load_dataset
    from tosc.data.scenes import SCENE_COUNTS, make_scenes
    from tosc import registry
    from tosc.tasks import detection, scenes
    from tosc.zoo import task_path

    def data(default_train: int):
        val = load_dataset(args.dataset, "validation", seed=args.seed, limit=args.validation_scenes)
        n_train = args.train_scenes or default_train
        if n_train > SCENE_COUNTS["train"]:
            # more scenes than the split holds: the same seeded layout drawn further (its first
            # SCENE_COUNTS["train"] scenes are the split's; the rest are new compositions of the
            # same training items, never validation or test items)
            train = make_scenes("train", n=n_train, rgb=val.images.shape[1] == 3, seed=args.seed)
        else:
            train = load_dataset(args.dataset, "train", seed=args.seed, limit=n_train)
        return train, val

    def opts(**defaults):
        chosen = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr}
        return {k: (chosen[k] if chosen.get(k) is not None else v) for k, v in defaults.items()}

    progress = not args.quiet
    if args.task == "detector":
        train, val = data(6000)
        metrics = detection.train_detector(
            train, val, **opts(epochs=5, batch_size=32, lr=2e-3), input_size=args.input_size,
            fpn_channels=args.fpn_channels, seed=args.seed, init_from=args.init_from,
            state=args.state, out=args.out, progress=progress, noise_max=args.noise_augment,
            on_epoch=lambda epoch, h: print(json.dumps(h), flush=True))
    elif args.task == "score":
        from tosc.tasks.scene_scores import load_scene_tasks, score_scenes

        test = load_dataset(args.dataset, "test", limit=args.test_scenes)
        tasks = load_scene_tasks()
        if args.detector is not None:
            tasks.detector = detection.load_detector(path=args.detector)
        noise = torch.randn(test.images.shape, generator=torch.Generator().manual_seed(args.seed))
        for sigma in args.noise:
            received = ((test.images + sigma / 255 * noise).clamp(0, 1) * 255).round() / 255
            metrics = {"test_scenes": len(test), "noise_sigma_grey_levels": sigma,
                       **score_scenes(received, test, tasks)}
            if sigma != args.noise[-1]:
                print(json.dumps(metrics), flush=True)
    elif args.task == "export-detector":
        _, val = data(1)
        metrics = detection.export_detector(args.state, val, out=args.out)
    elif args.task in ("cnn", "hog"):
        train, val = data(6000 if args.task == "cnn" else 20000)
        # the network of this role for the data set's scenes (grey or colour), by registry metadata
        arch, role = ("scene-cnn", "scene-training") if args.task == "cnn" else ("hog-mlp", "held-out")
        (name,) = registry.select("task", role=role, output="present", channels=train.images.shape[1])
        defaults = dict(epochs=4, batch_size=64, lr=2e-3) if arch == "scene-cnn" else dict(epochs=30, batch_size=128,
                                                                                         lr=2e-3)
        metrics = scenes.train_scene_classifier(arch, train, val, **opts(**defaults), seed=args.seed,
                                                out=args.out or task_path(name), progress=progress)
    else:
        train, val = data(3000)
        metrics = scenes.train_scene_segmenter(train, val, **opts(epochs=2, batch_size=64, lr=3e-3), seed=args.seed,
                                               out=args.out, progress=progress)
    print(json.dumps({k: v for k, v in metrics.items() if k != "history"}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
