"""scripts/codec_v3_report.py: the classic codecs' rows go through the on-disk rate cache."""

import runpy
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "codec_v3_report.py"


@pytest.fixture(scope="module")
def report():
    return runpy.run_path(str(SCRIPT))  # defines the functions; main() runs only as __main__


def test_classic_rows_are_cached_on_disk(report, fashion_test_slice, tmp_path):
    from tosc.source_coding.classic.table import RateCache

    x = fashion_test_slice.images[:4]

    def scores(decoded):
        return {"psnr_db": float(decoded.mean()), "n": len(decoded)}

    first, encodes = report["classic_rows"](["jpeg"], x, scores, RateCache(tmp_path))
    assert encodes == 4 * len(first["jpeg"]) > 0
    # a second report with a new cache object on the same folder: the same rows, no encoder call
    again, encodes_again = report["classic_rows"](["jpeg"], x, scores, RateCache(tmp_path))
    assert encodes_again == 0
    assert again == first
    assert all(r["n"] == 4 and r["bpp"] > 0 for r in first["jpeg"])
    # without a cache every report encodes again (what the script did before)
    _, uncached = report["classic_rows"](["jpeg"], x, scores, None)
    assert uncached == encodes


def test_finished_rows_are_reused_only_under_the_same_key(report, tmp_path):
    calls = []

    def compute(value):
        return lambda: calls.append(value) or [{"quality": value}]

    store = report["RowStore"](tmp_path, ["images", "networks"])
    assert store.rows("mse-only-v3", ["ckpt-a"], compute(1)) == [{"quality": 1}]
    # a resumed report: the stored rows, nothing computed
    again = report["RowStore"](tmp_path, ["images", "networks"])
    assert again.rows("mse-only-v3", ["ckpt-a"], compute(2)) == [{"quality": 1}] and calls == [1]
    # another checkpoint or other images: computed again
    assert again.rows("mse-only-v3", ["ckpt-b"], compute(3)) == [{"quality": 3}]
    assert report["RowStore"](tmp_path, ["other images", "networks"]).rows("mse-only-v3", ["ckpt-b"], compute(4)) \
        == [{"quality": 4}]
    # a damaged file is computed again, not trusted
    (tmp_path / "mse-only-v3.json").write_text("{not json")
    assert again.rows("mse-only-v3", ["ckpt-b"], compute(5)) == [{"quality": 5}] and calls == [1, 3, 4, 5]
    # without a folder (no --resume) nothing is stored
    assert report["RowStore"](None, []).rows("x", [], compute(6)) == [{"quality": 6}]
    assert not (tmp_path / "x.json").exists()
