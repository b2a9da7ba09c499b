"""The modulation-and-coding table: shipped data, physics sanity, selection, files, derivation."""

import json
import math

import pytest
import torch

from tosc.channel.conventions import capacity_bits_per_use, ergodic_rayleigh_capacity_bits_per_use
from tosc.channel.mcs import (
    MCS_SET,
    McsTable,
    compute_table,
    derive_block_fading,
    get_mcs,
    load_table,
    save_table,
    shipped_table_path,
    simulate_bler,
)
from tosc.errors import ConfigError, CorruptFileError


@pytest.fixture(scope="module")
def awgn():
    return load_table("awgn", shipped_table_path("awgn"))


def test_shipped_awgn_table_is_complete_and_documented(awgn):
    assert awgn.channel == "awgn" and awgn.target_bler == 1e-3 and awgn.derived_from is None
    assert awgn.reference_bits == [128, 256, 512, 1024]
    for ref in awgn.reference_bits:
        for mcs in MCS_SET:
            entry = awgn.curves[ref][mcs.name]
            assert entry["threshold_db"] is not None, (ref, mcs.name)
            assert (entry["k"], entry["n"]) == mcs.codeword(ref)
    for key in ("num_iter", "max_codewords", "seed", "snr_step_db"):
        assert key in awgn.params
    assert {"versions", "git_commit", "created_utc"} <= set(awgn.provenance)


@pytest.mark.parametrize("channel", ["awgn", "rayleigh-fast"])
def test_thresholds_rest_on_their_evidence(channel):
    table = load_table(channel, shipped_table_path(channel))
    assert table.reference_bits == [128, 256, 512, 1024] and table.derived_from is None
    for ref, curves in table.curves.items():
        assert set(curves) == {m.name for m in MCS_SET}
        for name, entry in curves.items():
            *before, last = entry["points"]
            snr, sent, failed = last
            assert snr == entry["threshold_db"] and failed / sent <= 1e-3 and sent >= 10000
            assert all(f / s > 1e-3 for _, s, f in before)  # every lower grid point failed the target


def test_thresholds_obey_physics(awgn):
    for ref in awgn.reference_bits:
        for mcs in MCS_SET:
            thr = awgn.threshold_db(mcs, ref)
            se = mcs.spectral_efficiency
            if mcs.bits_per_symbol == 1:  # BPSK uses one real dimension: 0.5 log2(1 + 2 SNR)
                shannon = 10 * math.log10((2 ** (2 * se) - 1) / 2)
            else:
                shannon = 10 * math.log10(2 ** se - 1)
            assert thr > shannon, (ref, mcs.name)  # no code beats capacity
            if ref == 1024:
                assert thr - shannon < 4.0, (mcs.name, thr, shannon)  # 5G LDPC at n=1024 is close
    for mod in {m.modulation for m in MCS_SET}:  # the fixed table covers BPSK..64-QAM
        for ref in awgn.reference_bits:
            thr = [awgn.threshold_db(m, ref) for m in MCS_SET if m.modulation == mod]
            assert thr == sorted(thr) and thr[-1] > thr[0]  # higher code rate needs more SNR
        for mcs in (m for m in MCS_SET if m.modulation == mod):
            assert awgn.threshold_db(mcs, 128) >= awgn.threshold_db(mcs, 1024) - 0.25  # short codes need more


def test_table_rows_climb_with_snr(awgn):
    rows = awgn.rows([x / 2 for x in range(-10, 50)])
    rates = [r["bits_per_channel_use"] for r in rows]
    assert rates == sorted(rates) and rates[0] == 0.0 and rates[-1] == 5.0
    for r in rows:
        if r["mcs"]:
            assert r["bits_per_channel_use"] < capacity_bits_per_use(r["snr_db"])


def test_stored_thresholds_still_hold_for_this_code(awgn):
    """Re-simulate one scheme with a fresh seed: past its threshold it (almost) never fails,
    a dB below it fails often. Catches a table that no longer matches the link."""
    mcs = get_mcs("qpsk-1/2")
    thr = awgn.threshold_db(mcs, 256)
    g = torch.Generator().manual_seed(1234)
    sent, failed = simulate_bler(mcs, 256, thr + 0.5, max_codewords=3000, stop_failures=10, generator=g)
    assert sent == 3000 and failed <= 6
    sent, failed = simulate_bler(mcs, 256, thr - 1.0, max_codewords=2000, stop_failures=30, generator=g)
    assert failed / sent > 1e-2


def test_block_fading_table(awgn):
    block = load_table("rayleigh-block", shipped_table_path("rayleigh-block"))
    assert block.derived_from == "awgn"
    for mcs in MCS_SET:
        thr_b, thr_a = block.threshold_db(mcs, 1024), awgn.threshold_db(mcs, 1024)
        # without diversity a deep fade of probability ~1e-3 must be survived: ~30 dB more
        assert thr_b is not None and 25.0 < thr_b - thr_a < 35.0


def test_fast_fading_table(awgn):
    fast = load_table("rayleigh-fast", shipped_table_path("rayleigh-fast"))
    block = load_table("rayleigh-block", shipped_table_path("rayleigh-block"))
    for mcs in MCS_SET:
        for ref in fast.reference_bits:
            thr = fast.threshold_db(mcs, ref)
            assert thr > awgn.threshold_db(mcs, ref)  # fading costs SNR even with perfect CSI
            if mcs.bits_per_symbol > 1:
                assert mcs.spectral_efficiency < ergodic_rayleigh_capacity_bits_per_use(thr)
        # ... but far less than block fading: a codeword sees many independent gains
        assert fast.threshold_db(mcs, 1024) < block.threshold_db(mcs, 1024) - 15.0


def step_table(threshold_db):
    # BLER 1 up to 0.02 dB below T, 1e-6 at T: a step at T for the derivation
    points = [[threshold_db - 0.02, 1000, 1000], [threshold_db, 10 ** 6, 1]]
    curves = {1024: {"bpsk-1/2": {"k": 0, "n": 1024, "points": points, "threshold_db": threshold_db}}}
    return McsTable("awgn", 1e-3, curves)


def test_block_fading_derivation_against_closed_form():
    """An AWGN curve that drops from 1 to ~0 at T gives BLER_block(s) = P(g s < T) = 1 - exp(-T/s)."""
    t_db = 5.0
    block = derive_block_fading(step_table(t_db), snr_step_db=0.01)
    expected = t_db - 10 * math.log10(-math.log(1 - 1e-3))  # solve 1 - exp(-T/s) = 1e-3: T + 30.0 dB
    assert expected - 0.03 <= block.threshold_db("bpsk-1/2", 1024) <= expected + 0.02
    curve = dict((p[0], p[1]) for p in block.curves[1024]["bpsk-1/2"]["expected"])
    for offset in (10.0, 20.0):
        s = 10 ** ((t_db + offset) / 10)
        assert curve[round(t_db + offset, 4)] == pytest.approx(1 - math.exp(-(10 ** (t_db / 10)) / s), rel=0.02)


def test_compute_table_small_and_round_trip(tmp_path):
    table = compute_table("awgn", (128,), max_codewords=300, schemes=[get_mcs("qpsk-1/2")], seed=3)
    entry = table.curves[128]["qpsk-1/2"]
    assert entry["threshold_db"] is not None and entry["points"][-1][2] / entry["points"][-1][1] <= 1e-3
    path = save_table(table, tmp_path / "t.json")
    again = load_table("awgn", path)
    assert again.curves[128]["qpsk-1/2"]["threshold_db"] == entry["threshold_db"]
    assert again.params["max_codewords"] == 300 and again.source == str(path)
    with pytest.raises(CorruptFileError):
        load_table("rayleigh-fast", path)  # holds the awgn table
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "something else"}))
    with pytest.raises(CorruptFileError):
        load_table("awgn", bad)
    bad.write_text("{not json")
    with pytest.raises(CorruptFileError):
        load_table("awgn", bad)
    with pytest.raises(ConfigError, match="--recompute"):
        load_table("awgn", tmp_path / "missing.json")
    with pytest.raises(ConfigError):
        compute_table("rayleigh-block")


def test_select_below_every_threshold_returns_the_most_robust(awgn):
    choice = awgn.select(-20.0)
    assert not choice.meets_target and choice.mcs == get_mcs("bpsk-1/2")
    assert awgn.select(40.0).mcs == get_mcs("64qam-5/6")
    with pytest.raises(ConfigError):
        awgn.select(float("nan"))
