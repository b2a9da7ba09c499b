"""Codec v3's global mode: a vector latent for the lowest rates at one image size."""

from __future__ import annotations

import dataclasses
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tosc.errors import ConfigError, CorruptFileError, DataError
from tosc.source_coding.learned.compressai_adapter import freeze_factorized
from tosc.source_coding.learned.conv import QUALITY_LEVELS
from tosc.source_coding.learned.conv_codec import ConvLearnedCodec, stream_bits
from tosc.source_coding.learned.refine import Refinement
from tosc.source_coding.learned.global_mode import GlobalMode, GlobalModeConfig

SMALL = dict(width=4, latent_dim=8, levels=4)


def _attached(tmp_path, base: ConvLearnedCodec, mode: GlobalMode, name: str = "g") -> ConvLearnedCodec:
    """``base`` with ``mode`` attached (its tables frozen), saved and loaded back as users load it."""
    freeze_factorized(mode.entropy_bottleneck)
    codec = ConvLearnedCodec(base.model, name=name, meta=base.meta, predictive=base.predictive, global_mode=mode)
    codec.save(tmp_path / f"{name}.pt")
    return ConvLearnedCodec.load(tmp_path / f"{name}.pt")


@pytest.fixture(scope="module")
def base():
    return ConvLearnedCodec.load("mse-only-v3")


@pytest.fixture()
def small(tmp_path, base):
    torch.manual_seed(0)
    return _attached(tmp_path, base, GlobalMode(GlobalModeConfig(**SMALL)))


def test_global_levels_follow_the_other_modes_and_round_trip(small, fashion_test_slice):
    images = fashion_test_slice.images[:8]
    assert small.global_first == QUALITY_LEVELS + len(small.predictive.steps)
    assert small.quality_levels == small.global_first + SMALL["levels"]
    quality = np.array([0, small.global_first, 130, small.quality_levels - 1] * 2)
    streams = small.encode(images, quality)
    mixed = small.decode(streams, (28, 28))
    assert torch.equal(mixed, small.decode(streams, (28, 28), per_image=True))
    for i in range(len(images)):
        assert torch.equal(small.decode([streams[i]], (28, 28))[0], mixed[i])
    assert list(small.mode_of(quality[:4])) == [0, 2, 1, 2]
    # a global stream is the index plus L symbols: no side information
    one = small.encode_global(small.global_latents(images[:1]), [small.global_first])[0]
    assert stream_bits(one) < 8 * (2 + SMALL["latent_dim"])


def test_global_mode_codes_its_own_size_only(small, fashion_test_slice):
    images = fashion_test_slice.images[:2]
    bigger = torch.nn.functional.pad(images, (2, 2, 2, 2))
    with pytest.raises(DataError, match="global mode for 1 x 28 x 28"):
        small.encode(bigger, small.global_first)
    assert small.ladder(bigger).g is None  # rate control never offers it there
    stream = small.encode(images[:1], small.global_first)[0]
    with pytest.raises(CorruptFileError, match="does not code"):
        small.decode([stream], (32, 32))
    with pytest.raises(DataError):
        small.encode_global(small.global_latents(images[:1]), [0])


def test_saved_global_mode_keeps_its_identity_and_the_tables_are_stored_packed(tmp_path, small, base):
    again = ConvLearnedCodec.load(tmp_path / "g.pt")
    assert again.model_id == small.model_id != base.model_id
    state = torch.load(tmp_path / "g.pt", weights_only=False)["state_dict"]
    assert state["gaussian._quantized_cdf"].ndim == 1 and state["global_mode.entropy_bottleneck._quantized_cdf"].ndim == 1
    torch.manual_seed(1)
    other = _attached(tmp_path, base, GlobalMode(GlobalModeConfig(**SMALL)), name="other")
    assert other.model_id != small.model_id  # other decoder weights, other identity


def test_rate_control_takes_the_global_mode_only_where_its_error_is_smaller(small, fashion_test_slice):
    # the mode choice, on the fast encoder's streams (the refining encoder then trades a transform
    # stream's error for its training loss: test_refine.py)
    small = dataclasses.replace(small, refinement=Refinement(steps=0))
    images = fashion_test_slice.images[:16]
    pixels = np.rint(images.numpy() * 255).astype(np.int64)
    ladder = small.ladder(images)
    for budget in (40, 60, 120):
        streams, quality = small.encode_to_budget(images, budget, ladder=ladder)
        fitting = [s for s in streams if s is not None]
        assert all(stream_bits(s) <= budget for s in fitting)
        decoded = np.rint(small.decode(fitting, (28, 28)).numpy() * 255).astype(np.int64)
        sse = ((decoded - pixels[quality >= 0]) ** 2).reshape(len(fitting), -1).sum(1)
        for mode_low, mode_high in ((0, QUALITY_LEVELS - 1), (small.global_first, small.quality_levels - 1)):
            alone, q_alone = small._bisect(ladder, np.full(len(images), budget), mode_low, mode_high)
            rows = np.flatnonzero((q_alone >= 0) & (quality >= 0))
            dec = np.rint(small.decode([alone[r] for r in rows], (28, 28)).numpy() * 255).astype(np.int64)
            own = ((dec - pixels[rows]) ** 2).reshape(len(rows), 28 * 28).sum(1)
            kept = sse[np.searchsorted(np.flatnonzero(quality >= 0), rows)]
            assert (kept <= own).all()


def test_training_a_global_mode_and_attaching_it(tmp_path, base, monkeypatch):
    from tosc.source_coding.learned import train_conv

    cfg = train_conv.ConvTrainConfig(mode="global", epochs=1, batch_size=16, train_images=64, global_width=4,
                                     global_latent=8, global_levels=4, lambda_min=1.0, lambda_max=30.0)
    log = train_conv.train_conv_codec(cfg, tmp_path / "g-train.pt", progress=False)
    assert np.isfinite(log["bpp_low"])
    from tosc.checkpoint import load_checkpoint, save_checkpoint
    from tosc.zoo import codec_path

    ckpt = load_checkpoint(codec_path("mse-only-v3"))
    payload = {k: v for k, v in ckpt.items() if k not in ("format", "format_version", "versions", "git_commit")}
    payload["metrics"] = {**payload["metrics"], "images": 16}  # the curve's levels on 16 validation images
    save_checkpoint(tmp_path / "v3.pt", **payload)
    # the script in this process (a second one would spend seconds importing)
    monkeypatch.setattr(sys, "argv", ["attach_global_mode.py", "--mode", str(tmp_path / "g-train.pt"),
                                      "--to", str(tmp_path / "v3.pt")])
    scripts = Path(__file__).parents[3] / "scripts"
    monkeypatch.syspath_prepend(str(scripts))
    runpy.run_path(str(scripts / "attach_global_mode.py"), run_name="__main__")
    codec = ConvLearnedCodec.load(tmp_path / "v3.pt")
    assert codec.global_mode is not None and codec.quality_levels == codec.global_first + 4
    curve = load_checkpoint(tmp_path / "v3.pt")["metrics"]
    assert curve["qualities"][-4:] == list(range(codec.global_first, codec.quality_levels))
    with pytest.raises(ConfigError, match="mode must be one of"):
        train_conv.ConvTrainConfig(mode="vector")
    with pytest.raises(ConfigError, match="global_levels"):
        train_conv.ConvTrainConfig(mode="global", global_levels=1)


def test_a_mode_started_from_a_single_rate_codec_is_that_codec_at_its_anchor_level(fashion_test_slice):
    from tosc.source_coding.learned.model import CodecConfig, TinyImageCodec

    torch.manual_seed(1)
    single = TinyImageCodec(CodecConfig(width=4, latent_dim=8)).eval()
    with torch.no_grad():  # a prior that is not the initial one, so that copying it matters
        for p in single.entropy_bottleneck.parameters():
            p.add_(0.3 * torch.randn_like(p))
    mode = GlobalMode(GlobalModeConfig(**SMALL)).eval()
    mode.start_from_single_rate(single.state_dict(), anchor_level=2)
    x = fashion_test_slice.images[:8]
    with torch.no_grad():
        want = single(x)
        got = mode(x, torch.full((len(x),), 2 / 3))
        assert torch.allclose(got["x_hat"], want["x_hat"], atol=1e-5)
        assert torch.allclose(got["bits_y"], -want["likelihoods"].log2().sum(1), rtol=1e-4)
        # at another level with gain g the prior is the density of g y: its cumulative at g v is
        # the single-rate codec's at v
        v = torch.linspace(-3, 3, 7)
        theirs = single.entropy_bottleneck._logits_cumulative(v.expand(8, 1, 7), stop_gradient=True)
        gain = mode.log_gain.exp()[:, 0]
        level = 3
        scaled = mode.entropy_bottleneck._logits_cumulative(
            (gain[level] * v).expand(4 * 8, 1, 7), stop_gradient=True)[level * 8:(level + 1) * 8]
        assert torch.allclose(scaled, theirs, atol=1e-4)
    with pytest.raises(ConfigError, match="does not fit"):
        GlobalMode(GlobalModeConfig(width=6, latent_dim=8, levels=4)).start_from_single_rate(single.state_dict(), 0)


def test_an_int8_weights_mode_stores_int8_rows_and_keeps_its_identity_when_saved_again(tmp_path, base,
                                                                                    fashion_test_slice):
    torch.manual_seed(2)
    floats = GlobalMode(GlobalModeConfig(width=8, latent_dim=16, levels=4))
    int8 = GlobalMode(GlobalModeConfig(width=8, latent_dim=16, levels=4, int8_weights=True))
    int8.load_state_dict(floats.state_dict())
    a = _attached(tmp_path, base, floats, name="f16")
    b = _attached(tmp_path, base, int8, name="i8")
    stored = torch.load(tmp_path / "i8.pt", weights_only=False)["state_dict"]
    assert stored["global_mode.g_s_linear.weight"].dtype == torch.int8
    assert stored["global_mode.g_s_linear.weight_scale"].shape == (8 * 7 * 7, 1)  # a scale per output row
    # the same mode to within int8 rounding: the same symbols nearly everywhere, close pixels
    x = fashion_test_slice.images[:16]
    q = b.global_first + 2
    decoded_a, decoded_b = a.decode(a.encode(x, q), (28, 28)), b.decode(b.encode(x, q), (28, 28))
    assert (decoded_a - decoded_b).abs().mean() < 2 / 255
    # saved again from the loaded codec: the same integers, scales and identity
    b.save(tmp_path / "i8-again.pt")
    again = torch.load(tmp_path / "i8-again.pt", weights_only=False)["state_dict"]
    for key in ("global_mode.g_a.5.weight", "global_mode.g_a.5.weight_scale", "global_mode.g_s_linear.weight",
                "global_mode.g_s.3.weight", "global_mode.g_a.0.weight_scale"):
        assert torch.equal(again[key], stored[key])
    assert ConvLearnedCodec.load(tmp_path / "i8-again.pt").model_id == b.model_id != a.model_id
    # rows of tiny values too (a float16 scale below 2^-14 once moved on every save)
    from tosc.source_coding.learned.global_mode import from_int8_rows, to_int8_rows

    tiny = torch.tensor([[1.1356e-5], [-6.008e-4], [3e-5], [0.0], [0.5]]) * torch.tensor([1.0, 0.7, -0.2])
    values, scale = to_int8_rows(tiny)
    assert all(torch.equal(u, v) for u, v in zip(to_int8_rows(from_int8_rows(values, scale)), (values, scale)))


def test_lambda_s_as_an_input_doubles_the_levels_and_starts_both_halves_as_the_trained_mode(tmp_path,
                                                                                          fashion_test_slice):
    from tosc.source_coding.learned import train_conv
    from tosc.source_coding.learned.global_mode import tile_levels

    torch.manual_seed(2)
    mode = GlobalMode(GlobalModeConfig(**SMALL)).eval()
    with torch.no_grad():  # levels that differ, so that a wrong tiling shows
        for p in mode.entropy_bottleneck.parameters():
            p.add_(0.3 * torch.randn_like(p))
        mode.log_gain.add_(0.2 * torch.randn_like(mode.log_gain))
    twice = GlobalMode(GlobalModeConfig(**{**SMALL, "levels": 8})).eval()
    twice.load_state_dict(tile_levels(mode.state_dict(), 2))
    x = fashion_test_slice.images[:8]
    with torch.no_grad():
        for level in range(4):
            one = mode(x, torch.full((8,), level / 3))
            for copy in (level, level + 4):
                two = twice(x, torch.full((8,), copy / 7))
                assert torch.allclose(two["x_hat"], one["x_hat"], atol=1e-6)
                assert torch.allclose(two["bits_y"], one["bits_y"], rtol=1e-5)
    cfg = train_conv.ConvTrainConfig(mode="global", global_levels=4, lambda_s=0.1, semantic_input=True)
    t, semantic = cfg.level_terms(torch.arange(8))
    assert torch.equal(t, torch.tensor([0, 1, 2, 3, 0, 1, 2, 3]) / 3)
    assert semantic.tolist() == [False] * 4 + [True] * 4
    assert cfg.mode_levels == 8
    plain = train_conv.ConvTrainConfig(mode="global", global_levels=4, lambda_s=0.1)
    assert plain.level_terms(torch.arange(4))[1].all() and plain.mode_levels == 4
    for bad in (dict(lambda_s=0.0), dict(mode="transform"), dict(pixel_weight=0.0)):
        with pytest.raises(ConfigError, match="semantic_input"):
            train_conv.ConvTrainConfig(**{"mode": "global", "lambda_s": 0.1, "semantic_input": True, **bad})
    # the MSE-only half gets no semantic term: the loss of an MSE-only level does not depend on the task
    terms = {}
    for scale in (1.0, 100.0):
        class Task(torch.nn.Module):
            def forward(self, x):
                return scale * x.flatten(1)[:, :10]
        cfg = train_conv.ConvTrainConfig(mode="global", global_levels=4, global_width=4, global_latent=8,
                                         lambda_s=0.1, semantic_input=True, semantic="kl")
        torch.manual_seed(3)
        model = GlobalMode(GlobalModeConfig(**{**SMALL, "levels": 8}))
        labels = fashion_test_slice.labels[:8]
        level = torch.tensor([0, 1, 2, 3] * 2)
        terms[scale] = []
        for lv in (level, level + 4):
            t, semantic_on = cfg.level_terms(lv)
            terms[scale].append(train_conv._loss(model, Task(), x, labels, t, cfg, model_t=lv.float() / 7,
                                                 semantic_on=semantic_on)["loss"].item())
    assert terms[1.0][0] == pytest.approx(terms[100.0][0], rel=1e-6)
    assert terms[1.0][1] != pytest.approx(terms[100.0][1], rel=1e-3)
