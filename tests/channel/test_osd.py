"""Ordered-statistics decoding: against Sionna's OSDecoder, against brute-force ML, and inside the link."""

import itertools

import numpy as np
import pytest
import torch

from tosc.channel import bler
from tosc.channel.digital import DigitalLink, choose_scheme, plan_transport, transport_crc
from tosc.channel.fading import FadingChannel
from tosc.channel.ldpc import OSD_MAX_CODED_BITS, get_code
from tosc.channel.modulation import get_modem
from tosc.channel.osd import osd_decode
from tosc.errors import ConfigError, DoesNotFitError


def noisy(code, n_words, snr_db, seed, modem="qpsk"):
    g = torch.Generator().manual_seed(seed)
    u = torch.randint(0, 2, (n_words, code.k), generator=g, dtype=torch.uint8)
    qam = get_modem(modem)
    out = FadingChannel("awgn")(qam.map(code.encode(u)), snr_db, g)
    return u, qam.demap(out.y, 10 ** (-snr_db / 10))


def metric(codeword: np.ndarray, llr: np.ndarray) -> np.ndarray:
    """Sum of |LLR| where a codeword [.., n] disagrees with the hard decision (logits: > 0 is bit 1)."""
    return (np.abs(llr) * (codeword != (llr > 0))).sum(-1)


def test_order_0_decodes_clean_words():
    code = get_code(40, 100, 2)
    u = torch.randint(0, 2, (5, 40), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    llr = 4.0 * (2.0 * code.encode(u) - 1.0)
    bits, best, runner_up = osd_decode(code.generator, llr.numpy(), 0)
    assert np.array_equal(bits, u.numpy()) and np.all(best == 0) and np.all(np.isinf(runner_up))


@pytest.mark.parametrize("order", [1, 2])
def test_same_decisions_as_sionna(order):
    from sionna.phy.fec.linear import OSDecoder

    code = get_code(24, 64, 2)
    _, llr = noisy(code, 60, -1.0, seed=order)
    bits, _, _ = osd_decode(code.generator, llr.numpy(), order)
    theirs = OSDecoder(encoder=code.encoder, t=order, device="cpu")(llr).numpy().astype(np.uint8)
    ours = code.encode(torch.from_numpy(bits)).numpy().astype(np.uint8)
    assert np.array_equal(ours, theirs)


def test_metrics_and_maximum_likelihood_by_enumeration():
    code = get_code(12, 40, 2)  # 4,096 codewords: ML by enumeration
    _, llr = noisy(code, 40, -3.0, seed=3)
    llr = llr.numpy().astype(np.float64)
    words = code.encode(torch.tensor(list(itertools.product([0, 1], repeat=12)), dtype=torch.uint8)).numpy()
    ml = np.array([metric(words, x).min() for x in llr])
    for order in (0, 1, 2):
        bits, best, runner_up = osd_decode(code.generator, llr, order)
        decided = code.encode(torch.from_numpy(bits)).numpy()
        assert np.allclose(metric(decided, llr), best)  # the metric reported is the word's
        assert np.all(best >= ml - 1e-9) and np.all(runner_up >= best)
    # order 2 reaches ML on most words of this tiny code
    assert np.mean(np.isclose(best, ml)) >= 0.9


def test_osd_after_bp_fixes_failed_words():
    code = get_code(140, 196, 2)
    u, llr = noisy(code, 400, 4.5, seed=5)
    bp = code.decode(llr)
    both = code.decode(llr, osd_order=2)
    wrong_bp = (~bp.ok) | (bp.bits != u).any(1)
    wrong_both = (both.bits != u).any(1)
    assert wrong_bp.sum() >= 10  # the point is hard enough for BP to fail
    assert wrong_both.sum() * 3 <= wrong_bp.sum()
    assert torch.equal(both.by_osd, ~bp.ok) and bool(both.ok.all())
    assert torch.equal(both.bits[bp.ok], bp.bits[bp.ok])  # OSD only touches what BP failed on
    with pytest.raises(ConfigError):
        code.decode(llr, osd_order=3)


def test_plans_with_osd_get_crc11_and_stay_short():
    assert transport_crc(100, 98, osd_order=2) == ("CRC11", 11)
    plan = plan_transport(98, "qpsk", 120, osd_order=2)
    assert plan.osd_order == 2 and plan.crc_bits == 11 and "OSD-2" in plan.describe()
    with pytest.raises(DoesNotFitError):
        plan_transport(OSD_MAX_CODED_BITS // 2 + 1, "qpsk", 100, osd_order=2)


def test_scheme_choice_weighs_osd_against_bp():
    model = bler.load_model("awgn")
    for snr in (0.0, 5.0, 10.0, 20.0):
        for k in (49, 98, 196, 392):
            with_osd = choose_scheme(snr, k, "awgn", osd_order=2, model=model).plan
            bp = choose_scheme(snr, k, "awgn", osd_order=0, model=model).plan
            assert bp.osd_order == 0 and with_osd.payload_bits >= bp.payload_bits
            if with_osd.osd_order:
                assert with_osd.payload_bits > bp.payload_bits and sum(with_osd.coded_bits) <= OSD_MAX_CODED_BITS
    assert DigitalLink(osd_order=0).plan(5.0, 49).osd_order == 0


def test_curve_keys_round_trip():
    assert bler.curve_key(98, 2) == "98/2" and bler.curve_key(98, 2, 2) == "98/2/osd2"
    assert bler.parse_curve_key("98/2/osd2") == (98, 2, 2, "ldpc") and bler.parse_curve_key("49/4") == (49, 4, 0, "ldpc")
    assert bler.curve_key(98, 2, code="polar") == "98/2/polar" and bler.parse_curve_key("98/2/polar") == (98, 2, 0, "polar")


def test_model_interpolates_only_between_grid_neighbours():
    def row(k, t):
        return {"info_bits": k, "coded_bits": 392, "threshold_db": t, "points": []}

    model = bler.BlerModel("awgn", 1e-3, {"196/2": [row(100, 0.0), row(110, 1.0), row(260, 5.0)],
                                         "196/2/osd2": [row(120, 0.0), row(124, 1.0)]})
    assert model.max_info_bits_at_reference(196, 2, 0.5) == pytest.approx(105.0)  # neighbours: a line
    assert model.max_info_bits_at_reference(196, 2, 3.0) == 110.0  # a gap of 150 bits is not bridged
    assert model.max_info_bits_at_reference(196, 2, 5.0) == 260.0
    # BP + OSD: its own curve where measured, never less than BP's
    assert model.max_info_bits_at_reference(196, 2, 0.5, osd_order=2) == pytest.approx(122.0)
    assert model.max_info_bits_at_reference(196, 2, 5.0, osd_order=2) == 260.0
    assert model.reference_uses(2) == [196] and model.reference_uses(2, 2) == [196]


def test_a_failed_osd_block_counts_as_a_failed_codeword():
    from tosc.channel.digital import Scheme

    link = DigitalLink()
    plan = plan_transport(49, "qpsk", 55, osd_order=2)
    link.choose = lambda snr_db, n_channel_uses: Scheme(plan, True)
    rng = np.random.default_rng(0)
    out = link.transmit([rng.integers(0, 2, 55, dtype=np.uint8) for _ in range(200)], snr_db=1.0,
                        n_channel_uses=49, seed=0)
    ok = np.array([im.ok for im in out.images])
    failed = np.array([im.n_failed_codewords for im in out.images])
    assert 0 < (~ok).sum() < 200  # OSD words always pass the parity checks: only the CRC fails them
    assert np.array_equal(~ok, failed == 1)
