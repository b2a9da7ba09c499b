"""The rate table: bisection answered from a cache of encodes, same answers, robust on disk."""

import multiprocessing
import sqlite3

import pytest

from tosc.source_coding import classic
from tosc.source_coding.classic.table import RateCache, RateTable, codec_key

FAST = ["jpeg", "jpeg-optimized", "jpeg2000", "webp", "heif", "avif", "jpegxl"]


@pytest.mark.parametrize("name", FAST)
def test_table_gives_the_same_matches_as_bisection(name, fashion8, rgb_image, tmp_path):
    codec = classic.get_codec(name)
    table = RateTable(codec, RateCache(tmp_path))
    images = [fashion8[0], fashion8[5], rgb_image]
    for image in images:
        for measure in ("file", "payload"):
            for budget in (0, 40, 90, 150, 260, 600, 5000):
                assert classic.match_rate(codec, image, budget, measure, table) == \
                    classic.match_rate(codec, image, budget, measure)
    # every probe encoded once: a fresh table on the same cache encodes nothing
    again = RateTable(codec, RateCache(tmp_path))
    for image in images:
        for budget in (40, 150, 600):
            assert classic.match_rate(codec, image, budget, "payload", again) == \
                classic.match_rate(codec, image, budget, "payload", table)
    assert table.encoder_calls > 0 and again.encoder_calls == 0


def test_vvc_table_matches_bisection(require_vvc, gray_image, tmp_path):
    codec = classic.get_codec("vvc")
    table = RateTable(codec, RateCache(tmp_path))
    for budget, measure in ((60, "payload"), (400, "file")):
        assert classic.match_rate(codec, gray_image, budget, measure, table) == \
            classic.match_rate(codec, gray_image, budget, measure)


def test_table_entries_hold_the_decoded_image(fashion8, rgb_image, tmp_path):
    codec = classic.get_codec("webp")
    table = RateTable(codec, RateCache(tmp_path))
    for image in (fashion8[1], rgb_image):
        entry = table.entry(image, 40)
        assert entry.bitstream == codec.encode(image, 40)
        decoded = codec.decode(entry.bitstream, channels=image.shape[0])
        assert (table.decoded_tensor(entry.decoded) == decoded).all()
        stored = RateCache(tmp_path).get(table.key, table.key_of(image), 40)
        assert stored is not None and (table.decoded_tensor(stored.decoded) == decoded).all()


def test_a_corrupt_row_is_detected_and_encoded_again(fashion8, tmp_path):
    codec = classic.get_codec("jpeg2000")
    cache = RateCache(tmp_path)
    first = classic.match_rate(codec, fashion8[2], 120, "payload", RateTable(codec, cache))
    with sqlite3.connect(cache.path) as db:  # flip bytes of one stored file, as a bad disk would
        (count,) = db.execute("SELECT COUNT(*) FROM encodes").fetchone()
        db.execute("UPDATE encodes SET bitstream = zeroblob(length(bitstream)) WHERE quality = ?", (first.quality,))
        db.execute("UPDATE encodes SET decoded = x'00' WHERE quality = ?", (codec.quality_min,))
    fresh = RateCache(tmp_path)
    table = RateTable(codec, fresh)
    again = classic.match_rate(codec, fashion8[2], 120, "payload", table)
    assert again == first
    assert fresh.corrupt_rows == 2 and table.encoder_calls == 2
    assert RateCache(tmp_path).count() == count  # replaced, not lost


def test_a_cache_file_that_is_not_a_database_is_rebuilt(fashion8, tmp_path):
    codec = classic.get_codec("jpeg")
    cache = RateCache(tmp_path)
    cache.path.parent.mkdir(parents=True, exist_ok=True)
    cache.path.write_bytes(b"this is not sqlite" * 100)
    with pytest.warns(UserWarning, match="unreadable"):
        match = classic.match_rate(codec, fashion8[0], 200, "file", RateTable(codec, cache))
    assert match == classic.match_rate(codec, fashion8[0], 200, "file")
    assert RateCache(tmp_path).count() > 0


def _fill(folder, names, budgets, start) -> int:
    from tosc.data import load_dataset

    images = load_dataset("fashion-mnist", split="test", limit=12).images
    calls = 0
    for name in names:
        codec = classic.get_codec(name)
        table = RateTable(codec, RateCache(folder))
        for i in range(len(images)):  # the two writers walk the images in opposite directions
            image = images[(start + (i if start == 0 else -i)) % len(images)]
            for budget in budgets:
                classic.match_rate(codec, image, budget, "payload", table)
        calls += table.encoder_calls
    return calls


def test_two_concurrent_runs_do_not_corrupt_the_cache(fashion8, tmp_path):
    names, budgets = ["jpeg", "webp", "jpeg2000"], [30, 80, 200]
    context = multiprocessing.get_context("fork")  # the test module need not be importable by a child
    with context.Pool(2) as pool:
        calls = pool.starmap(_fill, [(tmp_path, names, budgets, 0), (tmp_path, names, budgets, 11)])
    assert all(c > 0 for c in calls)
    cache = RateCache(tmp_path)
    with sqlite3.connect(cache.path) as db:
        keys = db.execute("SELECT codec, image, quality FROM encodes").fetchall()
    assert all(cache.get(*key) is not None for key in keys) and cache.corrupt_rows == 0
    assert _fill(tmp_path, names, budgets, 0) == 0  # complete: a third run encodes nothing


def test_codec_key_depends_on_settings():
    assert codec_key(classic.get_codec("jpeg")) != codec_key(classic.get_codec("jpeg-optimized"))
    assert codec_key(classic.get_codec("webp")) == codec_key(classic.get_codec("webp"))
    from tosc.source_coding.classic.vvc import VvcCodec

    assert codec_key(VvcCodec("slow")) != codec_key(VvcCodec("faster"))
