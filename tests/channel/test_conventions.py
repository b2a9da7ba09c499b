"""docs/channel.md conventions: units, conversions, CBR, budgets and bad settings."""

import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from tosc import registry
from tosc.channel import conventions as cv
from tosc.channel.fading import FadingChannel, make_channel
from tosc.errors import ConfigError, UnknownNameError


def test_db_round_trip_and_n0():
    assert cv.db_to_linear(10.0) == pytest.approx(10.0)
    assert cv.db_to_linear(-3.0) == pytest.approx(0.501187, rel=1e-6)
    assert cv.linear_to_db(cv.db_to_linear(7.3)) == pytest.approx(7.3)
    assert cv.snr_db_to_n0(10.0) == pytest.approx(0.1)
    assert cv.snr_db_to_n0(0.0) == pytest.approx(1.0)


def test_ebno_matches_sionna_and_rejects_constellation_size():
    from sionna.phy.utils import ebnodb2no

    for ebno_db, m, r in [(3.0, 4, 0.5), (7.5, 6, 5 / 6), (0.0, 1, 2 / 3)]:
        ours = cv.ebno_db_to_n0(ebno_db, m, r)
        assert ours == pytest.approx(float(ebnodb2no(ebno_db, m, r)), rel=1e-6)
        # Es/N0 = Eb/N0 * r * log2(M)
        assert cv.ebno_db_to_snr_db(ebno_db, m, r) == pytest.approx(cv.linear_to_db(1.0 / ours))
        assert cv.snr_db_to_ebno_db(cv.ebno_db_to_snr_db(ebno_db, m, r), m, r) == pytest.approx(ebno_db)
    # the trap: Sionna silently accepts the constellation size, giving a noise 6 dB too weak
    wrong = float(ebnodb2no(3.0, 16, 0.5))
    right = float(ebnodb2no(3.0, 4, 0.5))
    assert cv.linear_to_db(right / wrong) == pytest.approx(6.02, abs=0.01)
    with pytest.raises(ConfigError, match="constellation size"):
        cv.ebno_db_to_n0(3.0, 16, 0.5)


def test_capacity_helpers():
    assert cv.capacity_bits_per_use(cv.linear_to_db(3.0)) == pytest.approx(2.0)
    assert cv.capacity_bits_per_use(10.0) == pytest.approx(math.log2(11.0))
    # ergodic Rayleigh capacity: closed form vs Monte Carlo, and below AWGN (Jensen)
    rng = np.random.default_rng(0)
    g = rng.exponential(size=400_000)
    for snr_db in (0.0, 10.0, 20.0):
        mc = np.log2(1 + g * 10 ** (snr_db / 10)).mean()
        assert cv.ergodic_rayleigh_capacity_bits_per_use(snr_db) == pytest.approx(mc, rel=5e-3)
        assert cv.ergodic_rayleigh_capacity_bits_per_use(snr_db) < cv.capacity_bits_per_use(snr_db)
    assert cv.ergodic_rayleigh_capacity_bits_per_use(-40.0) == pytest.approx(1e-4 / math.log(2), rel=1e-3)


@pytest.mark.parametrize("text,value", [("1/16", Fraction(1, 16)), ("0.0625", Fraction(1, 16)),
                                        (0.0625, Fraction(1, 16)), (" 1 / 12 ", Fraction(1, 12)),
                                        (Fraction(3, 4), Fraction(3, 4)), ("2", Fraction(2))])
def test_parse_cbr(text, value):
    assert cv.parse_cbr(text) == value


@pytest.mark.parametrize("bad", ["0", 0, -0.5, "-1/16", "1/0", "abc", float("nan"), float("inf"), None, True])
def test_bad_cbr_is_a_config_error(bad):
    with pytest.raises(ConfigError):
        cv.parse_cbr(bad)


def test_channel_uses_from_cbr():
    assert cv.channel_uses("1/16", (1, 28, 28)) == 49
    assert cv.channel_uses("1/16", (3, 32, 32)) == 192
    assert cv.channel_uses("1/12", (3, 32, 32)) == 256  # exact, no binary rounding down to 255
    assert cv.channel_uses(0.1, (1, 28, 28)) == 78
    with pytest.raises(ConfigError, match="channel use"):
        cv.channel_uses("1/10000", (1, 28, 28))
    with pytest.raises(ConfigError):
        cv.channel_uses("1/16", (28, 28))


def test_bit_budgets():
    assert cv.bit_budget(192, 0.5, 2) == 192
    assert cv.bit_budget(49, 0.5, 1) == 24
    assert cv.bit_budget(100, 5 / 6, 6) == 500
    assert cv.bit_budget(7, 2 / 3, 4) == 18
    assert cv.ideal_bit_budget(100, cv.linear_to_db(3.0)) == 200
    assert cv.ideal_bit_budget(192, 10.0) == math.floor(192 * math.log2(11))
    assert cv.ideal_bit_budget(0, 10.0) == 0
    with pytest.raises(ConfigError):
        cv.bit_budget(-1, 0.5, 2)
    with pytest.raises(ConfigError):
        cv.bit_budget(10, 0.0, 2)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), "10", None])
def test_bad_snr_is_a_config_error(bad):
    with pytest.raises(ConfigError):
        cv.snr_db_to_n0(bad)
    with pytest.raises(ConfigError):
        FadingChannel("awgn")(torch.ones(1, 4, dtype=torch.complex64), bad)


def test_unknown_channel_name_is_a_typed_error():
    with pytest.raises(UnknownNameError, match="rayleigh-block"):
        cv.check_channel_kind("rician")
    with pytest.raises(UnknownNameError):
        make_channel("rician")
    with pytest.raises(UnknownNameError):
        cv.ideal_bit_budget(10, 5.0, "rician")
    with pytest.raises(ConfigError):
        FadingChannel("awgn", csi="partial")


def test_every_registered_channel_instantiates():
    names = registry.names("channel")
    assert {"awgn", "rayleigh-block", "rayleigh-fast"} <= set(names)
    assert all(cv.check_channel_kind(n) == n for n in names)
    for entry in registry.entries("channel"):
        for csi in cv.CSI_MODES:
            chan = entry.factory(csi=csi)
            assert chan.kind == entry.name and chan.csi == csi and entry.description
