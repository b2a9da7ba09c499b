import math

import numpy as np
import pytest

from tosc.evaluation.bd import RateCurve, bd_metrics, bd_table, rate_curve, value_at_rate
from tosc.results import ChannelSpec, RateSpec, ResultRecord


def _curve(name, bpp, psnr):
    return RateCurve(name, "awgn", "psnr_db", np.asarray(bpp, float), np.asarray(psnr, float))


def test_analytic_shifted_log_linear_curves():
    # PSNR = a + 10 log10(bpp) for both; the test curve is 1 dB higher. PCHIP reproduces
    # straight lines exactly, so BD-PSNR is exactly 1 dB and BD-rate is 10**(-1/10) - 1.
    anchor_bpp = np.array([0.05, 0.1, 0.2, 0.4, 0.8])
    test_bpp = np.array([0.06, 0.13, 0.25, 0.5, 0.7])  # other sample points: no matching needed
    anchor = _curve("a", anchor_bpp, 30 + 10 * np.log10(anchor_bpp))
    test = _curve("t", test_bpp, 31 + 10 * np.log10(test_bpp))
    r = bd_metrics(anchor, test)
    assert r.bd_quality == pytest.approx(1.0, abs=1e-9)
    assert r.bd_rate_pct == pytest.approx((10 ** -0.1 - 1) * 100, abs=1e-7)
    # swapping roles flips the signs
    back = bd_metrics(test, anchor)
    assert back.bd_quality == pytest.approx(-1.0, abs=1e-9)
    assert back.bd_rate_pct == pytest.approx((10 ** 0.1 - 1) * 100, abs=1e-7)


def test_rate_scaled_curve_gives_its_rate_ratio():
    # same qualities at 0.8x the rate: BD-rate -20% whatever the (monotone) curve shape
    bpp = np.array([0.1, 0.2, 0.3, 0.6])
    psnr = np.array([18.0, 21.5, 22.7, 24.0])
    r = bd_metrics(_curve("a", bpp, psnr), _curve("t", 0.8 * bpp, psnr))
    assert r.bd_rate_pct == pytest.approx(-20.0, abs=1e-7)
    assert r.bd_quality > 0


def test_jvet_style_example_is_small_and_negative():
    # the four-point HEVC example from the bjontegaard package's README (rates in kbit/s):
    # the test codec is slightly better, so BD-rate is a few % negative and BD-PSNR positive
    a = _curve("a", [1358.24, 2486.44, 4593.60, 9487.76], [34.851, 36.845, 38.615, 40.037])
    t = _curve("t", [1356.24, 2451.52, 4469.00, 9787.80], [34.987, 36.970, 38.651, 40.121])
    r = bd_metrics(a, t)
    assert -6 < r.bd_rate_pct < -3 and 0.05 < r.bd_quality < 0.2


def test_too_few_points_or_no_overlap_give_nan_with_a_note():
    r = bd_metrics(_curve("a", [0.1], [20.0]), _curve("t", [0.1, 0.2], [20.0, 22.0]))
    assert math.isnan(r.bd_rate_pct) and "fewer than 2" in r.note
    r = bd_metrics(_curve("a", [0.1, 0.2], [10.0, 12.0]), _curve("t", [0.5, 0.9], [20.0, 22.0]))
    assert math.isnan(r.bd_quality) and math.isnan(r.bd_rate_pct) and "overlap" in r.note


def _record(system, snr, bpp, psnr, mode="digital"):
    return ResultRecord(system=system, dataset="d", split="test", n_images=10, channel=ChannelSpec("awgn", snr),
                        rate=RateSpec(bpp=bpp, payload_bits_per_image=bpp * 784), metrics={"psnr_db": psnr},
                        config={"mode": mode}, versions={}, git_commit="x")


def test_operational_curve_keeps_the_upper_envelope_and_skips_analog():
    records = [_record("s", 0, 0.0, 10.0), _record("s", 5, 0.1, 18.0), _record("s", 10, 0.2, 17.0),
               _record("s", 15, 0.2, 21.0), _record("s", 20, 0.4, 23.0), _record("j", 0, 0.0, 12.0, "analog")]
    c = rate_curve(records, "s", "awgn")
    assert c.bpp.tolist() == [0.1, 0.2, 0.4] and c.quality.tolist() == [18.0, 21.0, 23.0]
    assert len(rate_curve(records, "j", "awgn")) == 0
    assert bd_table(records, "j") == []
    table = bd_table(records + [_record("b", 5, 0.15, 15.0), _record("b", 15, 0.3, 20.0)], "s")
    assert [(r.anchor, r.test) for r in table] == [("b", "s")] and table[0].bd_quality > 0


def test_value_at_rate_is_linear_in_log_rate_and_never_extrapolates():
    bpp, psnr = [0.4, 0.1, 1.6], [30.0, 20.0, 40.0]  # any order; 10 dB per factor 4 in rate
    assert value_at_rate(bpp, psnr, 0.2) == pytest.approx(25.0)  # half-way in log-rate, not in rate (23.3)
    assert value_at_rate(bpp, psnr, 0.1) == 20.0 and value_at_rate(bpp, psnr, 1.6) == 40.0
    assert value_at_rate(bpp, psnr, 0.09) is None and value_at_rate(bpp, psnr, 1.7) is None
    with pytest.raises(ValueError):
        value_at_rate([0.0, 1.0], [1.0, 2.0], 0.5)
    with pytest.raises(ValueError):
        value_at_rate([0.1, 1.0], [1.0], 0.5)
