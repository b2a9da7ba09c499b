import pytest
import torch

from tosc.channel import AnalogChannel
from tosc.errors import ConfigError, DataError
from tosc.jscc import DeepJSCC, JSCCConfig
from tosc.jscc.train import JSCCTrainConfig


def _model(seed=0, **kw):
    torch.manual_seed(seed)
    return DeepJSCC(JSCCConfig(**kw)).eval()


@pytest.mark.parametrize("shape,attention", [((1, 28, 28), True), ((1, 28, 28), False), ((3, 32, 32), True),
                                             ((3, 30, 22), False)])
def test_shapes_for_any_image_size(shape, attention):
    model = _model(in_channels=shape[0], image_hw=shape[1:], snr_adaptive=attention)
    x = torch.rand(5, *shape)
    n = shape[0] * shape[1] * shape[2]
    assert model.k_max == n // 2
    c_out, h4, w4 = model.config.latent_shape
    assert c_out * h4 * w4 >= 2 * model.k_max
    for k in (1, 7, n // 16, model.k_max):
        out = model(x, 5.0, k)
        assert out["z"].shape == (5, k) and out["z"].is_complex()
        assert out["x_hat"].shape == x.shape
        assert 0 <= out["x_hat"].min() and out["x_hat"].max() <= 1


@pytest.mark.parametrize("k", [1, 49, 50, 196, 392])
def test_power_is_exactly_k_per_image(k):
    model = _model()
    x = torch.rand(6, 1, 28, 28)
    x[0] = 0.0  # a black image is normalised too
    z = model.encode(x, k, 3.0).to(torch.complex128)
    torch.testing.assert_close(z.abs().square().sum(1), torch.full((6,), float(k), dtype=torch.float64),
                               rtol=1e-5, atol=0)


@pytest.mark.parametrize("attention", [False, True])
def test_fewer_symbols_are_a_prefix_of_the_full_codeword(attention):
    # bandwidth agility: k symbols are the first k of the k_max ones, rescaled to Es = 1
    model = _model(snr_adaptive=attention)
    x = torch.rand(4, 1, 28, 28)
    full = model.encode(x, model.k_max, 10.0)
    for k in (49, 98, 333):
        part = model.encode(x, k, 10.0)
        scale = part[:, :1] / full[:, :1]
        torch.testing.assert_close(part, full[:, :k] * scale, rtol=1e-4, atol=1e-5)


def test_noise_free_channel_delivers_the_sent_symbols():
    model = _model(snr_adaptive=True)
    x = torch.rand(3, 1, 28, 28)
    for kind in ("awgn", "rayleigh-block", "rayleigh-fast"):
        ch = AnalogChannel(kind, normalize=False)
        g = torch.Generator().manual_seed(0)
        z = model.encode(x, 98, 200.0)
        torch.testing.assert_close(model(x, 200.0, 98, ch, g)["x_hat"], model.decode(z, 200.0), rtol=0, atol=1e-5)
        # repetition beyond k_max: maximum-ratio combining recovers the same symbols
        g = torch.Generator().manual_seed(0)
        out = model(x, 200.0, 2 * model.k_max + 5, ch, g)
        zmax = model.encode(x, model.k_max, 200.0)
        torch.testing.assert_close(out["x_hat"], model.decode(zmax, out["snr_rx_db"]), rtol=0, atol=1e-5)


def test_same_seed_same_output_other_seed_other_noise():
    model = _model()
    x = torch.rand(4, 1, 28, 28)
    a = model(x, 5.0, 98, generator=torch.Generator().manual_seed(1))["x_hat"]
    b = model(x, 5.0, 98, generator=torch.Generator().manual_seed(1))["x_hat"]
    c = model(x, 5.0, 98, generator=torch.Generator().manual_seed(2))["x_hat"]
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_bad_input_gives_typed_errors():
    model = _model()
    x = torch.rand(2, 1, 28, 28)
    with pytest.raises(ConfigError, match="1..392 symbols"):
        model.encode(x, 393)
    with pytest.raises(ConfigError):
        model(x, 5.0, 0)
    with pytest.raises(DataError, match="1x28x28"):
        model.encode(torch.rand(2, 3, 32, 32), 49)
    with pytest.raises(ConfigError, match="normalize=False"):
        model(x, 5.0, 49, AnalogChannel("awgn"))
    with pytest.raises(ConfigError):
        JSCCConfig(max_cbr=0.0)


def test_training_config_refuses_held_out_networks_and_bad_settings():
    with pytest.raises(ConfigError, match="held-out"):
        JSCCTrainConfig(lambda_s=0.01, task="classifier-resnet")
    with pytest.raises(ConfigError):
        JSCCTrainConfig(lambda_p=0.0, lambda_s=0.0)
    with pytest.raises(ConfigError):
        JSCCTrainConfig(cbrs=(0.75,))
    assert JSCCTrainConfig(lambda_s=0.01).variant == "tosc-sr-analog" and JSCCTrainConfig().variant == "deep-jscc"
