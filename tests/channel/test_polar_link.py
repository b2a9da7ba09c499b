"""The CA-polar code inside the digital link: plans, the scheme choice, and whole transmissions."""

import numpy as np
import pytest

from tosc.channel import bler
from tosc.channel.digital import DigitalLink, Scheme, choose_scheme, plan_transport, transport_crc
from tosc.channel.polar import POLAR_LINK_CRC, POLAR_MAX_CODED_BITS
from tosc.errors import ConfigError, DoesNotFitError

CRC_BITS = POLAR_LINK_CRC[1]


def row(k, coded, t):
    return {"info_bits": k, "coded_bits": coded, "threshold_db": t, "points": [], "margin_db": 0.0}


def model_where_polar_wins():
    """BP LDPC passes K = 100 at 2 dB over 98 QPSK symbols; the polar curve passes K = 120 there."""
    return bler.BlerModel("awgn", 1e-3, {
        "98/2": [row(60, 196, 0.0), row(100, 196, 2.0), row(140, 196, 6.0)],
        "98/2/polar": [row(60, 196, -1.0), row(70, 196, -0.5), row(120, 196, 2.0), row(130, 196, 3.0)],
    }, {"model_margin_db": 0.0})


@pytest.mark.parametrize("k", [13, 49, 97, 98, 392, 544])
def test_a_polar_plan_fills_exactly_the_channel_uses(k):
    plan = plan_transport(k, "qpsk", 8, code="polar")
    assert plan.code == "polar" and plan.symbols == (k,) and plan.coded_bits == (2 * k,)
    assert plan.tb_crc == POLAR_LINK_CRC and plan.crc_bits == CRC_BITS and plan.info_bits == (8 + CRC_BITS,)
    assert "CA-polar" in plan.describe()


def test_polar_plans_refuse_what_they_cannot_carry():
    with pytest.raises(DoesNotFitError):
        plan_transport(POLAR_MAX_CODED_BITS // 2 + 1, "qpsk", 100, code="polar")  # over 1,088 coded bits
    with pytest.raises(DoesNotFitError):
        plan_transport(49, "qpsk", 98 - CRC_BITS + 1, code="polar")  # K above E
    with pytest.raises(ConfigError):
        plan_transport(49, "qpsk", 20, osd_order=2, code="polar")
    with pytest.raises(ConfigError):
        plan_transport(49, "qpsk", 20, code="turbo")
    assert transport_crc(50, 49, code="polar") == POLAR_LINK_CRC


def test_the_scheme_choice_takes_polar_only_where_it_carries_more():
    model = model_where_polar_wins()
    best = choose_scheme(2.0, 98, "awgn", model=model, osd_order=0).plan
    assert best.code == "polar" and best.payload_bits == 120 - CRC_BITS
    ldpc = choose_scheme(2.0, 98, "awgn", model=model, osd_order=0, polar=False).plan
    assert ldpc.code == "ldpc" and ldpc.payload_bits == 100 - transport_crc(100, 98)[1]
    # at 6 dB LDPC (K = 140) beats the polar curve's 130
    assert choose_scheme(6.0, 98, "awgn", model=model, osd_order=0).plan.code == "ldpc"
    # polar blocks longer than 1,088 coded bits do not exist: 600 QPSK symbols go to LDPC
    assert choose_scheme(2.0, 600, "awgn", model=model, osd_order=0).plan.code == "ldpc"
    assert DigitalLink(model=model, osd_order=0).plan(2.0, 98).code == "polar"
    assert DigitalLink(model=model, osd_order=0, polar=False).plan(2.0, 98).code == "ldpc"


def test_the_model_reads_polar_curves_apart():
    model = model_where_polar_wins()
    assert model.reference_uses(2) == [98] and model.reference_uses(2, code="polar") == [98]
    assert model.max_info_bits_at_reference(98, 2, 2.0, code="polar") == 120.0
    assert model.max_info_bits_at_reference(98, 2, 2.0) == 100.0
    assert model.max_info_bits(196, 2, 2.0, code="polar") == 240  # scaled to 196 symbols, 392 coded bits
    assert model.max_info_bits(1000, 2, 2.0, code="polar") == 0  # no polar block that long
    assert model.undetected_fraction(code="polar") == (0, 0)


def send(link, payloads, snr_db, k=98):
    return link.transmit(payloads, snr_db=snr_db, n_channel_uses=k, seed=3)


def test_polar_transmission_round_trip_and_crc():
    model = model_where_polar_wins()
    link = DigitalLink(model=model, osd_order=0)
    plan = link.plan(2.0, 98)
    assert plan.code == "polar"
    rng = np.random.default_rng(0)
    payloads = [rng.integers(0, 2, plan.payload_bits, dtype=np.uint8) for _ in range(30)]
    payloads += [np.ones(1, np.uint8), np.zeros(0, np.uint8), rng.integers(0, 2, 17, dtype=np.uint8)]
    out = send(link, payloads, 12.0)  # far above the code's threshold: every block arrives
    link.choose = lambda snr_db, n_channel_uses: Scheme(plan, True)
    out = send(link, payloads, 12.0)
    assert out.ok.all() and out.scheme.plan.code == "polar"
    for sent, got in zip(payloads, out.images):
        assert np.array_equal(sent, got.bits)
    # far below it most blocks fail, and the CRC flags them: no wrong block passes as right
    bad = send(link, payloads[:30], -4.0)
    assert (~bad.ok).sum() >= 20
    assert not any(im.undetected for im in bad.images)
    assert all(im.n_failed_codewords == (0 if im.ok else 1) for im in bad.images)
