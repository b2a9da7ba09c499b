"""The chosen schemes meet the target block error rate on the whole link (slow: 20,000 codewords)."""

import pytest

from tosc.channel.digital import DigitalLink, measure_operating_point


@pytest.mark.slow
@pytest.mark.parametrize("snr_db, n_uses", [(5.0, 98), (15.0, 196)])
def test_chosen_scheme_meets_the_target_on_20000_codewords(snr_db, n_uses):
    link = DigitalLink()
    result = measure_operating_point(link, snr_db, n_uses, 20000, seed=1)
    assert result["codewords"] >= 20000
    # at BLER 1e-3 one expects 20 failures; 35 would be a 3-sigma excess
    assert result["failed_images"] <= 35, result
    assert result["undetected"] == 0, result
