"""docs/theory.md "Channel check": a Gaussian source sent uncoded over a real AWGN channel, one
use per sample, SNR 10 dB, linear MMSE receiver: D = 1/11 and, with rho^2 = 0.8,
I(X_hat; Y) = 0.937235 bits, the jointly Gaussian curve at R = 0.5 log2 11."""

import math

import pytest
import torch

from tosc.channel.analog import AnalogChannel, complex_to_real, real_to_complex

SNR_DB = 10.0
RHO2 = 0.8


def i_y_of_r(rate_bits: float, rho2: float) -> float:
    """docs/theory.md: I_Y(R) = -0.5 log2(1 - rho^2 + rho^2 2^(-2R)) for jointly Gaussian X, Y."""
    return -0.5 * math.log2(1 - rho2 + rho2 * 2 ** (-2 * rate_bits))


def test_closed_form_numbers():
    snr = 10 ** (SNR_DB / 10)
    d = 1 / (1 + snr)
    assert d == pytest.approx(0.090909, abs=1e-6)
    i_hat = -0.5 * math.log2(1 - RHO2 * (1 - d))
    assert i_hat == pytest.approx(0.937235, abs=1e-6)
    rate = 0.5 * math.log2(11)
    assert rate == pytest.approx(1.729716, abs=1e-6)
    assert i_y_of_r(rate, RHO2) == pytest.approx(i_hat, abs=1e-9)


def test_simulated_through_the_analog_channel():
    g = torch.Generator().manual_seed(0)
    n_images, samples = 50, 20000  # 10^6 Gaussian samples, two per complex channel use
    x = torch.randn(n_images, samples, generator=g, dtype=torch.float64)
    # the task variable: jointly Gaussian with X, corr^2 = rho^2
    y_task = x + math.sqrt(1 / RHO2 - 1) * torch.randn(n_images, samples, generator=g, dtype=torch.float64)
    chan = AnalogChannel("awgn")  # complex channel, Es = 1 per complex use: SNR per real dimension = SNR
    received = complex_to_real(chan(real_to_complex(x), SNR_DB, g)).double()
    # linear MMSE estimate per image (the encoder's power-normalisation gain is a known scalar)
    coef = (x * received).sum(1, keepdim=True) / received.square().sum(1, keepdim=True)
    x_hat = coef * received
    d = (x - x_hat).square().mean().item()
    assert d == pytest.approx(1 / 11, rel=0.01)
    corr2 = torch.corrcoef(torch.stack([x_hat.flatten(), y_task.flatten()]))[0, 1].item() ** 2
    i_hat = -0.5 * math.log2(1 - corr2)
    assert i_hat == pytest.approx(0.937235, abs=0.005)
