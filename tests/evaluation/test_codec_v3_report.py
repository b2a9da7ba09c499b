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
