"""``tosc theory --source fashion-mnist-images``: the learned bound on the images' own R(D_p, I_0).

:func:`run_image_bound` trains one :mod:`tosc.theory.neural_bound` estimator per
(lambda_p, lambda_s) on the Fashion-MNIST training split, measures each on the test split
and writes ``OUT/bound.json`` (every certified point with its training time, plus config,
seed, package versions and git commit) and ``OUT/plots/bound_rate_vs_distortion.png``. The
semantic target Y is the class; the predictor c(y|xhat) is the frozen training-time
classifier of the codecs (``tosc.tasks.TRAINING_TASK``), so the certified class
information H(Y) - CE is measured the same way for the bound and for any codec
(``scripts/theory_vs_codecs.py``). Checkpoints go to ``OUT/checkpoints/``: a rerun with
the same settings resumes an interrupted training and skips finished ones.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, CorruptFileError
from ..io import atomic_write_json
from ..provenance import git_commit, package_versions
from .neural_bound import BoundPoint, ClassifierHead, NeuralBoundConfig, train_bound
from .sources import IMAGE_SOURCES

__all__ = ["IMAGE_SOURCES", "ImageBoundConfig", "run_image_bound", "SCHEMA_VERSION"]

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ImageBoundConfig:
    """The grid and the estimator settings of one run.

    lambda_ps x lambda_ss: one trained estimator each (see :class:`NeuralBoundConfig`;
    lambda_p in bits per pixel per unit MSE, lambda_s per nat of classifier cross-entropy).
    n_train: training images (first n of the seeded train split, None = all 54000);
    n_eval: test images the bound is measured on (None = all 10000).
    """

    lambda_ps: tuple[float, ...] = (10.0, 50.0, 250.0, 1500.0)
    lambda_ss: tuple[float, ...] = (0.0, 0.1)
    epochs: int = 12
    latent_dim: int = 64
    width: int = 32
    prior_components: int = 16
    batch_size: int = 128
    lr: float = 2e-3
    n_train: int | None = 20_000
    n_eval: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("lambda_ps", "lambda_ss"):
            values = tuple(float(v) for v in getattr(self, name))
            if not values or any(not (math.isfinite(v) and v >= 0) for v in values):
                raise ConfigError(f"{name} must hold finite values >= 0, got {getattr(self, name)}")
            object.__setattr__(self, name, values)
        for name in ("n_train", "n_eval"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 2):
                raise ConfigError(f"{name} must be an integer >= 2 or None, got {value!r}")
        self.point_config(self.lambda_ps[0], self.lambda_ss[0])  # validates the estimator settings

    def point_config(self, lambda_p: float, lambda_s: float) -> NeuralBoundConfig:
        return NeuralBoundConfig(
            lambda_p=lambda_p, lambda_s=lambda_s, arch="conv", latent_dim=self.latent_dim, width=self.width,
            prior_components=self.prior_components, epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
            seed=self.seed,
        )


def _checkpoint_name(lambda_p: float, lambda_s: float) -> str:
    return f"bound_lp{lambda_p:g}_ls{lambda_s:g}.pt"


def run_image_bound(out_dir: str | Path, config: ImageBoundConfig | None = None, *, source: str = "fashion-mnist-images",
                    progress: bool = False, extra_config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train and measure every grid point; write OUT/bound.json (after each point) and the plot.

    Returns the JSON record. Points come in the order lambda_ss x lambda_ps.
    """
    if source not in IMAGE_SOURCES:
        raise ConfigError(f"unknown image source {source!r}; known: {', '.join(IMAGE_SOURCES)}")
    import torch

    from ..data import load_dataset
    from ..tasks import TRAINING_TASK, load_task_network

    config = ImageBoundConfig() if config is None else config
    out = Path(out_dir)
    train = load_dataset("fashion-mnist", "train", seed=config.seed, limit=config.n_train)
    test = load_dataset("fashion-mnist", "test", limit=config.n_eval)
    counts = torch.bincount(test.labels, minlength=len(test.classes)).double()
    p_y = counts / counts.sum()
    h_y = float(-(p_y[p_y > 0] * torch.log2(p_y[p_y > 0])).sum())  # H(Y) of the test labels
    head = ClassifierHead(load_task_network(TRAINING_TASK))
    config_json = {**asdict(config), "lambda_ps": list(config.lambda_ps), "lambda_ss": list(config.lambda_ss),
                   "predictor": TRAINING_TASK, **(extra_config or {})}
    record: dict[str, Any] = {
        "kind": "tosc-theory-image-bound",
        "schema_version": SCHEMA_VERSION,
        "source": {"name": source, "description": IMAGE_SOURCES[source], "dataset": "fashion-mnist",
                   "train_split": "train", "eval_split": "test", "n_train": len(train), "n_eval": len(test),
                   "label_entropy_bits": h_y, "n_pixels": int(np.prod(test.images.shape[1:]))},
        "method": "upper bound R(D_p, I_0) <= E KL(q(z|x) || p(z)) (Yang & Mandt 2022) at the measured pixel MSE "
                  "D_p and the Barber-Agakov bound I(Xhat;Y) >= H(Y) - CE(classifier(Xhat), Y) = I_0",
        "config": config_json,
        "seed": config.seed,
        "versions": package_versions(),
        "git_commit": git_commit(),
        "units": {"rate_bits": "bits per image", "rate_per_dim_bits": "bits per pixel",
                  "distortion": "pixel MSE (pixels in [0, 1])", "semantic_info_bits": "lower bound on I(Xhat;Y), bits",
                  "train_seconds": "wall seconds of training (summed over resumed runs)"},
        "points": [],
    }
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)  # small convolutions: one thread per process is as fast and leaves a core free
        for lambda_s in config.lambda_ss:
            for lambda_p in config.lambda_ps:
                if lambda_p == 0.0 and lambda_s == 0.0:
                    continue
                point_config = config.point_config(lambda_p, lambda_s)
                try:
                    point: BoundPoint = train_bound(
                        point_config, train.images, test.images, train_y=train.labels, eval_y=test.labels,
                        predictor=head, target_entropy_bits=h_y,
                        checkpoint=out / "checkpoints" / _checkpoint_name(lambda_p, lambda_s), progress=progress,
                    )
                except CorruptFileError as exc:
                    raise CorruptFileError(f"{exc} (the checkpoints in {out} were made with other settings)") from None
                record["points"].append(point.to_dict())
                atomic_write_json(out / "bound.json", record)
    finally:
        torch.set_num_threads(threads)
    plot_path = out / "plots" / "bound_rate_vs_distortion.png"
    _plot(record, plot_path)
    record["plots"] = {"rate_vs_distortion": str(plot_path.relative_to(out))}
    atomic_write_json(out / "bound.json", record)
    return record


def _plot(record: dict[str, Any], path: Path) -> None:
    from matplotlib.figure import Figure

    from .plots import save_png

    fig = Figure(figsize=(6, 4.2))
    ax = fig.add_subplot()
    for lambda_s in record["config"]["lambda_ss"]:
        pts = sorted((p["distortion"], p["rate_per_dim_bits"], p["semantic_info_bits"]) for p in record["points"]
                     if p["lambda_s"] == lambda_s)
        if not pts:
            continue
        d, r, info = zip(*pts)
        ax.plot(d, r, "o-", label=f"lambda_s = {lambda_s:g} (I >= {min(info):.2f}..{max(info):.2f} bits)")
    ax.set_xscale("log")
    ax.set_xlabel("pixel MSE D_p")
    ax.set_ylabel("upper bound on R (bits per pixel)")
    ax.set_title(f"{record['source']['name']}: learned upper bound on R(D_p, I_0)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_png(fig, path)

