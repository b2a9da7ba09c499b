"""The on-disk caches of a grid's noise-free work (scores, codec v3's rate-matched streams) give
the same numbers as computing afresh, are read instead of recomputing, are keyed by what the
values depend on, and recover from a damaged row."""

import sqlite3

import numpy as np
import pytest
import torch

from tosc.evaluation import point
from tosc.systems import digital
from tosc.systems.memo import caching, clear_all

_score_each_real = point._score_each


@pytest.fixture()
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TOSC_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(point, "_SCORES", {})
    clear_all()
    return tmp_path


def _received(images):
    noisy = images + 0.05 * torch.randn(images.shape, generator=torch.Generator().manual_seed(1))
    return noisy.clamp(0, 1)


def _no_scoring(*args, **kwargs):
    raise AssertionError("scored again instead of reading the disk cache")


def test_scores_are_read_back_from_disk_identically(cache_dir, fashion_test_slice, monkeypatch):
    images, labels = fashion_test_slice.images[:12], fashion_test_slice.labels[:12]
    received = _received(images)
    first = point.score_images(received, images, labels)
    assert point._score_store().count() == 12
    monkeypatch.setattr(point, "_SCORES", {})  # a new process: memory empty, disk filled
    monkeypatch.setattr(point, "_score_each", _no_scoring)
    assert point.score_images(received, images, labels) == first
    # only the images not on disk are scored
    monkeypatch.setattr(point, "_SCORES", {})
    calls = []

    def counted(rec, *args):
        calls.append(len(rec))
        return _score_each_real(rec, *args)

    monkeypatch.setattr(point, "_score_each", counted)
    other = received.clone()
    other[:3] = images[:3]
    point.score_images(other, images, labels)
    assert calls == [3]


def test_a_damaged_score_row_is_scored_again(cache_dir, fashion_test_slice, monkeypatch):
    images, labels = fashion_test_slice.images[:6], fashion_test_slice.labels[:6]
    received = _received(images)
    first = point.score_images(received, images, labels)
    store = point._score_store()
    with sqlite3.connect(store.path) as db:
        key = db.execute("SELECT key FROM blobs LIMIT 1").fetchone()[0]
        db.execute("UPDATE blobs SET value = ? WHERE key = ?", (np.zeros(8).tobytes(), key))
    monkeypatch.setattr(point, "_SCORES", {})
    assert point.score_images(received, images, labels) == first  # not the zeros written into the row
    assert store.corrupt_rows == 1 and store.count() == 6


def test_scores_are_keyed_by_the_networks_and_off_without_caching(cache_dir, fashion_test_slice, monkeypatch):
    images, labels = fashion_test_slice.images[:4], fashion_test_slice.labels[:4]
    tasks = ("classifier-cnn", "classifier-mlp")
    kind = point._score_kind(tasks, None)
    assert kind != point._score_kind(("classifier-cnn",), None) != point._score_kind(tasks, "segmenter-unet")
    # another network file under the same name (a retrained classifier) is another key
    zoo = cache_dir / "zoo"
    (zoo / "tasks").mkdir(parents=True)
    from tosc.zoo import task_path

    for name in tasks:
        data = task_path(name).read_bytes()
        (zoo / "tasks" / f"{name}.pt").write_bytes(data + (b"\0" if name == "classifier-mlp" else b""))
    monkeypatch.setenv("TOSC_ZOO", str(zoo))
    assert point._score_kind(tasks, None) != kind
    monkeypatch.delenv("TOSC_ZOO")
    with caching(False):
        point.score_images(_received(images), images, labels, tasks=tasks, segmenter=None)
    assert point._score_store().count() == 0


def test_codec_v3_streams_are_read_back_from_disk(cache_dir, fashion_test_slice, monkeypatch):
    from tosc.source_coding.learned.conv_codec import ConvLearnedCodec

    images = fashion_test_slice.images[:10]
    source = digital.ConvCodecSource("tosc-sr-v3")
    first = source.encode(images, 300)
    clear_all()  # a new process: the in-memory memos are empty

    def no_search(*args, **kwargs):
        raise AssertionError("searched the quality again instead of reading the disk cache")

    monkeypatch.setattr(ConvLearnedCodec, "encode_to_budget", no_search)
    again = digital.ConvCodecSource("tosc-sr-v3").encode(images, 300)
    assert again.info == first.info
    assert all(np.array_equal(a, b) for a, b in zip(again.bits, first.bits))
    with pytest.raises(AssertionError, match="searched"):  # another budget is another row
        digital.ConvCodecSource("tosc-sr-v3").encode(images, 301)


def test_packed_streams_round_trip_and_reject_other_sizes():
    streams = [b"\x01\x02", None, b"", b"\xff" * 40]
    quality = np.array([5, -1, 0, 127])
    blob = digital._pack_streams(streams, quality)
    got, q = digital._unpack_streams(blob, 4)
    assert got == streams and q.tolist() == quality.tolist()
    assert digital._unpack_streams(blob, 3) is None and digital._unpack_streams(blob[:-1], 4) is None


def test_batched_v3_decode_equals_one_at_a_time(fashion_test_slice):
    source = digital.ConvCodecSource("tosc-sr-v3")
    images = fashion_test_slice.images[:16]
    bits = [b for b in source.encode(images, 400).bits if b is not None]
    damaged = np.ones(200, np.uint8)
    many = source.decode_many(bits + [damaged], (1, 28, 28))
    for b, image in zip(bits, many):
        assert torch.equal(image, source.decode(b, (1, 28, 28)))
    # a stream the decoder rejects is reported alone; the others still decode
    with pytest.raises(Exception) as raised:
        source.decode(damaged, (1, 28, 28))
    assert isinstance(many[-1], type(raised.value))
