"""The digital link: segmentation, awkward payloads, failures, fading, options."""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tosc.channel.conventions import bit_budget
from tosc.channel.digital import (
    DigitalLink,
    bits_from_bytes,
    bytes_from_bits,
    choose_mcs,
    plan_segments,
)
from tosc.channel.ideal import IdealLink
from tosc.channel.mcs import MCS_SET, McsTable, get_mcs
from tosc.errors import ConfigError, DoesNotFitError


def random_bits(n, seed=0):
    return np.random.default_rng(seed).integers(0, 2, size=n).astype(np.uint8)


@settings(max_examples=300, deadline=None)
@given(n_uses=st.integers(1, 6000), mcs_index=st.integers(0, len(MCS_SET) - 1),
       max_bits=st.integers(24, 2048))
def test_segmentation_properties(n_uses, mcs_index, max_bits):
    mcs = MCS_SET[mcs_index]
    m = mcs.bits_per_symbol
    try:
        plan = plan_segments(n_uses, mcs, max_bits)
    except DoesNotFitError:
        count = -(-n_uses // (max_bits // m))
        assert bit_budget(n_uses, float(mcs.code_rate), m) < 13 * count
        return
    except ConfigError:
        assert max_bits < m
        return
    assert sum(plan.symbols) == n_uses
    assert all(c == s * m and c <= max_bits for s, c in zip(plan.symbols, plan.coded_bits))
    assert max(plan.symbols) - min(plan.symbols) <= 1
    assert plan.capacity_bits == bit_budget(n_uses, float(mcs.code_rate), m)  # B = floor(k r_c log2 M)
    for k, n in zip(plan.info_bits, plan.coded_bits):
        assert 12 <= k and abs(k - float(mcs.code_rate) * n) <= 1 and 0.2 <= k / n <= 0.95


def test_awkward_payloads_round_trip():
    link = DigitalLink("qpsk-1/2")
    n_uses = 1000  # 2 codewords of 500 symbols = 1000 coded bits, 500 information bits each
    plan = link.plan(20.0, n_uses)
    assert plan.info_bits == (500, 500) and plan.capacity_bits == 1000
    lengths = [0, 1, 499, 500, 501, 1000]
    payloads = [random_bits(n, seed=n) for n in lengths]
    out = link.transmit(payloads, snr_db=20.0, n_channel_uses=n_uses, seed=1)
    for n, sent, got in zip(lengths, payloads, out.images):
        assert got.ok and got.bits.dtype == np.uint8 and np.array_equal(got.bits, sent)
        assert got.payload_bits == n and got.n_bit_errors == 0
    assert [im.n_codewords for im in out.images] == [0, 1, 1, 1, 2, 2]
    assert [im.padding_bits for im in out.images] == [0, 499, 1, 0, 499, 0]
    assert [im.n_channel_uses for im in out.images] == [0, 500, 500, 500, 1000, 1000]
    assert out.ok.all() and out.n_failed_codewords.sum() == 0 and out.failure_rate == 0.0
    assert out.meets_target is None and out.mcs.name == "qpsk-1/2"  # a fixed scheme, not the table's
    assert out.channel_uses.tolist() == [0, 500, 500, 500, 1000, 1000]
    empty = link.transmit([], snr_db=20.0, n_channel_uses=n_uses)
    assert empty.images == [] and empty.failure_rate == 0.0


def test_payload_over_capacity_fails_clearly():
    link = DigitalLink("qpsk-1/2")
    # one codeword of 192 information bits: "one codeword plus one bit" does not fit
    with pytest.raises(DoesNotFitError, match="193 bits"):
        link.transmit([random_bits(10), random_bits(193)], snr_db=10.0, n_channel_uses=192)
    with pytest.raises(DoesNotFitError, match="at least 12"):
        link.transmit([random_bits(4)], snr_db=10.0, n_channel_uses=10)


def test_bytes_payloads():
    data = b"\x00\xffhello tosc\x01"
    assert bytes_from_bits(bits_from_bytes(data)) == data
    out = DigitalLink("16qam-3/4").transmit([data, b""], snr_db=25.0, n_channel_uses=64)
    assert bytes_from_bits(out.images[0].bits) == data and out.images[1].payload_bits == 0
    with pytest.raises(ConfigError):
        bytes_from_bits(np.ones(7, np.uint8))
    with pytest.raises(ConfigError):
        DigitalLink("qpsk-1/2").transmit([np.array([0, 1, 2])], snr_db=5.0, n_channel_uses=100)
    with pytest.raises(ConfigError):
        DigitalLink("qpsk-1/2").transmit([np.zeros((2, 3))], snr_db=5.0, n_channel_uses=100)
    with pytest.raises(ConfigError):
        DigitalLink("qpsk-1/2").transmit([np.array([0.0, 0.5])], snr_db=5.0, n_channel_uses=100)
    out = DigitalLink("qpsk-1/2").transmit([np.array([True, False, True]), [1.0, 0.0]], snr_db=20.0,
                                           n_channel_uses=100)
    assert out.images[0].bits.tolist() == [1, 0, 1] and out.images[1].bits.tolist() == [1, 0]


def test_low_snr_fails_and_is_counted():
    out = DigitalLink("64qam-5/6").transmit([random_bits(1700, s) for s in range(6)], snr_db=8.0,
                                            n_channel_uses=340, seed=2)
    assert out.plan.n_codewords == 2
    assert out.failure_rate == 1.0 and not out.ok.any()
    assert (out.n_failed_codewords == 2).all()
    assert all(im.n_bit_errors > 0 for im in out.images)


def test_same_seed_same_result():
    payloads = [random_bits(300, s) for s in range(8)]
    a = DigitalLink("16qam-1/2").transmit(payloads, snr_db=6.0, n_channel_uses=300, seed=5)
    b = DigitalLink("16qam-1/2").transmit(payloads, snr_db=6.0, n_channel_uses=300, seed=5)
    c = DigitalLink("16qam-1/2").transmit(payloads, snr_db=6.0, n_channel_uses=300, seed=6)
    assert all(np.array_equal(x.bits, y.bits) for x, y in zip(a.images, b.images))
    assert np.array_equal(a.ok, b.ok)
    assert not all(np.array_equal(x.bits, y.bits) for x, y in zip(a.images, c.images))


def test_block_fading_hits_all_codewords_of_an_image_together():
    # 4 codewords per image, one h per image: failures come all at once (deep fade) or not at all
    out = DigitalLink("qpsk-1/2", "rayleigh-block").transmit(
        [random_bits(2048, s) for s in range(120)], snr_db=7.0, n_channel_uses=2048, seed=3)
    failed = out.n_failed_codewords
    assert out.plan.n_codewords == 4
    assert 5 <= (failed == 4).sum() <= 90
    assert ((failed > 0) & (failed < 4)).sum() <= 0.25 * (failed > 0).sum()
    fast = DigitalLink("qpsk-1/2", "rayleigh-fast").transmit(
        [random_bits(2048, s) for s in range(30)], snr_db=7.0, n_channel_uses=2048, seed=3)
    assert fast.failure_rate < out.failure_rate  # fast fading averages out within a codeword


def test_residual_bit_errors():
    payloads = [random_bits(4000, s) for s in range(5)]
    out = DigitalLink("qpsk-1/2", residual_ber=0.01).transmit(payloads, snr_db=20.0, n_channel_uses=4000, seed=4)
    flips = sum(im.residual_flips for im in out.images)
    assert abs(flips - 200) < 4 * np.sqrt(200)
    assert all(im.ok and im.n_bit_errors == im.residual_flips for im in out.images)
    ideal = IdealLink(residual_ber=0.05).transmit(payloads, snr_db=20.0, n_channel_uses=4000)
    assert abs(sum(im.residual_flips for im in ideal.images) - 1000) < 4 * np.sqrt(1000)


def test_bad_settings():
    with pytest.raises(ConfigError):
        DigitalLink("qpsk-1/2", csi="none")
    with pytest.raises(ConfigError):
        DigitalLink("qpsk-1/2", residual_ber=0.7)
    with pytest.raises(ConfigError):
        DigitalLink("qpsk-3/7")
    with pytest.raises(ConfigError):
        DigitalLink("qpsk-1/2", decoder="minsum")
    with pytest.raises(ConfigError):
        DigitalLink("qpsk-1/2").transmit([random_bits(10)], snr_db=float("nan"), n_channel_uses=100)
    with pytest.raises(ConfigError):
        DigitalLink("qpsk-1/2").transmit([random_bits(10)], snr_db=5.0, n_channel_uses=0)
    from tosc.errors import UnknownNameError

    with pytest.raises(UnknownNameError):
        DigitalLink("qpsk-1/2", channel="rician")


def test_sionna_decoder_option_gives_the_same_bits():
    payloads = [random_bits(200, s) for s in range(4)]
    a = DigitalLink("qpsk-2/3", decoder="sionna", early_stop=False).transmit(payloads, snr_db=6.0,
                                                                             n_channel_uses=150, seed=9)
    b = DigitalLink("qpsk-2/3").transmit(payloads, snr_db=6.0, n_channel_uses=150, seed=9)
    assert all(np.array_equal(x.bits, y.bits) for x, y in zip(a.images, b.images))


def synthetic_table(thresholds_by_ref):
    curves = {ref: {name: {"k": 0, "n": ref, "points": [], "threshold_db": thr} for name, thr in th.items()}
              for ref, th in thresholds_by_ref.items()}
    return McsTable("awgn", 1e-3, curves)


def test_choice_of_scheme():
    long = {m.name: 2.0 + 4.0 * m.spectral_efficiency for m in MCS_SET}
    short = {name: thr + 1.5 for name, thr in long.items()}  # short codewords need more SNR
    table = synthetic_table({1024: long, 128: short})
    sel = table.select(14.0, 1024)
    assert sel.meets_target and sel.mcs.spectral_efficiency == 3.0  # 16qam-3/4 and 64qam-1/2 both 3.0
    assert sel.threshold_db == 14.0
    assert table.select(14.0, 200).mcs.spectral_efficiency < 3.0  # judged at the 128-bit reference
    low = table.select(-5.0)
    assert not low.meets_target and low.mcs == get_mcs("bpsk-1/2")
    # choose_mcs looks at the codewords the image would really use
    tiny = choose_mcs(14.0, 40, table=table)  # 40 uses: codewords of 40..240 bits -> 128 reference
    big = choose_mcs(14.0, 4000, table=table)
    assert big.reference_bits == 1024 and tiny.reference_bits == 128
    assert tiny.mcs.spectral_efficiency < big.mcs.spectral_efficiency
    assert big.mcs.code_rate == Fraction(3, 4) or big.mcs.code_rate == Fraction(1, 2)
    link = DigitalLink(table=table)
    assert link.choose(30.0, 4000).mcs == get_mcs("64qam-5/6")
    out = link.transmit([random_bits(100)], snr_db=-10.0, n_channel_uses=400)
    assert out.meets_target is False and out.mcs == get_mcs("bpsk-1/2") and not out.ok[0]
    assert link.capacity_bits(30.0, 4000) == bit_budget(4000, 5 / 6, 6)


def test_ideal_link():
    link = IdealLink("awgn")
    budget = link.capacity_bits(10.0, 100)
    assert budget == int(100 * np.log2(11))
    payloads = [random_bits(budget), random_bits(1), random_bits(0)]
    out = link.transmit(payloads, snr_db=10.0, n_channel_uses=100)
    assert out.ok.all() and all(np.array_equal(a, b.bits) for a, b in zip(payloads, out.images))
    assert out.images[0].n_channel_uses == 100 and out.images[2].n_channel_uses == 0
    with pytest.raises(DoesNotFitError):
        link.transmit([random_bits(budget + 1)], snr_db=10.0, n_channel_uses=100)


def test_ideal_block_fading_outage_probability():
    snr_db, k, payload = 10.0, 50, 100  # needs log2(1 + g SNR) >= 2: g >= 3 / 10
    out = IdealLink("rayleigh-block").transmit([random_bits(payload)] * 4000, snr_db=snr_db, n_channel_uses=k,
                                               seed=7)
    expected = 1 - np.exp(-(2 ** (payload / k) - 1) / 10 ** (snr_db / 10))
    assert out.failure_rate == pytest.approx(expected, abs=4 * np.sqrt(expected * (1 - expected) / 4000))
    for im in out.images:  # an image in outage gets nothing (zeros), the others arrive intact
        assert (im.n_bit_errors == 0) if im.ok else (not im.bits.any())
