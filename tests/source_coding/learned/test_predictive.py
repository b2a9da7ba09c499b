"""Codec v3's predictive mode: near-lossless pixel coding with fitted context tables."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from tosc.errors import CorruptFileError, DataError
from tosc.source_coding.learned.conv import QUALITY_LEVELS
from tosc.source_coding.learned.conv_codec import ConvLearnedCodec, stream_bits
from tosc.source_coding.learned.refine import Refinement
from tosc.source_coding.learned.fastcoder import StreamDecoder, Tables, encode_batch
from tosc.source_coding.learned.predictive import (PredictiveTables, analyse, decode_pixels, fit_tables,
                                                   stream_symbols, to_pixels)
from tosc.zoo import zoo_dir


@pytest.fixture(scope="module")
def shipped_tables():
    return PredictiveTables.load(zoo_dir() / "codecs" / "predictive-v1.npz")


@pytest.fixture(scope="module")
def shipped_codec():
    return ConvLearnedCodec.load("mse-only-v3")


def _round_trip(pixels: np.ndarray, step_index: np.ndarray, tables: PredictiveTables):
    coder = Tables(*tables.table_lists())
    sym, ctx, rec = analyse(pixels, tables.steps[step_index])
    ss, ii, counts = stream_symbols(sym, ctx, step_index, tables, 0)
    streams = encode_batch(ss, ii, coder, counts)
    return streams, rec, decode_pixels(StreamDecoder(streams, coder), step_index, tables, 0, pixels.shape[1:])


def test_every_step_bounds_the_error_and_decodes_what_the_encoder_reconstructed(shipped_tables, fashion_test_slice):
    pixels = to_pixels(fashion_test_slice.images[:16])
    for k, step in enumerate(shipped_tables.steps):
        streams, rec, decoded = _round_trip(pixels, np.full(16, k), shipped_tables)
        assert np.array_equal(decoded, rec)
        assert np.abs(rec - pixels).max() <= step // 2
        if step == 1:
            assert np.array_equal(rec, pixels)  # lossless
    # finer steps cost more bits
    rates = [np.mean([stream_bits(s) for s in _round_trip(pixels, np.full(16, k), shipped_tables)[0]])
             for k in range(len(shipped_tables.steps))]
    assert rates[-1] > rates[len(rates) // 2] > rates[0]


@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 17, 23), (1, 5, 64)])
def test_any_size_and_channels_and_residuals_beyond_the_alphabet(shipped_tables, shape):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(4, *shape))  # noise: many residuals go to the tail tables
    pixels[1] = 0
    pixels[2] = 255
    index = np.array([0, 5, len(shipped_tables.steps) - 1, len(shipped_tables.steps) - 1])
    sym, _, _ = analyse(pixels, shipped_tables.steps[index])
    streams, rec, decoded = _round_trip(pixels, index, shipped_tables)
    assert np.array_equal(decoded, rec)
    assert np.array_equal(rec[3], pixels[3])
    if shape[1] * shape[2] > 100:
        assert (np.abs(sym[3]) > shipped_tables.half).any()


def test_garbage_is_a_typed_error_or_an_image(shipped_tables):
    coder = Tables(*shipped_tables.table_lists())
    rng = np.random.default_rng(1)
    for trial in range(20):
        streams = [rng.integers(0, 256, size=rng.integers(0, 40)).astype(np.uint8).tobytes()]
        try:
            out = decode_pixels(StreamDecoder(streams, coder), np.array([trial % len(shipped_tables.steps)]),
                                shipped_tables, 0, (1, 28, 28))
            assert out.min() >= 0 and out.max() <= 255
        except CorruptFileError:
            pass


def test_fitted_tables_save_and_load_exactly_and_refuse_damage(tmp_path, fashion_test_slice):
    pixels = to_pixels(fashion_test_slice.images[:32])
    tables = fit_tables(pixels, [9, 3, 1], half=4, min_count=50)
    assert len(tables.cdfs) > 3  # some contexts got their own table
    tables.save(tmp_path / "t.npz")
    again = PredictiveTables.load(tmp_path / "t.npz")
    assert again.digest == tables.digest
    assert np.array_equal(again.cdfs, tables.cdfs) and np.array_equal(again.tails, tables.tails)
    streams, rec, decoded = _round_trip(pixels[:4], np.array([0, 1, 2, 2]), again)
    assert np.array_equal(decoded, rec)
    (tmp_path / "bad.npz").write_bytes(b"not a table file")
    with pytest.raises(CorruptFileError):
        PredictiveTables.load(tmp_path / "bad.npz")


def test_shipped_codec_has_both_modes_in_one_quality_index(shipped_codec, fashion_test_slice):
    images = fashion_test_slice.images[:12]
    levels = shipped_codec.global_first  # the global mode's levels follow (test_global_mode.py)
    assert levels == QUALITY_LEVELS + 15
    quality = np.array([0, 64, 127, QUALITY_LEVELS, levels - 1, levels - 2] * 2)
    streams = shipped_codec.encode(images, quality)
    mixed = shipped_codec.decode(streams, (28, 28))
    for i in range(len(images)):
        assert torch.equal(shipped_codec.decode([streams[i]], (28, 28))[0], mixed[i])
    assert torch.equal(mixed[4], torch.round(images[4] * 255) / 255)  # the finest step is lossless
    with pytest.raises(DataError):
        shipped_codec.encode(images[:1], shipped_codec.quality_levels)
    with pytest.raises(DataError):
        shipped_codec.encode_pixels(to_pixels(images[:1]), levels)  # a global level, not a step
    with pytest.raises(DataError):
        shipped_codec.encode_latents(shipped_codec.latents(images[:1])[0], QUALITY_LEVELS)


def test_rate_control_keeps_the_smaller_error_and_never_exceeds(shipped_codec, fashion_test_slice):
    # the mode choice, on the fast encoder's streams (the refining encoder then trades a transform
    # stream's error for its training loss: test_refine.py)
    shipped_codec = dataclasses.replace(shipped_codec, refinement=Refinement(steps=0))
    images = fashion_test_slice.images[:24]
    pixels = to_pixels(images)
    ladder = shipped_codec.ladder(images)
    for budget in (100, 500, 900, 1500, 3000):
        streams, quality = shipped_codec.encode_to_budget(images, budget, ladder=ladder)
        assert all(s is not None and stream_bits(s) <= budget for s in streams), [len(s or b"") for s in streams]
        decoded = np.rint(shipped_codec.decode(streams, (28, 28)).numpy() * 255).astype(np.int64)
        sse = ((decoded - pixels) ** 2).reshape(len(images), -1).sum(1)
        # the transform codec's best fitting stream alone is never better
        alone, q_alone = shipped_codec._bisect(ladder, np.full(len(images), budget), 0, QUALITY_LEVELS - 1)
        dec_alone = np.rint(shipped_codec.decode(alone, (28, 28)).numpy() * 255).astype(np.int64)
        assert (sse <= ((dec_alone - pixels) ** 2).reshape(len(images), -1).sum(1)).all()
        if budget == 100:
            assert (shipped_codec.mode_of(quality) != 1).all()  # no predictive step is that small
        if budget == 3000:
            assert (shipped_codec.mode_of(quality) == 1).all()


def test_every_mode_of_the_shipped_codec_decodes_bit_exactly_in_another_process(shipped_codec, fashion_test_slice,
                                                                              decodes_alike_elsewhere):
    """Transform, predictive and global streams of the shipped model, in one batch (one process)."""
    quality = np.concatenate([np.arange(4) * 40, QUALITY_LEVELS + np.arange(4) * 2, shipped_codec.global_first + np.arange(4) * 5])
    assert set(shipped_codec.mode_of(quality).tolist()) == {0, 1, 2}
    streams = shipped_codec.encode(fashion_test_slice.images[:12], quality)
    decodes_alike_elsewhere("mse-only-v3", streams, (28, 28))


def test_a_checkpoint_refuses_tables_other_than_its_own(tmp_path, shipped_codec, fashion_test_slice):
    from tosc.checkpoint import load_checkpoint, save_checkpoint

    ckpt = load_checkpoint(zoo_dir() / "codecs" / "mse-only-v3.pt")
    other = fit_tables(to_pixels(fashion_test_slice.images[:8]), [5, 1], half=4, min_count=50)
    other.save(tmp_path / "predictive-v1.npz")  # beside the checkpoint: found before the zoo's
    payload = {k: v for k, v in ckpt.items() if k not in ("format", "format_version", "versions", "git_commit")}
    save_checkpoint(tmp_path / "c.pt", **payload)
    with pytest.raises(CorruptFileError, match="not the ones it was shipped with"):
        ConvLearnedCodec.load(tmp_path / "c.pt")
    plain = ConvLearnedCodec(shipped_codec.model, name="plain", meta={})
    assert plain.quality_levels == QUALITY_LEVELS and plain.model_id != shipped_codec.model_id


@pytest.mark.parametrize("dataset, codec_name", [("fashion-scenes", "tosc-sr-v3-scenes"),
                                                 ("fashion-scenes-rgb", "mse-only-v3-scenes-rgb")])
def test_scene_codecs_carry_their_own_tables_and_choose_the_mode_per_scene(dataset, codec_name, shipped_tables):
    from tosc.data import load_dataset

    codec = ConvLearnedCodec.load(codec_name)
    assert codec.predictive is not None and codec.predictive.digest != shipped_tables.digest
    assert codec.predictive.meta["dataset"] == dataset  # counted on the scenes it codes, not on items
    scenes = load_dataset(dataset, "test", limit=6).images
    pixels = to_pixels(scenes)
    finest = codec.quality_levels - 1  # no global mode: the predictive steps are the last indices
    assert codec.mode_of(np.array([QUALITY_LEVELS, finest])).tolist() == [1, 1]
    lossless = codec.decode(codec.encode(scenes[:2], finest), scenes.shape[-2:])
    assert torch.equal(lossless, torch.round(scenes[:2] * 255) / 255)
    budget = 4096 * scenes.shape[1]  # 1 bit per pixel and channel: a choice between the modes
    streams, quality = codec.encode_to_budget(scenes, budget)
    assert all(stream_bits(s) <= budget for s in streams)
    decoded = np.rint(codec.decode(streams, scenes.shape[-2:]).numpy() * 255).astype(np.int64)
    sse = ((decoded - pixels) ** 2).reshape(len(scenes), -1).sum(1)
    transform, _ = codec._bisect(codec.ladder(scenes), np.full(len(scenes), budget), 0, QUALITY_LEVELS - 1)
    alone = np.rint(codec.decode(transform, scenes.shape[-2:]).numpy() * 255).astype(np.int64)
    assert (sse <= ((alone - pixels) ** 2).reshape(len(scenes), -1).sum(1)).all()


def test_task_only_scene_codec_has_no_pixel_mode():
    assert ConvLearnedCodec.load("task-only-v3-scenes").predictive is None
