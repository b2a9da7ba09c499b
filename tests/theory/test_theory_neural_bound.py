"""The learned upper bound on R(D_p, I_0) (tosc.theory.neural_bound, issue 22) against closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tosc.errors import ConfigError, DataError
from tosc.theory import closed_forms as cf
from tosc.theory.neural_bound import (
    GaussianRegressionHead,
    NeuralBoundConfig,
    class_information_bits,
    train_bound,
    upper_bound_at,
)

VARIANCES = torch.tensor([4.0, 1.0, 0.25, 0.0625])


def gaussian(n: int, seed: int, variances: torch.Tensor = VARIANCES) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, len(variances), generator=g) * variances.sqrt()


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("lambda_p", [0.5, 4.0])
def test_recovers_the_gaussian_rate_distortion_function(lambda_p):
    """Independent Gaussian components under squared error: the estimate sits on the closed-form
    reverse water-filling R(D) at the distortion it reaches, within its stated error."""
    config = NeuralBoundConfig(lambda_p=lambda_p, arch="linear", latent_dim=4, prior_components=1, epochs=20,
                               batch_size=256, lr=2e-2, eval_samples=4)
    point = train_bound(config, gaussian(4096, 0), gaussian(8192, 1))
    exact = cf.vector_gaussian_rate(VARIANCES.numpy(), np.zeros(4), 4 * point.distortion, 0.0).rate_bits
    assert exact > 0.5  # a point on the curve, not the trivial rate 0
    assert abs(point.rate_bits - exact) <= 0.05 + 3 * point.rate_bits_se
    assert point.rate_per_dim_bits == pytest.approx(point.rate_bits / 4)
    assert point.semantic_info_bits is None and point.epochs == 20 and point.n_eval == 8192


def test_semantic_bound_on_a_gaussian_source_is_achievable_and_close():
    """Y = X_1 + N (rho^2 = 0.8), X_2 irrelevant. The certified point (D, I_0) with
    I_0 = h(Y) - E[-log c(Y|Xhat)] must not beat the closed-form R(D, I_0) (it is an upper
    bound) and, with a linear Gaussian predictor, must come close to it."""
    variances, rho2 = torch.tensor([1.0, 1.0]), 0.8
    x, x_eval = gaussian(4096, 2, variances), gaussian(8192, 3, variances)
    noise_var = (1 - rho2) / rho2

    def target(v: torch.Tensor, seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        return v[:, :1] + math.sqrt(noise_var) * torch.randn(len(v), 1, generator=g)

    h_y = 0.5 * math.log2(2 * math.pi * math.e * (1.0 + noise_var))
    config = NeuralBoundConfig(lambda_p=0.5, lambda_s=2.0, arch="linear", latent_dim=2, prior_components=1,
                               epochs=20, batch_size=256, lr=2e-2, eval_samples=4)
    point = train_bound(config, x, x_eval, train_y=target(x, 4), eval_y=target(x_eval, 5),
                        predictor=GaussianRegressionHead(2, 1), target_entropy_bits=h_y)
    def exact(info: float) -> float:
        return cf.vector_gaussian_rate(variances.numpy(), np.array([rho2, 0.0]), 2 * point.distortion,
                                       info).rate_bits

    assert point.semantic_info_bits > 0.5  # the semantic term did its work (I(X;Y) = 1.16 bits)
    # the estimated I_0 carries sampling error; R(D, I_0) turns it into rate error with its slope
    slope = (exact(point.semantic_info_bits + 0.01) - exact(point.semantic_info_bits - 0.01)) / 0.02
    se = math.hypot(point.rate_bits_se, slope * point.semantic_info_se)
    assert abs(point.rate_bits - exact(point.semantic_info_bits)) <= 0.02 + 3 * se


def test_checkpoint_resumes_and_refuses_other_settings(tmp_path):
    x, x_eval = gaussian(512, 6), gaussian(512, 7)
    ckpt = tmp_path / "bound.pt"
    short = NeuralBoundConfig(lambda_p=1.0, arch="mlp", latent_dim=2, width=8, prior_components=2, epochs=2)
    first = train_bound(short, x, x_eval, checkpoint=ckpt)
    again = train_bound(short, x, x_eval, checkpoint=ckpt)  # finished: re-evaluated, not retrained
    assert again.epochs == 2 and again.train_seconds == pytest.approx(first.train_seconds)
    assert again.rate_bits == pytest.approx(first.rate_bits) and again.distortion == pytest.approx(first.distortion)
    from tosc.errors import CorruptFileError

    with pytest.raises(CorruptFileError, match="other settings"):
        train_bound(NeuralBoundConfig(lambda_p=2.0, arch="mlp", latent_dim=2, width=8, prior_components=2,
                                      epochs=2), x, x_eval, checkpoint=ckpt)


def test_class_information_calibrates_the_temperature():
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 10, (4000,), generator=g)
    logits = torch.randn(4000, 10, generator=g)
    logits[torch.arange(4000), labels] += 1.5
    info, se, temperature = class_information_bits(5.0 * logits, labels, math.log2(10))  # over-confident
    plain = math.log2(10) - float(torch.nn.functional.cross_entropy(5.0 * logits, labels)) / math.log(2)
    assert info > plain + 1.0 and 3.0 < temperature < 4.0 and 0 < se < 0.05
    # the fitted temperature undoes any scaling of the logits
    assert class_information_bits(logits, labels, math.log2(10))[0] == pytest.approx(info, abs=1e-6)


def test_upper_bound_takes_the_cheapest_point_that_is_good_enough():
    points = [
        {"distortion": 0.01, "rate_per_dim_bits": 0.1, "semantic_info_bits": 2.0},
        {"distortion": 0.005, "rate_per_dim_bits": 0.3, "semantic_info_bits": 2.5},
        {"distortion": 0.002, "rate_per_dim_bits": 0.8, "semantic_info_bits": 2.9},
    ]
    assert upper_bound_at(points, 0.01, 0.0)["rate_per_dim_bits"] == 0.1
    assert upper_bound_at(points, 0.01, 2.2)["rate_per_dim_bits"] == 0.3
    assert upper_bound_at(points, 0.004, 0.0)["rate_per_dim_bits"] == 0.8
    assert upper_bound_at(points, 0.001, 0.0) is None and upper_bound_at(points, 0.01, 3.0) is None


@pytest.mark.parametrize("kwargs, match", [
    ({"lambda_p": -1.0}, "lambda_p"),
    ({"lambda_p": 0.0}, "cannot both be 0"),
    ({"lambda_p": 1.0, "arch": "transformer"}, "unknown arch"),
    ({"lambda_p": 1.0, "epochs": 0}, "epochs"),
])
def test_bad_settings_are_config_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        NeuralBoundConfig(**kwargs)


def test_bad_data_and_missing_predictor():
    x = gaussian(64, 8)
    with pytest.raises(DataError):
        train_bound(NeuralBoundConfig(lambda_p=1.0, arch="linear"), x, gaussian(64, 9)[:, :3])
    with pytest.raises(DataError, match="non-finite"):
        train_bound(NeuralBoundConfig(lambda_p=1.0, arch="linear"), x, x * float("nan"))
    with pytest.raises(ConfigError, match="predictor"):
        train_bound(NeuralBoundConfig(lambda_p=1.0, lambda_s=1.0, arch="linear"), x, x)
    with pytest.raises(DataError, match="conv"):
        train_bound(NeuralBoundConfig(lambda_p=1.0, arch="conv"), x, x)


def test_cli_image_source_writes_the_bound_with_its_provenance(tmp_path, capsys):
    """A tiny run through `tosc theory --source fashion-mnist-images`: bound.json holds the point
    with its training time, the config, seed, versions and git commit; a rerun resumes from the
    checkpoint (same numbers, no new training)."""
    import json

    from tosc.cli import main
    from tosc.data import load_dataset
    from tosc.errors import DatasetNotFoundError

    try:
        load_dataset("fashion-mnist", "test", limit=2)
    except DatasetNotFoundError as exc:
        pytest.skip(str(exc))
    args = ["theory", "--source", "fashion-mnist-images", "--out", str(tmp_path / "b"), "--lambda-p", "50",
            "--lambda-s", "0", "--epochs", "1", "--train-images", "64", "--eval-images", "32", "--width", "8",
            "--latent-dim", "4", "--seed", "3", "--quiet"]
    assert main(args) == 0
    record = json.loads((tmp_path / "b" / "bound.json").read_text())
    assert record["seed"] == 3 and record["config"]["lambda_ps"] == [50.0] and record["config"]["width"] == 8
    assert record["versions"]["torch"] and record["git_commit"]
    (point,) = record["points"]
    assert point["epochs"] == 1 and point["train_seconds"] > 0 and point["n_eval"] == 32
    assert point["rate_bits"] > 0 and 0 < point["distortion"] < 1 and point["semantic_info_bits"] is not None
    assert (tmp_path / "b" / record["plots"]["rate_vs_distortion"]).is_file()
    assert main(args) == 0
    again = json.loads((tmp_path / "b" / "bound.json").read_text())["points"][0]
    assert again["train_seconds"] == point["train_seconds"] and again["rate_bits"] == pytest.approx(point["rate_bits"])
    assert main(args[:-3] + ["--seed", "4", "--quiet"]) == 2  # other settings: refuses the old checkpoint
    assert "other settings" in capsys.readouterr().err
