"""Codec v3's refining encoder: it only ever lowers the loss it searches, the semantic term
moves the task networks towards their clean answers, budgets still hold, and the fast
encoder is the analysis transform as before."""

from __future__ import annotations

import dataclasses
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tosc.errors import ConfigError
from tosc.source_coding.learned.conv import MEAN_FRACTION, QUALITY_LEVELS, quality_band
from tosc.source_coding.learned.conv_codec import ConvLearnedCodec, stream_bits
from tosc.source_coding.learned.refine import EncoderObjective, Refinement, encoder_loss, refine_latents


@pytest.fixture(scope="module")
def images(fashion_test_slice):
    return fashion_test_slice.images[:24]


@pytest.fixture(scope="module")
def codecs():
    return {name: ConvLearnedCodec.load(name) for name in ("mse-only-v3", "tosc-sr-v3")}


def _fast(codec):
    """The same codec with the fast encoder (the analysis transform's latent)."""
    return dataclasses.replace(codec, refinement=Refinement(steps=0))


def _hyper(codec, x, q):
    """The pieces the encoder holds fixed: gained latent, means (1/16 units), scale indices."""
    m = codec.model
    quality = np.full(len(x), q)
    t = torch.full((len(x),), q / (QUALITY_LEVELS - 1))
    y_s = m.g_a(F.pad(x, m.padding_for(*x.shape[-2:]))) * m.gain(t)
    band = torch.from_numpy(quality_band(quality, m.config.z_bands))
    z_sym = torch.round(m.hyper_analysis(y_s) - codec._z_medians[band])
    mean_num, index = m.split_params(m.h_s.run_exact(z_sym), y_s.shape[-2:])
    return quality, t, y_s.double(), mean_num, index


def _loss(codec, x, y, t, mean_num, index):
    m, task = codec.model, codec.task_network()
    w_pixel, w_sem = codec.objective.weights(t)
    return encoder_loss(m, x, y.float(), t, m.padding_for(28, 28), mean_num.float() / MEAN_FRACTION,
                        m.scales[index.long()], w_pixel, w_sem, *(task or (None, False)))


@pytest.mark.parametrize("name", ["mse-only-v3", "tosc-sr-v3"])
@torch.no_grad()
def test_refinement_never_raises_an_images_loss_and_lowers_the_mean(codecs, images, name):
    codec = codecs[name]
    quality, t, y_s, mean_num, index = _hyper(codec, images, 40)
    task = codec.task_network()
    refined = refine_latents(codec.model, images, y_s, quality, mean_num, index, codec.objective, Refinement(),
                             *(task or (None, False)))
    before, after = _loss(codec, images, y_s, t, mean_num, index), _loss(codec, images, refined, t, mean_num, index)
    assert (after <= before).all()
    assert after.mean() < 0.99 * before.mean()  # (measured: 2 to 4% lower at 20 steps)


@torch.no_grad()
def test_the_semantic_term_moves_the_task_networks_towards_their_clean_answers(codecs, images):
    """tosc-sr-v3 refined at a mid rate: the training networks' KL to their clean output falls,
    and a held-out network agrees with its clean answers at least as often."""
    from tosc.tasks import HELD_OUT_TASKS, load_task_network
    from tosc.tasks.semantic import semantic_distortion

    codec = codecs["tosc-sr-v3"]
    task, _ = codec.task_network()
    fast = _fast(codec)
    plain = fast.decode(fast.encode(images, 40), (28, 28))
    refined = codec.decode(codec.encode(images, 40), (28, 28))
    labels = torch.zeros(len(images), dtype=torch.int64)
    kl_plain = semantic_distortion(task, plain, images, labels, "kl").mean()
    kl_refined = semantic_distortion(task, refined, images, labels, "kl").mean()
    assert kl_refined < 0.8 * kl_plain
    held = load_task_network(HELD_OUT_TASKS[0])
    clean = held(images).argmax(1)
    assert (held(refined).argmax(1) == clean).sum() >= (held(plain).argmax(1) == clean).sum() - 1


@torch.no_grad()
def test_no_steps_is_the_fast_encoder(codecs, images):
    codec = codecs["mse-only-v3"]
    fast = _fast(codec)
    y = codec.latents(images)[0]
    assert fast.encode(images, 40) == codec.encode_latents(y, 40)  # the analysis's latent, no search
    assert codec.encode(images, 40) != fast.encode(images, 40)
    # a codec whose checkpoint names no training loss (a test's tiny codec) does not refine
    assert ConvLearnedCodec(codec.model, "bare", {}).refinement.steps == 0


@torch.no_grad()
def test_refined_streams_fill_the_budget_and_never_exceed_it(codecs, images):
    codec = codecs["tosc-sr-v3"]
    for budget in (150, 360):
        streams, quality = codec.encode_to_budget(images, budget)
        bits = np.array([stream_bits(s) for s in streams])
        assert (bits <= budget).all()
        assert bits.mean() >= 0.93 * budget
        decoded = codec.decode(streams, (28, 28))
        assert decoded.shape == images.shape


def test_objective_reads_the_training_config_and_bad_settings_are_refused():
    obj = EncoderObjective.from_train_config({"lambda_min": 2.0, "lambda_max": 1.2e5, "lambda_s": 0.1,
                                              "semantic_exponent": 1.0, "semantic_lambda_cap": 1000,
                                              "task": "classifier-cnn"})
    w_pixel, w_sem = obj.weights(torch.tensor([0.0, 1.0]))
    assert torch.allclose(w_pixel, torch.tensor([2.0, 1.2e5]))
    assert torch.allclose(w_sem, torch.tensor([0.1, 0.1 * 500]))  # held at the cap above lambda_p 1000
    assert EncoderObjective.from_train_config({"lambda_s": 0.0, "task": "classifier-cnn"}).task is None
    for bad in (dict(steps=-1), dict(steps=2.5), dict(lr=0.0), dict(lr=float("nan"))):
        with pytest.raises(ConfigError):
            Refinement(**bad)


def test_cli_refine_steps_choose_the_encoder_and_both_decode(codecs, tmp_path, fashion_test_slice, capsys):
    from tosc.cli import main

    images = (fashion_test_slice.images[:4].numpy() * 255).round().astype(np.uint8)
    np.savez(tmp_path / "x.npz", images=images)
    for steps in ("0", "5"):
        out = tmp_path / f"x{steps}.tosc"
        assert main(["encode", str(tmp_path / "x.npz"), "-m", "tosc-sr-v3", "-q", "40", "--refine-steps", steps,
                     "-o", str(out)]) == 0
        assert main(["decode", str(out), "-o", str(tmp_path / f"y{steps}.npz")]) == 0
    assert (tmp_path / "x0.tosc").read_bytes() != (tmp_path / "x5.tosc").read_bytes()
    fast = _fast(codecs["tosc-sr-v3"])
    with np.load(tmp_path / "y0.npz") as decoded:
        expected = fast.decode(fast.encode(torch.from_numpy(images / 255.0).float(), 40), (28, 28)).numpy()
        assert np.array_equal(decoded["images"].reshape(expected.shape), expected)
    capsys.readouterr()
    assert main(["encode", str(tmp_path / "x.npz"), "-m", "tosc-sr-r1", "--refine-steps", "3",
                 "-o", str(tmp_path / "z.tosc")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "--refine-steps" in err and len(err.splitlines()) == 1


@torch.no_grad()
def test_images_above_the_pixel_cap_get_the_fast_encoder(codecs, monkeypatch):
    from tosc.source_coding.learned import refine

    codec = codecs["mse-only-v3"]
    fast = _fast(codec)
    big = torch.rand(1, 1, 40, 40, generator=torch.Generator().manual_seed(0))
    monkeypatch.setattr(refine, "MAX_REFINED_PIXELS", 32 * 32)
    assert codec.encode(big, 40) == fast.encode(big, 40)
    monkeypatch.setattr(refine, "MAX_REFINED_PIXELS", 40 * 40)  # 1 image per search batch
    three = torch.rand(3, 1, 40, 40, generator=torch.Generator().manual_seed(1))
    assert codec.encode(three, 40) != fast.encode(three, 40)


@torch.no_grad()
def test_at_a_budget_only_the_transform_modes_streams_are_refined(codecs, images):
    """The mode each image takes is the fast encoder's choice; refinement replaces transform
    streams only, at the same index or one above."""
    codec = codecs["tosc-sr-v3"]
    fast = _fast(codec)
    for budget in (60, 360, 900):
        streams, quality = codec.encode_to_budget(images, budget)
        f_streams, f_quality = fast.encode_to_budget(images, budget)
        assert (codec.mode_of(quality) == fast.mode_of(f_quality)).all()
        transform = codec.mode_of(quality) == 0
        assert ((quality - f_quality)[transform] >= 0).all() and ((quality - f_quality)[transform] <= 1).all()
        assert all(s == f for s, f, t in zip(streams, f_streams, transform) if not t)


def test_kept_clean_outputs_give_the_same_semantic_distortion(codecs, images):
    """The search keeps the networks' outputs on the clean images between steps; the values must
    be those computed afresh, for one-label ensembles and multi-label networks alike."""
    from tosc.tasks.semantic import load_training_task, semantic_distortion

    x_hat = (images + 0.05 * torch.randn_like(images)).clamp(0, 1)
    task, _ = codecs["tosc-sr-v3"].task_network()
    labels = torch.zeros(len(images), dtype=torch.int64)
    kept: dict = {}
    for kind in ("kl", "kl-feature"):
        fresh = semantic_distortion(task, x_hat, images, labels, kind)
        assert torch.equal(semantic_distortion(task, x_hat, images, labels, kind, kept), fresh)
        assert torch.equal(semantic_distortion(task, x_hat, images, labels, kind, kept), fresh)  # from the dict
    scene = load_training_task("scene-classifier-cnn")
    s = torch.rand(2, 1, 64, 64)
    s_hat = (s + 0.05).clamp(0, 1)
    present = torch.zeros(2, 1)
    kept = {}
    fresh = semantic_distortion(scene, s_hat, s, present, "kl")
    assert torch.equal(semantic_distortion(scene, s_hat, s, present, "kl", kept), fresh)
    assert torch.equal(semantic_distortion(scene, s_hat, s, present, "kl", kept), fresh) and kept


@torch.no_grad()
def test_the_rate_term_counts_bits_per_pixel_position_as_training_does():
    """An RGB codec's loss divides the bits by H x W, not 3 x H x W (the trainer's bpp)."""
    codec = ConvLearnedCodec.load("mse-only-v3-scenes-rgb")
    m = codec.model
    x = torch.rand(2, 3, 16, 24, generator=torch.Generator().manual_seed(0))
    q = 40
    quality, t, y_s, mean_num, index = _hyper(codec, x, q)
    means, sigma = mean_num.float() / MEAN_FRACTION, m.scales[index.long()]
    zero = torch.zeros(2)
    bits = -m.gaussian._likelihood(torch.round(y_s.float() - means) + means, sigma, means).clamp(min=1e-9).log2()
    got = encoder_loss(m, x, y_s.float(), t, m.padding_for(16, 24), means, sigma, zero, zero)
    assert torch.allclose(got, bits.flatten(1).sum(1) / (16 * 24), rtol=1e-4)
