"""Budgets per (SNR, CBR) point, reachability, the README table and ``tosc codecs``."""

import math
from fractions import Fraction

import pytest

from tosc.cli import main
from tosc.cli import codecs as _codecs_command  # noqa: F401  (registers ``tosc codecs``)
from tosc.errors import ConfigError
from tosc.source_coding import classic
from tosc.source_coding.classic import survey


def test_budgets_match_closed_forms():
    assert survey.n_channel_uses(Fraction(1, 16), 784) == 49
    assert survey.n_channel_uses(0.5, 784) == 392
    with pytest.raises(ConfigError):
        survey.n_channel_uses(Fraction(1, 3), 784)
    assert survey.ideal_budget_bits(0.0, 49) == 49  # log2(1 + 1) = 1 bit per use
    assert survey.ideal_budget_bits(20.0, 49) == math.floor(49 * math.log2(101))  # 326
    assert survey.digital_budget_bits(98, 0.5, 2) == 98


def test_survey_and_reachability(fashion8):
    jpeg = survey.survey_codec(classic.get_codec("jpeg"), fashion8[:3])
    assert len(jpeg.file_bytes_min_quality) == 3 and jpeg.image_shape == (1, 28, 28)
    assert all(p < f for p, f in zip(jpeg.payload_bytes_min_quality, jpeg.file_bytes_min_quality))
    assert all(lo < hi for lo, hi in zip(jpeg.file_bytes_min_quality, jpeg.file_bytes_max_quality))
    low, high = jpeg.bpp_range("file")
    assert 0 < low < high
    worst_file, worst_payload = max(jpeg.file_bytes_min_quality), max(jpeg.payload_bytes_min_quality)

    index = classic.get_codec("jpeg").quality_index_bits  # a payload-only sender pays its quality index

    def exact(snr_db, k):  # a budget function that gives exactly the largest smallest payload and its index
        return 8 * worst_payload + index

    assert survey.reachable(jpeg, "payload", 0.0, Fraction(1, 16), exact)
    assert not survey.reachable(jpeg, "payload", 0.0, Fraction(1, 16), lambda s, k: 8 * worst_payload + index - 1)
    assert worst_file > worst_payload and not survey.reachable(jpeg, "file", 0.0, Fraction(1, 16), exact)
    # ideal budgets grow with SNR and CBR, so reachability does too
    grid = [[survey.reachable(jpeg, "payload", s, c) for c in survey.CBRS] for s in survey.SNRS_DB]
    for i, row in enumerate(grid):
        for j, ok in enumerate(row):
            if ok:
                assert all(grid[i2][j2] for i2 in range(i, len(grid)) for j2 in range(j, len(row)))


def test_markdown_table(fashion8):
    surveys = [survey.survey_codec(classic.get_codec(n), fashion8[:2]) for n in ("jpeg", "jpeg2000")]
    text = survey.render_markdown(surveys, dataset="fashion-mnist")
    assert "| jpeg | 1 component |" in text and "| jpeg2000 | payload |" in text
    assert "CBR 1/16 (k=49)" in text and "| 0 | 6 | 12 | 24 | 49 |" in text
    # a different budget function changes the reach table
    none = survey.render_markdown(surveys, dataset="x", budget_bits=lambda s, k: 0, budget_name="zero")
    assert "| jpeg2000 | payload | none | none | none | none |" in none


def test_codecs_command(capsys):
    assert main(["codecs", "--limit", "2", "--codec", "jpeg", "--codec", "webp"]) == 0
    out = capsys.readouterr().out
    assert "jpeg " in out and "webp " in out and "RGB, R = G = B" in out
    assert main(["codecs", "--limit", "2", "--codec", "no-such-codec"]) == 2
    assert "unknown codec 'no-such-codec'" in capsys.readouterr().err
