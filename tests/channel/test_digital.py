"""The digital link: rate matching to the exact channel uses, segmentation, CRC, payloads,
failures, fading, options, scheme choice; and the ideal and finite-length bound links."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from tosc.channel import bler
from tosc.channel.digital import (
    CODE_BLOCK_CRC,
    DigitalLink,
    bits_from_bytes,
    bytes_from_bits,
    choose_scheme,
    fixed_scheme,
    plan_transport,
    scrambling_sequence,
    transport_crc,
)
from tosc.channel.fading import FadingChannel
from tosc.channel.ideal import FiniteLengthLink, IdealLink
from tosc.channel.ldpc import max_coded_bits, rate_matchable
from tosc.channel.sionna_adapter import crc
from tosc.errors import ConfigError, DoesNotFitError

AWKWARD_USES = (1, 49, 97, 98, 392, 10 ** 5)


def random_bits(n, seed=0):
    return np.random.default_rng(seed).integers(0, 2, size=n).astype(np.uint8)


@settings(max_examples=300, deadline=None)
@given(n_uses=st.integers(1, 40000), bits=st.sampled_from([1, 2, 4, 6, 8]), rate=st.floats(0.05, 0.99))
def test_transport_plan_fills_exactly_the_channel_uses(n_uses, bits, rate):
    payload = max(1, int(rate * n_uses * bits))
    try:
        plan = plan_transport(n_uses, bits, payload)
    except DoesNotFitError:
        return
    assert sum(plan.symbols) == n_uses and max(plan.symbols) - min(plan.symbols) <= 1
    assert sum(plan.info_bits) == payload + plan.crc_bits
    assert plan.capacity_bits == payload
    for s, k in zip(plan.symbols, plan.info_bits):
        assert 12 <= k <= 8448 and k / (s * bits) <= 948 / 1024 + 1e-12
        assert k / (s * bits) >= 0.2 or s * bits <= max_coded_bits(k)  # below 1/5: no repetition
    if plan.n_codewords > 1:
        assert plan.cb_crc_bits == CODE_BLOCK_CRC[1]
        assert max(plan.info_bits) <= 8448


@pytest.mark.parametrize("n_uses", AWKWARD_USES)
@pytest.mark.parametrize("snr_db", [0.0, 10.0, 20.0])
def test_chosen_scheme_fills_exactly_k_channel_uses(n_uses, snr_db):
    if n_uses == 1:
        with pytest.raises(DoesNotFitError):
            choose_scheme(snr_db, n_uses)
        with pytest.raises(DoesNotFitError):
            DigitalLink().capacity_bits(snr_db, 1)  # a system then sends nothing and counts the image failed
        return
    scheme = choose_scheme(snr_db, n_uses)
    plan = scheme.plan
    assert sum(plan.symbols) == n_uses
    assert sum(plan.coded_bits) == n_uses * plan.modulation.bits_per_symbol
    if n_uses == 10 ** 5:
        assert plan.n_codewords > 1 and plan.cb_crc_bits == 24  # segmented as 38.212 does
    if snr_db == 20.0 and n_uses >= 98:
        assert plan.modulation.bits_per_symbol >= 6
        assert choose_scheme(26.0, n_uses).plan.modulation.bits_per_symbol == 8  # 256-QAM at high SNR


def test_a_long_payload_is_segmented_and_sent_over_exactly_k_uses():
    link = DigitalLink("qpsk-1/2")
    k = 10 ** 5
    out = link.transmit([random_bits(link.capacity_bits(10.0, k), 1)], snr_db=10.0, n_channel_uses=k, seed=1)
    im = out.images[0]
    assert out.plan.n_codewords == math.ceil((k + 24) / (8448 - 24)) and im.n_channel_uses == k
    assert im.ok and im.n_bit_errors == 0 and im.codeword_ok.all()


@pytest.mark.parametrize("channel", ["awgn", "rayleigh-fast"])
def test_payloads_of_zero_one_and_the_maximum(channel):
    link = DigitalLink(channel=channel)
    top = link.capacity_bits(25.0, 98)
    payloads = [random_bits(0), random_bits(1, 1), random_bits(top, 2), np.array([0], np.uint8)]
    out = link.transmit(payloads, snr_db=25.0, n_channel_uses=98, seed=2)
    assert out.ok.all()
    assert [im.payload_bits for im in out.images] == [0, 1, top, 1]
    assert [im.n_channel_uses for im in out.images] == [0, 98, 98, 98]
    assert out.images[0].n_codewords == 0
    for sent, im in zip(payloads, out.images):
        assert np.array_equal(im.bits, sent) and im.padding_bits == top - sent.size or sent.size == 0
    with pytest.raises(DoesNotFitError):
        link.transmit([random_bits(top + 1)], snr_db=25.0, n_channel_uses=98)


def test_bytes_and_bit_conversions():
    data = bytes(range(7))
    assert bytes_from_bits(bits_from_bytes(data)) == data
    out = DigitalLink("qpsk-1/2").transmit([data, b""], snr_db=20.0, n_channel_uses=200)
    assert bytes_from_bits(out.images[0].bits) == data and out.images[1].bits.size == 0
    with pytest.raises(ConfigError):
        bytes_from_bits(np.ones(7, np.uint8))
    with pytest.raises(ConfigError):
        DigitalLink("qpsk-1/2").transmit([np.array([0.0, 0.5])], snr_db=5.0, n_channel_uses=100)


def test_crc_catches_corrupted_blocks():
    generator = torch.Generator().manual_seed(0)
    for poly, k in (("CRC6", 40), ("CRC11", 200), ("CRC16", 500), ("CRC24A", 4000), ("CRC24B", 8000)):
        codec = crc(poly, k)
        blocks = codec.attach(torch.randint(0, 2, (400, k), generator=generator, dtype=torch.uint8))
        assert codec.check(blocks)[1].all()
        # one or two flipped bits: always caught (blocks shorter than the polynomials periods)
        bad = blocks.clone()
        for row in range(400):
            flips = torch.randperm(k + codec.length, generator=generator)[: 1 + row % 2]
            bad[row, flips] ^= 1
        assert not codec.check(bad)[1].any()
        # random garbage passes about 2^-L of the time
        garbage = torch.randint(0, 2, (4000, k + codec.length), generator=generator, dtype=torch.uint8)
        passed = int(codec.check(garbage)[1].sum())
        expected = 4000 * 2.0 ** -codec.length
        assert passed <= expected + 5 * math.sqrt(expected) + 1


def test_the_link_says_failed_when_the_decoder_returns_a_wrong_word_that_passes_its_parity(monkeypatch):
    """An LDPC undetected error (parity satisfied, bits wrong) must be caught by the CRC."""
    from tosc.channel import ldpc

    real_decode = ldpc.LDPC5GCode.decode

    def wrong_but_confident(self, llr, **kw):
        res = real_decode(self, llr, **kw)
        res.bits[:, 3] ^= 1
        res.ok[:] = True
        return res

    monkeypatch.setattr(ldpc.LDPC5GCode, "decode", wrong_but_confident)
    link = DigitalLink()
    payloads = [random_bits(link.capacity_bits(15.0, 196), s) for s in range(20)]
    out = link.transmit(payloads, snr_db=15.0, n_channel_uses=196, seed=1)
    assert not out.ok.any() and not any(im.undetected for im in out.images)


def test_low_snr_fails_and_is_counted():
    link = DigitalLink("64qam-5/6")
    payloads = [random_bits(link.capacity_bits(8.0, 340), s) for s in range(6)]
    out = link.transmit(payloads, snr_db=8.0, n_channel_uses=340, seed=2)
    assert out.failure_rate == 1.0 and (out.n_failed_codewords == out.plan.n_codewords).all()
    assert all(im.n_bit_errors > 0 for im in out.images)


def test_same_seed_same_result():
    payloads = [random_bits(300, s) for s in range(8)]
    link = DigitalLink("16qam-1/2")
    a = link.transmit(payloads, snr_db=6.0, n_channel_uses=300, seed=5)
    b = link.transmit(payloads, snr_db=6.0, n_channel_uses=300, seed=5)
    c = link.transmit(payloads, snr_db=6.0, n_channel_uses=300, seed=6)
    assert all(np.array_equal(x.bits, y.bits) for x, y in zip(a.images, b.images))
    assert np.array_equal(a.ok, b.ok)
    assert not all(np.array_equal(x.bits, y.bits) for x, y in zip(a.images, c.images))


def test_block_fading_hits_all_codewords_of_an_image_together():
    # 3 code blocks per image, one h per image: failures come all at once (deep fade) or not at all
    link = DigitalLink("qpsk-1/2", "rayleigh-block")
    k = 20000
    out = link.transmit([random_bits(link.capacity_bits(7.0, k), s) for s in range(60)], snr_db=7.0,
                        n_channel_uses=k, seed=3)
    failed = out.n_failed_codewords
    assert out.plan.n_codewords == 3
    assert 3 <= (failed == 3).sum() <= 45
    assert ((failed > 0) & (failed < 3)).sum() <= 0.25 * (failed > 0).sum()


def test_residual_bit_errors():
    link = DigitalLink("qpsk-1/2", residual_ber=0.01)
    payloads = [random_bits(link.capacity_bits(20.0, 4000), s) for s in range(5)]
    out = link.transmit(payloads, snr_db=20.0, n_channel_uses=4000, seed=4)
    flips = sum(im.residual_flips for im in out.images)
    expected = 0.01 * sum(p.size for p in payloads)
    assert abs(flips - expected) < 4 * np.sqrt(expected)
    assert all(im.ok and im.n_bit_errors == im.residual_flips for im in out.images)
    ideal = IdealLink(residual_ber=0.05).transmit([random_bits(4000, s) for s in range(5)], snr_db=20.0,
                                                  n_channel_uses=4000)
    assert abs(sum(im.residual_flips for im in ideal.images) - 1000) < 4 * np.sqrt(1000)


def test_bad_settings():
    from tosc.errors import UnknownNameError

    for kwargs in ({"csi": "none"}, {"residual_ber": 0.7}, {"decoder": "minsum"}, {"target_bler": 0.0}):
        with pytest.raises(ConfigError):
            DigitalLink("qpsk-1/2", **kwargs)
    for name in ("qpsk-3/0", "9qam-1/2", "qpsk"):
        with pytest.raises(ConfigError):
            DigitalLink(name)
    with pytest.raises(ConfigError):
        DigitalLink("qpsk-1/2").transmit([random_bits(10)], snr_db=float("nan"), n_channel_uses=100)
    with pytest.raises(ConfigError):
        DigitalLink("qpsk-1/2").transmit([random_bits(10)], snr_db=5.0, n_channel_uses=0)
    with pytest.raises(UnknownNameError):
        DigitalLink("qpsk-1/2", channel="rician")
    with pytest.raises(DoesNotFitError):
        fixed_scheme("qpsk-1/2", 10)  # 10 information bits cannot hold an 11-bit CRC and a payload


def test_sionna_decoder_option_gives_the_same_bits():
    payloads = [random_bits(150, s) for s in range(4)]
    a = DigitalLink("qpsk-2/3", decoder="sionna", early_stop=False).transmit(payloads, snr_db=6.0,
                                                                             n_channel_uses=150, seed=9)
    b = DigitalLink("qpsk-2/3").transmit(payloads, snr_db=6.0, n_channel_uses=150, seed=9)
    assert all(np.array_equal(x.bits, y.bits) for x, y in zip(a.images, b.images))


def test_crc_lengths_follow_the_measured_rule():
    assert transport_crc(20, 24) == ("CRC11", 11) and transport_crc(300, 48) == ("CRC11", 11)
    assert transport_crc(20, 49) == ("CRC6", 6) and transport_crc(3824, 5000) == ("CRC6", 6)
    assert transport_crc(3825, 5000) == ("CRC24A", 24)
    assert plan_transport(48, 2, 30).crc_bits == 11 and plan_transport(49, 2, 30).crc_bits == 6


def test_the_crc_rule_follows_the_shipped_measurement():
    """CRC-6 wherever the model's 50-iteration undetected share, at half the target BLER (what a
    refined threshold passed), leaves under 1e-6 undetected errors per block; CRC-11 below."""
    from tosc.channel.ldpc import NUM_ITER

    model = bler.load_model("awgn")
    for ref in (24, 49, 98, 196, 392):
        und, fail = model.undetected_fraction(ref, num_iter=NUM_ITER)
        assert fail >= 100, ref  # enough failed blocks to estimate the share
        share = (und + 1) / fail
        length = transport_crc(100, ref)[1]
        assert 0.5 * model.target_bler * share * 2.0 ** -length <= 1e-6, (ref, und, fail)
        if length == 6:
            continue
        assert 0.5 * model.target_bler * share * 2.0 ** -6 > 1e-6  # CRC-11 only where CRC-6 falls short


def test_choice_of_scheme_climbs_with_snr_and_meets_the_model():
    model = bler.load_model("awgn")
    previous = 0
    for snr in np.arange(-2.0, 26.0, 1.0):
        scheme = choose_scheme(float(snr), 196)
        bits = scheme.plan.capacity_bits if scheme.meets_target else 0
        assert bits >= previous
        previous = bits
        if scheme.meets_target:
            plan = scheme.plan
            assert plan.info_bits[0] <= model.max_info_bits(196, plan.modulation.bits_per_symbol, float(snr),
                                                            osd_order=plan.osd_order, code=plan.code)
    low = choose_scheme(-10.0, 196)
    assert not low.meets_target and low.plan.modulation.name == "qpsk"
    # the lowest rate without repetition: 49 bits fill base graph 2's 409-bit buffer (Z = 9), 48 do not
    assert low.plan.info_bits == (49,) and not rate_matchable(48, 392)
    out = DigitalLink().transmit([random_bits(low.plan.capacity_bits)], snr_db=-10.0, n_channel_uses=196)
    assert out.meets_target is False and not out.ok[0]


def test_block_fading_is_judged_with_its_outage():
    chan = FadingChannel("rayleigh-block")
    g_min = 10 ** ((chan.model_snr_db(20.0, 1e-3) - 20.0) / 10)
    assert 1 - math.exp(-g_min) == pytest.approx(5e-4, rel=1e-6)
    awgn, block = choose_scheme(20.0, 392), choose_scheme(20.0, 392, "rayleigh-block")
    assert awgn.meets_target and not block.meets_target  # 20 dB is not enough for 1e-3 in block fading
    assert choose_scheme(45.0, 392, "rayleigh-block").meets_target


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


def test_finite_length_link_is_the_normal_approximation_and_error_free():
    link = FiniteLengthLink("awgn")
    # the table: 5 dB and 196 channel uses allow 346 bits at BLER 1e-3
    assert link.capacity_bits(5.0, 196) == 346 and link.capacity_bits(0.0, 49) == 24
    assert link.capacity_bits(10.0, 98) < IdealLink().capacity_bits(10.0, 98)
    payloads = [random_bits(346, s) for s in range(50)]
    out = link.transmit(payloads, snr_db=5.0, n_channel_uses=196, seed=1)
    assert out.ok.all() and out.mode == "fbl"
    assert FiniteLengthLink("rayleigh-block").capacity_bits(20.0, 392) < FiniteLengthLink(
        "rayleigh-fast").capacity_bits(20.0, 392)


def test_scrambling_is_the_38211_gold_sequence():
    """38.211 5.2.1, bit by bit: x1 from 1, x2 from c_init, c(n) = x1(n + 1600) + x2(n + 1600)."""
    def reference(length, c_init):
        x1, x2 = [1] + [0] * 30, [(c_init >> i) & 1 for i in range(31)]
        for n in range(length + 1600):
            x1.append(x1[n + 3] ^ x1[n])
            x2.append(x2[n + 3] ^ x2[n + 2] ^ x2[n + 1] ^ x2[n])
        return np.array([x1[n + 1600] ^ x2[n + 1600] for n in range(length)], np.uint8)

    for c_init in (0, 1, 32769, 2 ** 31 - 1):
        assert np.array_equal(scrambling_sequence(2500, c_init), reference(2500, c_init))


def test_an_all_zero_block_is_sent_as_the_scrambling_sequence(monkeypatch):
    """A zero payload (zero CRC, zero codeword) must not send one QAM point over and over: the
    mapper sees the scrambling sequence itself, and the receiver still decodes the zeros."""
    from tosc.channel import modulation

    seen = []
    real_map = modulation.QamModem.map

    def spy(self, bits):
        seen.append(bits.clone())
        return real_map(self, bits)

    monkeypatch.setattr(modulation.QamModem, "map", spy)
    link = DigitalLink("16qam-1/2")
    out = link.transmit([np.zeros(link.capacity_bits(20.0, 300), np.uint8)], snr_db=20.0, n_channel_uses=300)
    assert out.ok.all() and out.images[0].n_bit_errors == 0
    sent = torch.cat(seen, dim=1)[0].numpy().astype(np.uint8)
    assert np.array_equal(sent, scrambling_sequence(300 * 4))


def test_a_zero_padded_segmented_block_decodes_where_random_ones_do():
    """The case CI met (a 64x64 scene at 20 dB, CBR 2: 8,192 channel uses, 256-QAM, six code
    blocks, a payload of 7,111 bits zero-padded to 44,597): without scrambling, image 1's last,
    all-zero code block failed at 20 BP iterations while random blocks passed."""
    from tosc.channel.digital import Scheme

    link = DigitalLink(channel="awgn", num_iter=20)
    plan = plan_transport(8192, 8, 44597)  # the scheme the BLER model of then chose: 256qam-K44621-n65536
    assert plan.n_codewords == 6 and plan.transport_bits == 44621
    link.choose = lambda snr_db, n_channel_uses: Scheme(plan, True)
    payload = np.zeros(7111, np.uint8)
    out = link.transmit([payload, payload], snr_db=20.0, n_channel_uses=8192, seed=1, image_indices=[1, 0])
    assert out.ok.all() and all(im.n_bit_errors == 0 for im in out.images)


@pytest.mark.parametrize("n_uses", [7000, 8000, 20000])
def test_long_blocks_between_rate_one_quarter_and_one_third_are_sent(n_uses):
    """38.212 gives them base graph 1 with repetition, which Sionna refuses (it raised a bare
    ValueError at 0 dB for 7,000 channel uses); they go as base graph 2 code blocks instead."""
    plan = plan_transport(n_uses, 2, int(0.29 * 2 * n_uses))
    assert all(k <= 3824 for k in plan.info_bits) and plan.n_codewords >= 2
    link = DigitalLink("qpsk-0.29")
    out = link.transmit([random_bits(link.capacity_bits(3.0, n_uses), 3)], snr_db=3.0, n_channel_uses=n_uses, seed=0)
    assert out.ok.all() and out.images[0].n_bit_errors == 0
