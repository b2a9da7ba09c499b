"""Uncoded QAM over AWGN vs closed forms; the LLR sign convention; exact APP demapping."""

import math

import pytest
import torch

from tosc.channel.conventions import ebno_db_to_snr_db
from tosc.channel.fading import FadingChannel
from tosc.channel.modulation import QamModem, get_modulation, hard_decision, q_function, uncoded_ber
from tosc.errors import ConfigError


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def textbook_ber(name, snr):
    """Independent closed forms (SNR = Es/N0, Gray labelling)."""
    if name == "bpsk":
        return q_function(math.sqrt(2 * snr))
    if name == "qpsk":
        return q_function(math.sqrt(snr))  # = Q(sqrt(2 Eb/N0))
    x = math.sqrt(snr / 5)
    return (3 * q_function(x) + 2 * q_function(3 * x) - q_function(5 * x)) / 4


@pytest.mark.parametrize("name", ["bpsk", "qpsk", "16qam"])
def test_exact_ber_function_equals_textbook_forms(name):
    for snr_db in (-2.0, 4.0, 9.0):
        assert uncoded_ber(name, snr_db) == pytest.approx(textbook_ber(name, 10 ** (snr_db / 10)), rel=1e-9)


@pytest.mark.parametrize("name,ebno_db", [("bpsk", 4.0), ("qpsk", 4.0), ("16qam", 8.0), ("64qam", 12.0)])
def test_uncoded_ber_over_awgn_matches_closed_form(name, ebno_db):
    modem = QamModem(name)
    m = modem.bits_per_symbol
    snr_db = ebno_db_to_snr_db(ebno_db, m)  # Es/N0 = Eb/N0 * log2(M)
    n_bits = 600_000 // m * m
    bits = torch.randint(0, 2, (20, n_bits // 20), generator=gen(1))
    out = FadingChannel("awgn")(modem.map(bits), snr_db, gen(2))
    llr = modem.demap(out.y, 10 ** (-snr_db / 10))
    ber = (hard_decision(llr) != bits).double().mean().item()
    expected = uncoded_ber(name, snr_db)
    assert ber == pytest.approx(expected, abs=4 * math.sqrt(expected * (1 - expected) / bits.numel()))
    if name in ("bpsk", "qpsk"):  # docs/channel.md: Q(sqrt(2 Eb/N0))
        assert expected == pytest.approx(q_function(math.sqrt(2 * 10 ** (ebno_db / 10))), rel=1e-9)


def test_ebnodb2no_bits_per_symbol_trap_changes_the_ber():
    """Passing the constellation size (16) to Sionna's ebnodb2no instead of log2(M) = 4
    silently makes the noise 6 dB weaker: the measured BER then no longer matches theory."""
    from sionna.phy.utils import ebnodb2no

    modem = QamModem("16qam")
    bits = torch.randint(0, 2, (10, 40000), generator=gen(3))
    x = modem.map(bits)
    for m_arg, should_match in ((4, True), (16, False)):
        n0 = float(ebnodb2no(6.0, m_arg, 1.0))
        out = FadingChannel("awgn")(x, 10 * math.log10(1 / n0), gen(4))
        ber = (hard_decision(modem.demap(out.y, n0)) != bits).double().mean().item()
        expected = uncoded_ber("16qam", ebno_db_to_snr_db(6.0, 4))
        close = abs(ber - expected) < 4 * math.sqrt(expected / bits.numel())
        assert close == should_match


def test_llr_sign_convention():
    """Sionna's demapper gives log P(b=1)/P(b=0): positive means bit 1."""
    for name in ("bpsk", "qpsk", "16qam", "64qam"):
        modem = QamModem(name)
        m = modem.bits_per_symbol
        bits = torch.randint(0, 2, (4, 60 * m), generator=gen(5))
        llr = modem.demap(modem.map(bits), 1e-2)  # almost noiseless
        assert torch.equal(hard_decision(llr), bits.to(torch.uint8))
        assert ((llr > 0) == (bits == 1)).all()
    # BPSK: bit 0 -> +1, LLR = -4 y / N0
    modem = QamModem("bpsk")
    y = torch.tensor([[0.3 + 0.2j, -1.1 - 0.5j]], dtype=torch.complex64)
    assert torch.allclose(modem.demap(y, 0.5), -4 * y.real / 0.5, atol=1e-5)


@pytest.mark.parametrize("name", ["bpsk", "qpsk", "16qam", "64qam"])
def test_separable_demapper_equals_sionna_app(name):
    fast, ref = QamModem(name, "separable"), QamModem(name, "sionna")
    m = fast.bits_per_symbol
    bits = torch.randint(0, 2, (64, 120 * m), generator=gen(6))
    x = fast.map(bits)
    y = x + 0.4 * torch.randn(x.shape, dtype=torch.complex64, generator=gen(7))
    n0 = torch.rand(x.shape, generator=gen(8)) * 0.5 + 0.02  # per-symbol noise, as after fading
    a, b = fast.demap(y, n0), ref.demap(y, n0)
    assert torch.allclose(a, b, rtol=1e-4, atol=1e-3)
    assert torch.allclose(fast.demap(y, 0.1), ref.demap(y, 0.1), rtol=1e-4, atol=1e-3)


def test_modulation_names_and_bits_per_symbol():
    assert get_modulation("16-QAM").bits_per_symbol == 4
    assert get_modulation(6).name == "64qam"
    assert get_modulation("qpsk").order == 4
    with pytest.raises(ConfigError, match="constellation size"):
        get_modulation(16)
    with pytest.raises(ConfigError):
        get_modulation("8psk")
    with pytest.raises(ConfigError):
        QamModem("qpsk").map(torch.zeros(1, 3))


@pytest.mark.parametrize("name", ["bpsk", "qpsk", "16qam", "64qam"])
def test_constellations_have_unit_energy_so_snr_is_es_over_n0(name):
    modem = QamModem(name)
    points, labels = get_modulation(name).points_and_labels()
    assert abs((abs(points) ** 2).mean() - 1.0) < 1e-12
    # the Sionna mapper uses the same points and labels
    bits = torch.tensor(labels, dtype=torch.float32).reshape(1, -1)
    assert torch.allclose(modem.map(bits).to(torch.complex128).flatten(), torch.tensor(points), atol=1e-6)
    # measured SNR of the digital path equals the requested one
    x = modem.map(torch.randint(0, 2, (20, 30000 // modem.bits_per_symbol * modem.bits_per_symbol), generator=gen(9)))
    out = FadingChannel("awgn")(x, 12.0, gen(10))
    measured = 10 * math.log10(x.abs().square().mean().item() / (out.y - x).abs().square().mean().item())
    assert abs(measured - 12.0) < 0.1
