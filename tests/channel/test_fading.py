"""AWGN and Rayleigh channels, per-image power normalisation, the analog JSCC channel."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from tosc.channel.analog import AnalogChannel, complex_to_real, normalize_power, real_to_complex
from tosc.channel.fading import FadingChannel, complex_normal
from tosc.errors import ConfigError


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def unit_symbols(n, k, seed=1):
    return normalize_power(complex_normal((n, k), gen(seed)))


@pytest.mark.parametrize("snr_db", [-5.0, 0.0, 10.0, 25.0])
def test_measured_snr_equals_requested_awgn(snr_db):
    x = unit_symbols(64, 4096)
    out = FadingChannel("awgn")(x, snr_db, gen())
    noise = out.y - x
    measured = 10 * math.log10(x.abs().square().mean().item() / noise.abs().square().mean().item())
    assert abs(measured - snr_db) < 0.1
    # CN(0, N0): N0/2 per real dimension, real and imaginary parts uncorrelated
    n0 = 10 ** (-snr_db / 10)
    assert noise.real.var().item() == pytest.approx(n0 / 2, rel=0.02)
    assert noise.imag.var().item() == pytest.approx(n0 / 2, rel=0.02)
    assert abs(np.corrcoef(noise.real.flatten(), noise.imag.flatten())[0, 1]) < 0.01


def test_our_noise_convention_matches_sionna_awgn():
    from sionna.phy.channel import AWGN

    x = torch.zeros(200, 1000, dtype=torch.complex64)
    n0 = 0.3
    theirs = AWGN(device="cpu")(x, n0)
    ours = FadingChannel("awgn")(x, 10 * math.log10(1 / n0), gen()).y
    assert theirs.abs().square().mean().item() == pytest.approx(n0, rel=0.02)
    assert ours.abs().square().mean().item() == pytest.approx(theirs.abs().square().mean().item(), rel=0.02)


def test_per_image_power_normalisation():
    z = complex_normal((16, 300), gen(3)) * torch.linspace(0.01, 50, 16)[:, None]
    z = normalize_power(z)
    per_image = z.abs().square().sum(dim=1)
    assert torch.allclose(per_image, torch.full((16,), 300.0), rtol=1e-5)
    # real input too, and a zero image stays zero rather than NaN
    r = normalize_power(torch.cat([torch.randn(3, 10, generator=gen()), torch.zeros(1, 10)]))
    assert torch.allclose(r[:3].square().sum(1), torch.full((3,), 10.0), rtol=1e-5)
    assert torch.equal(r[3], torch.zeros(10))


def test_measured_snr_per_image_after_normalisation():
    # wildly different image powers: after normalisation every image sees the requested SNR
    z = complex_normal((8, 20000), gen(4)) * torch.logspace(-3, 3, 8)[:, None]
    chan = AnalogChannel("awgn")
    out = chan.transmit(z, 7.0, gen(5))
    x = normalize_power(z)
    snr = 10 * torch.log10(x.abs().square().mean(1) / (out.y - x).abs().square().mean(1))
    assert (snr - 7.0).abs().max().item() < 0.1


def test_rayleigh_block_statistics():
    x = torch.ones(20000, 16, dtype=torch.complex64)
    out = FadingChannel("rayleigh-block")(x, 30.0, gen(6))
    h = out.h
    assert torch.equal(h, h[:, :1].expand_as(h))  # one gain per image
    g = h[:, 0].abs().square().double().numpy()
    assert g.mean() == pytest.approx(1.0, abs=4 / math.sqrt(20000))
    assert stats.kstest(g, "expon").pvalue > 1e-3  # |h|^2 ~ Exp(1)
    phase = torch.angle(h[:, 0]).double().numpy()
    assert stats.kstest(phase, stats.uniform(loc=-math.pi, scale=2 * math.pi).cdf).pvalue > 1e-3


def test_rayleigh_fast_statistics():
    x = torch.ones(50, 4000, dtype=torch.complex64)
    out = FadingChannel("rayleigh-fast")(x, 30.0, gen(7))
    h = out.h
    g = h.abs().square().double().numpy().ravel()
    assert g.mean() == pytest.approx(1.0, abs=4 / math.sqrt(g.size))
    assert stats.kstest(g[:20000], "expon").pvalue > 1e-3
    # independent across symbols: neighbouring gains uncorrelated
    a, b = h[:, :-1].flatten(), h[:, 1:].flatten()
    corr = (a * b.conj()).mean().abs().item()
    assert corr < 4 / math.sqrt(a.numel())
    # average received SNR without CSI is still the requested one (E|h|^2 = 1)
    xs = unit_symbols(50, 4000, 8)
    y = FadingChannel("rayleigh-fast", "none")(xs, 10.0, gen(9))
    signal = (y.h * xs).abs().square().mean().item()
    noise = (y.y - y.h * xs).abs().square().mean().item()
    assert abs(10 * math.log10(signal / noise) - 10.0) < 0.1


def test_bpsk_over_fast_rayleigh_with_csi_matches_closed_form():
    snr_db = 10.0
    snr = 10 ** (snr_db / 10)
    bits = torch.randint(0, 2, (40, 5000), generator=gen(10))
    x = (1 - 2 * bits).to(torch.complex64)
    out = FadingChannel("rayleigh-fast")(x, snr_db, gen(11))
    ber = ((out.equalised().real < 0).long() != bits).float().mean().item()
    expected = 0.5 * (1 - math.sqrt(snr / (1 + snr)))
    assert ber == pytest.approx(expected, abs=4 * math.sqrt(expected / bits.numel()))


def test_seeded_generator_reproduces_and_different_seeds_differ():
    x = unit_symbols(4, 64)
    for kind in ("awgn", "rayleigh-block", "rayleigh-fast"):
        a = FadingChannel(kind)(x, 5.0, gen(12)).y
        b = FadingChannel(kind)(x, 5.0, gen(12)).y
        c = FadingChannel(kind)(x, 5.0, gen(13)).y
        assert torch.equal(a, b) and not torch.equal(a, c)


def test_analog_channel_is_differentiable_and_csi_modes():
    z = complex_normal((4, 32), gen(14)).requires_grad_(True)
    for kind in ("awgn", "rayleigh-block", "rayleigh-fast"):
        for csi in ("perfect", "none"):
            z.grad = None
            zhat = AnalogChannel(kind, csi)(z, torch.tensor([0.0, 5.0, 10.0, 20.0]), gen(15))
            assert zhat.shape == z.shape and zhat.is_complex()
            loss = (zhat - normalize_power(z.detach())).abs().square().mean()
            loss.backward()
            assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0
    # perfect CSI: zero-forcing removes h; no CSI: the raw y
    chan_p = AnalogChannel("rayleigh-block", "perfect")
    chan_n = AnalogChannel("rayleigh-block", "none")
    z0 = z.detach()
    out = chan_p.transmit(z0, 60.0, gen(16))
    assert torch.allclose(chan_p(z0, 60.0, gen(16)), out.y / out.h)
    assert torch.allclose(chan_n(z0, 60.0, gen(16)), out.y)
    assert torch.allclose(out.y / out.h, normalize_power(z0), atol=0.05)
    # MMSE equalisation stays bounded in deep fades
    mmse = AnalogChannel("rayleigh-fast", equalizer="mmse")(complex_normal((64, 256), gen(17)), 0.0, gen(18))
    assert mmse.abs().max() < 10


def test_real_complex_packing_and_bad_inputs():
    x = torch.randn(3, 10, generator=gen())
    z = real_to_complex(x)
    assert z.shape == (3, 5) and torch.equal(complex_to_real(z), x)
    with pytest.raises(ConfigError):
        real_to_complex(torch.randn(3, 5))
    with pytest.raises(ConfigError):
        FadingChannel("awgn")(torch.randn(3, 5), 3.0)
    with pytest.raises(ConfigError):
        AnalogChannel("awgn")(complex_normal((2, 4)), torch.tensor([1.0, float("nan")]))
    with pytest.raises(ConfigError):
        AnalogChannel("awgn", equalizer="magic")


def test_shipped_fast_fading_model_reads_coarse_rows_half_a_db_low():
    """Fast fading reads each BLER row by its own margin (tosc.channel.fading): the coarse
    20-iteration rows must carry 0.5 dB, the refined ones one refinement step."""
    from tosc.channel import bler
    from tosc.channel.fading import RayleighFastChannel

    assert not hasattr(RayleighFastChannel, "model_margin_db")  # no channel-wide override of the rows
    model = bler.load_model("rayleigh-fast")
    rows = [r for rows in model.curves.values() for r in rows]
    coarse = [r for r in rows if r.get("num_iter") == 20]
    refined = [r for r in rows if r.get("num_iter") == 50]
    assert coarse and refined
    assert all(model.row_margin_db(r) == 0.5 for r in coarse)
    assert all(model.row_margin_db(r) == bler.REFINED_MARGIN_DB for r in refined)


def test_merge_models_can_read_the_older_rows_with_a_given_margin():
    from tosc.channel import bler
    from tosc.errors import ConfigError

    def row(k, margin=None):
        r = {"info_bits": k, "coded_bits": 98, "threshold_db": 1.0, "points": []}
        return r if margin is None else {**r, "margin_db": margin}

    refined = bler.BlerModel("rayleigh-fast", 1e-3, {"49/2": [row(40, 0.0625)]}, {"model_margin_db": 0.0625})
    older = bler.BlerModel("rayleigh-fast", 1e-3, {"49/2": [row(30), row(40)]}, {"model_margin_db": 0.25})
    kept = bler.merge_models(refined, older)
    assert [(r["info_bits"], r["margin_db"]) for r in kept.curves["49/2"]] == [(30, 0.25), (40, 0.0625)]
    raised = bler.merge_models(refined, older, 0.5)
    assert [(r["info_bits"], r["margin_db"]) for r in raised.curves["49/2"]] == [(30, 0.5), (40, 0.0625)]
    assert raised.params["older_rows"]["margin_db"] == 0.5
    with pytest.raises(ConfigError):
        bler.merge_models(refined, older, -1.0)
