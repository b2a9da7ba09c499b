"""The chosen schemes meet the target block error rate on the whole link (slow: 20,000 codewords)."""

import pytest

from tosc.channel.digital import DigitalLink, measure_operating_point


@pytest.mark.slow
@pytest.mark.parametrize("snr_db, n_uses, osd_order, code", [
    (5.0, 196, 0, "ldpc"), (15.0, 196, 0, "ldpc"), (20.0, 49, 2, "ldpc"), (5.0, 98, 0, "polar"), (0.0, 49, 0, "polar")])
def test_chosen_scheme_meets_the_target_on_20000_codewords(snr_db, n_uses, osd_order, code):
    """(20, 49) is decoded with BP + OSD: every word OSD gets wrong passes the parity checks, so the
    undetected count tests its CRC-11. (5, 98) and (0, 49) are CA-polar blocks, whose CRC also
    picks the SCL path: the count tests that its 16 bits are enough for a list of 16."""
    link = DigitalLink()
    plan = link.plan(snr_db, n_uses)
    assert (plan.osd_order, plan.code) == (osd_order, code)
    result = measure_operating_point(link, snr_db, n_uses, 20000, seed=1)
    assert result["codewords"] >= 20000
    # at BLER 1e-3 one expects 20 failures; 35 would be a 3-sigma excess
    assert result["failed_images"] <= 35, result
    assert result["undetected"] == 0, result


@pytest.mark.slow
def test_a_segmented_block_meets_the_target_at_the_edge_of_the_model():
    """Six code blocks of 1,365 symbols (the 64x64 scene at 20 dB, CBR 2) sent at the lowest SNR
    where the model still passes the plan: the transport block, which fails when any of its code
    blocks does, still meets 1e-3, because each block is judged by the shorter 392-use reference."""
    import numpy as np

    from tosc.channel import digital

    link = DigitalLink()
    plan = link.plan(20.0, 8192)
    m = plan.modulation.bits_per_symbol
    assert plan.n_codewords >= 5
    lo, hi = 14.0, 20.0
    for _ in range(20):
        mid = (lo + hi) / 2
        if digital._largest_payload(digital.load_model("awgn"), 8192, m, mid) >= plan.payload_bits:
            hi = mid
        else:
            lo = mid
    link.choose = lambda snr_db, n_channel_uses: digital.Scheme(plan, True)
    rng = np.random.default_rng(3)
    failed = 0
    for start in range(0, 1000, 50):
        payloads = [rng.integers(0, 2, plan.capacity_bits, dtype=np.uint8) for _ in range(50)]
        out = link.transmit(payloads, snr_db=hi, n_channel_uses=8192, seed=3, image_indices=range(start, start + 50))
        failed += int((~out.ok).sum())
    assert failed <= 4, (hi, failed)  # 1,000 blocks at BLER 1e-3: 1 expected, 5 or more has p < 0.4%
