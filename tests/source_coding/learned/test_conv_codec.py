"""Codec v3: compiled coder, integer network, streams, rate control, determinism, training resume."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from tosc.errors import ConfigError, CorruptFileError, DataError
from tosc.source_coding.learned import arithmetic
from tosc.source_coding.learned.conv import QUALITY_LEVELS, ConvCodec, ConvCodecConfig, scale_table
from tosc.source_coding.learned.conv_codec import ConvLearnedCodec, freeze_conv_codec, stream_bits
from tosc.source_coding.learned.fastcoder import StreamDecoder, Tables, encode_batch
from tosc.source_coding.learned.intnet import SHIFT, IntConv, IntNet

TINY = dict(width=8, latent_channels=8, hyper_channels=4, hyper_width=8)


def _gaussian_tables():
    from compressai.entropy_models import GaussianConditional

    gc = GaussianConditional(None)
    gc.update_scale_table(scale_table().tolist())
    return gc._quantized_cdf.tolist(), gc._cdf_length.tolist(), gc._offset.tolist()


def test_fast_coder_writes_the_python_coders_bytes_and_decodes_in_steps():
    cdfs, lengths, offsets = _gaussian_tables()
    rng = np.random.default_rng(1)
    idx = rng.integers(0, len(cdfs), (6, 400))
    sym = np.round(rng.normal(0, scale_table().numpy()[idx])).astype(np.int64)
    sym[0, 3], sym[2, 399] = 10**6, -(10**5)  # escapes at both ends of the range
    streams = encode_batch(sym, idx, Tables(cdfs, lengths, offsets))
    reference = [arithmetic.encode(sym[r].tolist(), idx[r].tolist(), cdfs, lengths, offsets) for r in range(6)]
    assert streams == reference
    dec = StreamDecoder(streams, Tables(cdfs, lengths, offsets))
    got = np.concatenate([dec.decode(idx[:, :1]), dec.decode(idx[:, 1:250]), dec.decode(idx[:, 250:])], axis=1)
    assert (got == sym).all()


def test_tables_hold_each_row_once_without_padding():
    """The coder's tables are one flat array: a padded matrix of codec v3's 20,498 tables (the
    longest 3,133 entries) took 514 MB and seconds per load."""
    cdfs, lengths, offsets = _gaussian_tables()
    tables = Tables(cdfs, lengths, offsets)
    assert len(tables.cdfs) == sum(lengths) < len(cdfs) * max(lengths)
    for t in (0, len(cdfs) // 2, len(cdfs) - 1):
        assert tables.cdfs[tables.starts[t]:tables.starts[t] + lengths[t]].tolist() == cdfs[t][:lengths[t]]
    assert tables.rows() == [row[:n] for row, n in zip(cdfs, lengths)]
    with pytest.raises(ValueError, match="CDF table 1 is shorter"):
        Tables([cdfs[0], cdfs[1][:3]], [lengths[0], 4], offsets[:2])
    with pytest.raises(ValueError, match="2 CDF tables but 1 lengths"):
        Tables(cdfs[:2], lengths[:1], offsets[:1])
    codec = ConvLearnedCodec.load("mse-only-v3")
    assert codec.tables.cdfs.nbytes == 8 * codec.tables.lengths.sum() < 10 * 2**20


def test_fast_decoder_rejects_garbage_with_a_typed_error():
    cdfs, lengths, offsets = _gaussian_tables()
    tables = Tables(cdfs, lengths, offsets)
    dec = StreamDecoder([b"\xff" * 40], tables)
    with pytest.raises(CorruptFileError):
        dec.decode(np.full((1, 5000), len(cdfs) - 1, dtype=np.int64))  # wide table: bits per symbol


def _numpy_int_conv(a: np.ndarray, layer: IntConv) -> np.ndarray:
    """Reference: the layer in int64 numpy, loops over the kernel (no floats at all)."""
    w = layer.int_weight.numpy().astype(np.int64)
    if layer.transposed:  # zero-stuff, pad, flip: a plain conv
        n, c, h, wd = a.shape
        s = layer.stride
        st = np.zeros((n, c, (h - 1) * s + 1, (wd - 1) * s + 1), dtype=np.int64)
        st[:, :, ::s, ::s] = a
        lo = layer.kernel - 1 - layer.padding
        a = np.pad(st, ((0, 0), (0, 0), (lo, lo + layer.output_padding), (lo, lo + layer.output_padding)))
        w = w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
        stride = 1
    else:
        p = layer.padding
        a = np.pad(a, ((0, 0), (0, 0), (p, p), (p, p)))
        stride = layer.stride
    k = layer.kernel
    oh, ow = (a.shape[2] - k) // stride + 1, (a.shape[3] - k) // stride + 1
    acc = np.zeros((a.shape[0], w.shape[0], oh, ow), dtype=np.int64)
    for i in range(k):
        for j in range(k):
            patch = a[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride]
            acc += np.einsum("nchw,oc->nohw", patch, w[:, :, i, j])
    acc += layer.int_bias.numpy().astype(np.int64).reshape(1, -1, 1, 1)
    v = (acc * layer.multiplier.numpy().astype(np.int64).reshape(1, -1, 1, 1) + (1 << (SHIFT - 1))) >> SHIFT
    return np.clip(v, -(1 << 15), 1 << 15) if layer.final else np.clip(v, 0, 255)


def test_integer_network_is_exact_integer_arithmetic():
    torch.manual_seed(0)
    net = IntNet([IntConv(4, 8, 5, 2, transposed=True), IntConv(8, 8, 5, 2, transposed=True),
                  IntConv(8, 6, 3, 1, final=True)], input_bound=255)
    with torch.no_grad():
        for layer in net.layers:
            layer.log_alpha.fill_(2.0)
    net.export()
    z = torch.randint(-40, 41, (3, 4, 2, 3))
    got = net.run_exact(z).numpy()
    a = np.clip(z.numpy().astype(np.int64), -255, 255)
    for layer in net.layers:
        a = _numpy_int_conv(a, layer)
    assert (got == a).all()
    assert got.std() > 0  # not a saturated network that would pass trivially
    # the training path computes the same integers up to float32 error
    assert (net(z.float()).detach().numpy() - got).__abs__().max() <= 1


@pytest.mark.parametrize("transposed", [False, True])
def test_integer_layer_is_exact_on_both_routes_at_the_float32_edge(transposed):
    """A layer whose convolution sums reach just under 2**24 runs in float32 and one just over
    runs in float64; both must equal int64 arithmetic on inputs at the worst case (all 255)."""
    torch.manual_seed(1)
    for target, route in ((2**24 - 300, torch.float32), (2**24 + 300, torch.float64)):
        layer = IntConv(32, 4, 5, 2, transposed=transposed)
        layer.export()
        # every output channel's |W| sums to exactly target // 255, with random signs
        total = target // 255
        per_channel = layer.int_weight[:, 0].numel() if transposed else layer.int_weight[0].numel()
        mags = torch.full((per_channel,), float(-(-total // per_channel)))
        mags[: int(mags.sum().item()) - total] -= 1
        signs = torch.where(torch.rand(layer.int_weight.shape) < 0.5, -1.0, 1.0).double()
        w = signs * (mags.view(1, 32, 5, 5).transpose(0, 1) if transposed else mags.view(1, 32, 5, 5)).double()
        layer.int_weight = w
        layer.int_bias = torch.randint(-1000, 1000, (4,)).double()
        layer.multiplier = torch.full((4,), float(1 << (SHIFT - 12)))
        assert (layer.conv_sum_bound(255) < 2**24) == (route == torch.float32)
        a = torch.randint(0, 256, (2, 32, 3, 4)).double()
        a[0] = 255.0  # the worst case: every input at its bound
        got = layer.run_exact(a, max_abs_input=255).numpy()
        assert (got == _numpy_int_conv(a.numpy().astype(np.int64), layer)).all()
        assert got.std() > 0


def _tiny_model(context: str = "none") -> ConvCodec:
    torch.manual_seed(0)
    model = ConvCodec(ConvCodecConfig(context=context, **TINY))
    if model.ctx is not None:  # a fresh context starts near zero; give it corrections worth testing
        with torch.no_grad():
            model.ctx.layers[-1].weight.normal_(0, 0.3)
    return model


@pytest.fixture(scope="module", params=["none", "checkerboard"])
def tiny_codec(request):
    return ConvLearnedCodec.from_trained(_tiny_model(request.param), name="tiny")


@pytest.mark.parametrize("shape", [(1, 28, 28), (1, 16, 16), (1, 17, 45)])
def test_streams_round_trip_any_size(tiny_codec, shape, fashion_test_slice):
    images = torch.rand(5, *shape) if shape != (1, 28, 28) else fashion_test_slice.images[:5]
    streams = tiny_codec.encode(images, np.array([0, 30, 64, 100, 127]))
    out = tiny_codec.decode(streams, shape[1:])
    assert out.shape == images.shape and torch.isfinite(out).all()
    assert torch.equal(out * 255, (out * 255).round()) and out.min() >= 0 and out.max() <= 1  # 8-bit images
    # zero bits appended (as a fixed channel budget delivers them) decode identically
    padded = tiny_codec.decode([s + b"\x00" * 7 for s in streams], shape[1:])
    assert torch.equal(out, padded)
    assert all(stream_bits(s) <= 8 * len(s) for s in streams)


def test_rgb_and_wrong_inputs():
    torch.manual_seed(0)
    codec = ConvLearnedCodec.from_trained(ConvCodec(ConvCodecConfig(in_channels=3, **TINY)))
    images = torch.rand(2, 3, 20, 36)
    assert codec.decode(codec.encode(images, 50), (20, 36)).shape == images.shape
    with pytest.raises(DataError):
        codec.encode(torch.rand(1, 1, 20, 36))
    with pytest.raises(DataError):
        codec.encode(torch.rand(1, 3, 8, 36))
    with pytest.raises(DataError):
        codec.encode(images, QUALITY_LEVELS)


def test_rate_control_fills_without_exceeding(tiny_codec, fashion_test_slice):
    images = fashion_test_slice.images[:12]
    budgets = np.array([20, 60, 200, 800, 3000, 10**6] * 2)
    streams, quality = tiny_codec.encode_to_budget(images, budgets)
    for s, q, b in zip(streams, quality, budgets):
        if s is None:
            assert q == -1
            assert stream_bits(tiny_codec.encode(images[:1], 0)[0]) > 0
            continue
        assert stream_bits(s) <= b
        if q < QUALITY_LEVELS - 1:  # the next quality up would not have fitted, or is no larger
            assert q >= 0
    assert (quality[-1] == QUALITY_LEVELS - 1) and streams[-1] is not None


def test_a_quality_ladder_shared_by_budgets_gives_the_same_streams_and_codes_each_once(tiny_codec,
                                                                                     fashion_test_slice,
                                                                                     monkeypatch):
    images = fashion_test_slice.images[:6]
    budgets = (40, 90, 150, 400, 1200)
    fresh = [tiny_codec.encode_to_budget(images, b) for b in budgets]
    coded = []
    real = tiny_codec.encode_latents
    monkeypatch.setattr(tiny_codec, "encode_latents", lambda y, q: coded.extend(zip(y.sum((1, 2, 3)).tolist(),
                                                                                      np.atleast_1d(q).tolist()))
                        or real(y, q))
    ladder = tiny_codec.ladder(images)
    shared = [tiny_codec.encode_to_budget(images, b, ladder=ladder) for b in budgets]
    for (s1, q1), (s2, q2) in zip(fresh, shared):
        assert s1 == s2 and np.array_equal(q1, q2)
    assert len(coded) == len(set(coded)) == len(ladder.streams)  # no (image, index) coded twice
    assert len(coded) < 0.6 * 6 * 8 * len(budgets)  # a bisection per budget codes about 8 per image
    with pytest.raises(DataError, match="ladder holds 6 images"):
        tiny_codec.encode_to_budget(images[:2], 100, ladder=ladder)


def test_decoding_is_bit_exact_in_another_process_with_other_thread_counts(tiny_codec, tmp_path,
                                                                           fashion_test_slice):
    path = tmp_path / "tiny.pt"
    tiny_codec.save(path)
    codec = ConvLearnedCodec.load(path)  # the saved model (float16 weights), as the other process reads it
    images = fashion_test_slice.images[:8]
    streams = codec.encode(images, np.arange(8) * 16)
    (tmp_path / "streams.bin").write_bytes(b"".join(len(s).to_bytes(4, "little") + s for s in streams))
    here = codec.decode(streams, (28, 28))
    torch.save(here, tmp_path / "here.pt")
    script = textwrap.dedent(f"""
        import torch
        from tosc.source_coding.learned.conv_codec import ConvLearnedCodec
        codec = ConvLearnedCodec.load(r"{path}")
        data = open(r"{tmp_path / 'streams.bin'}", "rb").read()
        streams, pos = [], 0
        while pos < len(data):
            n = int.from_bytes(data[pos:pos + 4], "little"); streams.append(data[pos + 4:pos + 4 + n]); pos += 4 + n
        here = torch.load(r"{tmp_path / 'here.pt'}")
        for threads in (1, 2):  # one process for both thread counts: each start costs seconds of imports
            torch.set_num_threads(threads)
            again = codec.encode(here * 0 + 0, 0)  # exercise the encoder too
            print(threads, torch.get_num_threads(), int(torch.equal(codec.decode(streams, (28, 28)), here)))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.stdout.split()[-6:] == ["1", "1", "1", "2", "2", "1"], (result.stdout, result.stderr[-2000:])


def test_saved_codec_has_same_identity_and_output(tiny_codec, tmp_path, fashion_test_slice):
    """Saving stores the float weights as float16, so the first save is the shipped model; from
    then on save/load is exact, and the decoder's tables never change."""
    tiny_codec.save(tmp_path / "c.pt")
    loaded = ConvLearnedCodec.load(tmp_path / "c.pt")
    loaded.save(tmp_path / "c2.pt")
    again = ConvLearnedCodec.load(tmp_path / "c2.pt")
    assert again.model_id == loaded.model_id
    images = fashion_test_slice.images[:4]
    assert loaded.encode(images, 77) == again.encode(images, 77)
    assert torch.equal(loaded.decode(loaded.encode(images, 77), (28, 28)), again.decode(again.encode(images, 77), (28, 28)))
    for key in ("entropy_bottleneck._quantized_cdf", "gaussian._quantized_cdf", "h_s.layers.0.int_weight"):
        assert torch.equal(loaded.model.state_dict()[key].double(), tiny_codec.model.state_dict()[key].double())
    # streams of the unrounded model decode with the rounded one to nearly the same pixels
    streams = tiny_codec.encode(images, 77)
    assert (loaded.decode(streams, (28, 28)) - tiny_codec.decode(streams, (28, 28))).abs().max() < 0.02


def test_training_resumes_to_the_uninterrupted_weights(tmp_path, monkeypatch):
    import tosc.training as scaffold  # every trainer saves through the one scaffold
    from tosc.source_coding.learned import train_conv

    cfg = train_conv.ConvTrainConfig(epochs=2, batch_size=16, train_images=48, checkpoint_every=2, **TINY)
    train_conv.train_conv_codec(cfg, tmp_path / "full.pt", progress=False)
    saves = []
    real_save = scaffold.save_checkpoint

    def save_then_die(*args, **kwargs):
        real_save(*args, **kwargs)
        saves.append(1)
        if len(saves) == 2:  # mid-way through epoch 1... after its first checkpoint
            raise KeyboardInterrupt

    monkeypatch.setattr(scaffold, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_conv.train_conv_codec(cfg, tmp_path / "cut.pt", progress=False)
    monkeypatch.setattr(scaffold, "save_checkpoint", real_save)
    train_conv.train_conv_codec(cfg, tmp_path / "cut.pt", progress=False)
    full = torch.load(tmp_path / "full.pt", weights_only=True)["state_dict"]
    cut = torch.load(tmp_path / "cut.pt", weights_only=True)["state_dict"]
    assert full.keys() == cut.keys()
    for key in full:
        assert torch.equal(full[key], cut[key]), key


def test_training_config_refuses_nonsense():
    from tosc.errors import ConfigError
    from tosc.source_coding.learned.train_conv import ConvTrainConfig

    for bad in (dict(lr=float("nan")), dict(lambda_min=float("inf")), dict(lambda_s=-1), dict(epochs="abc"),
                dict(lambda_min=10, lambda_max=5), dict(balance=2), dict(semantic_exponent=-0.5), dict(semantic_exponent=2.5),
                dict(pixel_weight=float("nan")), dict(pixel_weight=0),  # task-only needs lambda_s > 0
                dict(semantic_lambda_cap=-1), dict(semantic_lambda_cap=float("nan"))):
        with pytest.raises(ConfigError):
            ConvTrainConfig(**bad)
    assert ConvTrainConfig(pixel_weight=0, lambda_s=0.05).variant == "task-only"
    assert ConvTrainConfig(lambda_s=0.05).variant == "tosc-sr"


def test_semantic_weight_stops_growing_at_the_cap():
    from tosc.source_coding.learned.train_conv import ConvTrainConfig, semantic_weight

    lam = torch.tensor([2.0, 8.0, 128.0, 1.2e5])
    free = semantic_weight(ConvTrainConfig(lambda_s=0.1, semantic_exponent=1.0), lam)
    assert torch.allclose(free, 0.1 * lam / 2)
    capped = semantic_weight(ConvTrainConfig(lambda_s=0.1, semantic_exponent=1.0, semantic_lambda_cap=8.0), lam)
    assert torch.allclose(capped, torch.tensor([0.1, 0.4, 0.4, 0.4]))
    half = semantic_weight(ConvTrainConfig(lambda_s=0.1, semantic_exponent=0.5, semantic_lambda_cap=128.0), lam)
    assert torch.allclose(half, torch.tensor([0.1, 0.2, 0.8, 0.8]))


def test_loss_weights_rates_and_terms_as_configured(monkeypatch):
    """balance divides each image's loss by (lambda/lambda_min) ** balance; pixel_weight = 0
    removes the MSE term (task-only); checked on a fixed forward pass."""
    from tosc.source_coding.learned import train_conv

    out = {"x_hat": torch.zeros(2, 1, 4, 4), "bits_y": torch.tensor([16.0, 32.0]), "bits_z": torch.zeros(2)}

    class Fixed:
        def __call__(self, x, t):
            return out

    x = torch.full((2, 1, 4, 4), 0.5)
    t = torch.tensor([0.0, 1.0])
    for balance in (0.0, 0.5):
        cfg = train_conv.ConvTrainConfig(lambda_min=2, lambda_max=8, balance=balance)
        terms = train_conv._loss(Fixed(), None, x, None, t, cfg)
        per = torch.tensor([1.0 + 2 * 0.25, 2.0 + 8 * 0.25]) / torch.tensor([1.0, 4.0]) ** balance
        assert torch.allclose(terms["loss"], per.mean())
    cfg = train_conv.ConvTrainConfig(lambda_min=2, lambda_max=8, balance=0.0, pixel_weight=0, lambda_s=1.0)
    assert torch.allclose(train_conv._loss(Fixed(), None, x, None, t, cfg)["loss"], torch.tensor(1.5))


def test_tosc_file_round_trip_and_version_errors(tiny_codec, fashion_test_slice):
    from tosc.source_coding.learned.bitstream import FileHeader, pack_file, unpack_file

    images = fashion_test_slice.images[:5]
    data = tiny_codec.encode_file(images, 90)
    header, streams = unpack_file(data)
    assert header.version == 2 and len(streams) == 5
    assert torch.equal(tiny_codec.decode_file(data), tiny_codec.decode(streams, (28, 28)))
    old = pack_file(FileHeader(tiny_codec.model_id, (1, 28, 28), (0, 0, 0, 0), version=1), streams)
    with pytest.raises(CorruptFileError, match="version 1"):
        tiny_codec.decode_file(old)
    assert tiny_codec.decode_file(tiny_codec.encode_file(images[:0])).shape == (0, 1, 28, 28)


def test_cli_encodes_and_decodes_with_a_v3_checkpoint(tiny_codec, tmp_path, fashion_test_slice, capsys):
    from tosc.cli import main  # in this process: the CLI's own entry point is tested in tests/test_cli.py

    images = (fashion_test_slice.images[:3].numpy() * 255).round().astype(np.uint8)
    np.savez(tmp_path / "x.npz", images=images)
    tiny_codec.save(tmp_path / "v3.pt")
    assert main(["encode", str(tmp_path / "x.npz"), "-m", str(tmp_path / "v3.pt"), "-q", "40",
                 "-o", str(tmp_path / "x.tosc")]) == 0
    assert main(["decode", str(tmp_path / "x.tosc"), "-m", str(tmp_path / "v3.pt"), "-o", str(tmp_path / "y.npz")]) == 0
    saved = ConvLearnedCodec.load(tmp_path / "v3.pt")
    expected = saved.decode(saved.encode(torch.from_numpy(images / 255.0).float(), 40), (28, 28)).numpy()
    with np.load(tmp_path / "y.npz") as decoded:
        assert np.array_equal(decoded["images"].reshape(expected.shape), expected)
    capsys.readouterr()
    assert main(["encode", str(tmp_path / "x.npz"), "-m", str(tmp_path / "v3.pt"), "-q", "500",
                 "-o", str(tmp_path / "z.tosc")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and len(err.splitlines()) == 1


def test_tosc_train_trains_codec_v3_by_default_and_resumes(tmp_path, capsys):
    """`tosc train` trains codec v3 (what tosc-sr runs); family settings or --lambda-p name the
    --codec to use in one line; --resume continues a finished run without a step more."""
    import json

    from tosc.checkpoint import load_checkpoint
    from tosc.cli import main

    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(dict(epochs=1, batch_size=16, train_images=32, **TINY)))
    out = tmp_path / "v3.pt"
    assert main(["train", "--out", str(out), "--config", str(config), "--device", "cpu", "--lambda-s", "0.05"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    ckpt = load_checkpoint(out, kind="codec")
    assert ckpt["arch"] == "conv-codec-v3" and ckpt["variant"] == "tosc-sr" and result["processes"] == 1
    assert ckpt["train_state"]["epoch"] == 1
    before = ckpt["state_dict"]["g_a.0.weight"].clone()
    assert main(["train", "--out", str(out), "--config", str(config), "--device", "cpu", "--lambda-s", "0.05",
                 "--resume"]) == 0
    assert torch.equal(load_checkpoint(out, kind="codec")["state_dict"]["g_a.0.weight"], before)
    # a warm start takes the source's shape unless a setting changes it
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps(dict(epochs=1, batch_size=16, train_images=32)))
    assert main(["train", "--out", str(tmp_path / "warm.pt"), "--config", str(plain), "--init-from", str(out),
                 "--device", "cpu"]) == 0
    warm = load_checkpoint(tmp_path / "warm.pt", kind="codec")
    assert warm["config"]["codec"]["width"] == TINY["width"] and warm["variant"] == "mse-only"
    capsys.readouterr()
    family = tmp_path / "family.json"
    family.write_text(json.dumps({"latent_dim": 16, "eval_images": 8}))
    for args, fragment in ((["--config", str(family)], "eval_images, latent_dim: setting(s) of --codec family"),
                           (["--lambda-p", "40"], "add --codec family"),
                           (["--codec", "family", "--config", str(config)], "setting(s) of --codec v3"),
                           (["--codec", "jscc", "--config", str(config)], "setting(s) of --codec v3")):
        assert main(["train", "--out", str(tmp_path / "x.pt"), *args]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and fragment in err[0], err
    assert not (tmp_path / "x.pt").exists()


def test_z_band_of_t_matches_the_coders_integer_band():
    from tosc.source_coding.learned.conv import quality_band

    q = np.arange(QUALITY_LEVELS)
    for bands in (1, 2, 3, 8, 16, QUALITY_LEVELS):
        model = ConvCodec(ConvCodecConfig(z_bands=bands, **TINY))
        assert (model.z_band(torch.from_numpy(q).float() / (QUALITY_LEVELS - 1)).numpy() == quality_band(q, bands)).all()
        assert quality_band(q, bands).max() == bands - 1 and quality_band(q, bands).min() == 0
    with pytest.raises(Exception):
        ConvCodec(ConvCodecConfig(z_bands=0, **TINY))


def _banded_codec(quality_code: str = "uniform", roll: int = 0) -> ConvLearnedCodec:
    """A tiny 4-band codec whose bands' z priors differ a lot (band b's density is shifted by
    3 (b + roll) mod 4 in its first layer); everything else is the same for every ``roll``."""
    torch.manual_seed(0)
    model = ConvCodec(ConvCodecConfig(z_bands=4, quality_code=quality_code, **TINY))
    with torch.no_grad():
        mz = TINY["hyper_channels"]
        for b in range(4):
            model.entropy_bottleneck._bias0[b * mz:(b + 1) * mz] += 3.0 * ((b + roll) % 4)
    return ConvLearnedCodec.from_trained(model.eval(), name="banded")


def test_each_quality_band_codes_z_with_its_own_prior(fashion_test_slice):
    """Coding with band b's prior instead of band b + 2's changes the streams by what the
    model's z likelihoods say: a coder that ignored the band would not change at all."""
    from tosc.source_coding.learned.conv import quality_band

    codec, rolled = _banded_codec(), _banded_codec(roll=2)
    images = fashion_test_slice.images[:16]
    model = codec.model
    for q in (5, 40, 70, 120):  # one per band
        band = int(quality_band(np.array([q]), 4)[0])
        t = torch.full((len(images),), q / (QUALITY_LEVELS - 1))
        with torch.no_grad():
            z = model.hyper_analysis(model.analysis(images, t)[0])
            own = -model.z_likelihoods(z, torch.full((len(images),), band)).log2().sum()
            other = -model.z_likelihoods(z, torch.full((len(images),), (band + 2) % 4)).log2().sum()
        assert abs(float(other - own)) > 40  # the bands really differ
        got = sum(map(stream_bits, rolled.encode(images, q))) - sum(map(stream_bits, codec.encode(images, q)))
        # (the tables are quantised and cover only the unshifted quantiles: not exact)
        assert abs(got - float(other - own)) < 0.2 * abs(float(other - own)) + 2 * len(images), (q, got, other - own)
    qs = np.array([0, 31, 32, 64, 95, 96, 127, 3] * 2)
    streams = codec.encode(images, qs)
    batch = codec.decode(streams, (28, 28))
    alone = torch.cat([codec.decode([s], (28, 28)) for s in streams])
    assert (batch - alone).abs().max() < 1e-5


def test_graded_quality_code_costs_less_at_low_quality(fashion_test_slice):
    images = fashion_test_slice.images[:24]
    uniform, graded = _banded_codec("uniform"), _banded_codec("graded")
    assert uniform.model_id != graded.model_id  # a file of one cannot be read by the other
    # (not at the top qualities: this untrained model escapes thousands of symbols there)
    for q, saving in ((0, 7 - 4.53), (64, 7 - 7.71)):
        diff = sum(map(stream_bits, uniform.encode(images, q))) - sum(map(stream_bits, graded.encode(images, q)))
        assert abs(diff - saving * len(images)) < 0.35 * abs(saving) * len(images) + 8, (q, diff)
        assert torch.equal(graded.decode(graded.encode(images, q), (28, 28)), uniform.decode(uniform.encode(images, q), (28, 28)))


def test_warm_start_widens_the_z_prior_band_by_band():
    from tosc.source_coding.learned.train_conv import _widen_z_prior

    torch.manual_seed(0)
    two = ConvCodec(ConvCodecConfig(z_bands=2, **TINY))
    with torch.no_grad():
        two.entropy_bottleneck._bias0[TINY["hyper_channels"]:] += 2.0
    eight = ConvCodec(ConvCodecConfig(z_bands=8, **TINY))
    state = _widen_z_prior(two.state_dict(), eight)
    tables = [k for k in state if k.startswith("entropy_bottleneck._") and state[k].numel() == 0]
    eight.load_state_dict({k: v for k, v in state.items() if k not in tables}, strict=False)
    z = torch.randn(3, TINY["hyper_channels"], 2, 2)
    with torch.no_grad():
        two.eval(), eight.eval()
        for b in range(8):
            band = torch.full((3,), b)
            assert torch.allclose(eight.z_likelihoods(z, band), two.z_likelihoods(z, band // 4))
    with pytest.raises(Exception):
        _widen_z_prior(two.state_dict(), ConvCodec(ConvCodecConfig(z_bands=3, **TINY)))


def test_warm_start_into_wider_transforms_keeps_the_function():
    from tosc.source_coding.learned.train_conv import _widen_transforms

    torch.manual_seed(0)
    narrow = ConvCodec(ConvCodecConfig(**TINY)).eval()
    wide = ConvCodec(ConvCodecConfig(**{**TINY, "width": 12})).eval()
    state = _widen_transforms(narrow.state_dict(), wide)
    tables = [k for k in state if k.startswith("entropy_bottleneck._") and state[k].numel() == 0]
    wide.load_state_dict({k: v for k, v in state.items() if k not in tables}, strict=False)
    x, t = torch.rand(3, 1, 28, 28), torch.tensor([0.0, 0.5, 1.0])
    with torch.no_grad():
        a, b = narrow(x, t), wide(x, t)
        assert torch.allclose(a["x_hat"], b["x_hat"], atol=1e-5)
        assert torch.allclose(a["bits_y"], b["bits_y"], rtol=1e-4)
        # and the new channels are alive: they compute something the next layer can learn to use
        assert wide.g_a[0](x)[:, 8:].abs().sum() > 0
    with pytest.raises(Exception):
        _widen_transforms(wide.state_dict(), narrow)


def test_warm_start_of_an_rgb_model_from_a_grey_one_codes_grey_images_alike():
    from tosc.source_coding.learned.train_conv import _colour_from_grey, _widen_transforms

    torch.manual_seed(0)
    grey = ConvCodec(ConvCodecConfig(**TINY)).eval()
    rgb = ConvCodec(ConvCodecConfig(**{**TINY, "in_channels": 3})).eval()
    state = _widen_transforms(_colour_from_grey(grey.state_dict(), rgb), rgb)
    tables = [k for k in state if k.startswith("entropy_bottleneck._") and state[k].numel() == 0]
    rgb.load_state_dict({k: v for k, v in state.items() if k not in tables}, strict=False)
    x, t = torch.rand(3, 1, 28, 28), torch.tensor([0.0, 0.5, 1.0])
    with torch.no_grad():
        a, b = grey(x, t), rgb(x.repeat(1, 3, 1, 1), t)
        assert torch.allclose(a["x_hat"].repeat(1, 3, 1, 1), b["x_hat"], atol=1e-5)
        assert torch.allclose(a["bits_y"], b["bits_y"], rtol=1e-4)
    own = rgb.state_dict()
    assert _colour_from_grey(own, rgb) is own  # an RGB state passes through untouched



@pytest.mark.parametrize("quality", [-5, -1, "above"])
def test_a_quality_index_out_of_range_is_a_damaged_stream(quality):
    """Bits flipped on the link (residual_ber 0.5) can decode to any quality index: one below 0
    used to select no entropy table and raise a bare ValueError from the entropy decoder."""
    codec = ConvLearnedCodec.load("mse-only-v3")
    if quality == "above":  # past the predictive mode's steps too
        quality = codec.quality_levels + 2
    stream = encode_batch(np.array([[quality]]), np.array([[codec._q_index]]), codec.tables)[0]
    with pytest.raises(CorruptFileError, match="quality index out of range"):
        codec.decode([stream + bytes(40)], (28, 28))


def test_warm_start_from_a_shipped_frozen_codec_with_an_ensemble_semantic_term(tiny_codec, tmp_path):
    """init_from may name a frozen zoo-format file (float16 weights, int8 integer network,
    Gaussian tables): training starts from its weights, here with a three-network semantic term."""
    from tosc.checkpoint import load_checkpoint
    from tosc.source_coding.learned import train_conv

    frozen = tmp_path / "frozen.pt"
    tiny_codec.save(frozen)
    cfg = train_conv.ConvTrainConfig(epochs=1, batch_size=16, train_images=16, lr=1e-12, final_lr=1e-12,
                                     init_from=str(frozen), lambda_s=0.03, semantic="kl",
                                     task="classifier-cnn+classifier-mlp-train+classifier-linear-train",
                                     context=tiny_codec.model.config.context, **TINY)
    train_conv.train_conv_codec(cfg, tmp_path / "ft.pt", progress=False)
    start = load_checkpoint(frozen, kind="codec")["state_dict"]
    after = load_checkpoint(tmp_path / "ft.pt", kind="codec")["state_dict"]
    for key in ("g_a.0.weight", "g_s.0.weight", "h_a.0.weight") + (("ctx.layers.0.weight",) if tiny_codec.model.ctx else ()):
        assert torch.allclose(after[key], start[key].float(), atol=1e-6), key


def test_warm_start_from_a_shipped_codec_that_carries_a_global_mode(tiny_codec, tmp_path):
    """The shipped checkpoints carry their global mode (trained on its own): a transform-mode
    fine-tune starts from the transform codec and leaves the global mode out."""
    from tosc.checkpoint import load_checkpoint
    from tosc.source_coding.learned import train_conv
    from tosc.source_coding.learned.compressai_adapter import freeze_factorized
    from tosc.source_coding.learned.global_mode import GlobalMode, GlobalModeConfig

    mode = GlobalMode(GlobalModeConfig(width=4, latent_dim=8, levels=4))
    freeze_factorized(mode.entropy_bottleneck)
    shipped = tmp_path / "shipped.pt"
    ConvLearnedCodec(tiny_codec.model, name="with-global", meta=tiny_codec.meta, global_mode=mode).save(shipped)
    assert any(k.startswith("global_mode.") for k in load_checkpoint(shipped, kind="codec")["state_dict"])
    cfg = train_conv.ConvTrainConfig(epochs=1, batch_size=16, train_images=16, lr=1e-12, final_lr=1e-12,
                                     init_from=str(shipped), context=tiny_codec.model.config.context, **TINY)
    train_conv.train_conv_codec(cfg, tmp_path / "ft.pt", progress=False)
    after = load_checkpoint(tmp_path / "ft.pt", kind="codec")["state_dict"]
    assert not any(k.startswith("global_mode.") for k in after)
    start = load_checkpoint(shipped, kind="codec")["state_dict"]
    assert torch.allclose(after["g_a.0.weight"], start["g_a.0.weight"].float(), atol=1e-6)


def test_checkerboard_context_corrects_only_the_non_anchors_from_the_anchors():
    model = _tiny_model("checkerboard")
    freeze_conv_codec(model)
    n, m, h, w = 3, TINY["latent_channels"], 7, 7
    torch.manual_seed(1)
    mean_num = torch.randint(-40, 40, (n, m, h, w))
    index = torch.randint(0, 64, (n, m, h, w))
    anchors = torch.randint(-6, 7, (n, m, h, w))
    mask = ConvCodec.anchor_mask((h, w)).bool().expand(n, m, h, w)
    assert mask[0, 0].sum() == 25  # (i + j) even on a 7 x 7 grid
    mean2, index2 = model.context_exact(anchors, mean_num, index)
    assert torch.equal(mean2[mask], mean_num[mask]) and torch.equal(index2[mask], index[mask])
    assert (mean2 != mean_num)[~mask].any() and (index2 != index)[~mask].any()
    assert index2.min() >= 0 and index2.max() <= 63
    # the non-anchors' symbols are not the context's input: changing them changes nothing
    noisy = anchors.clone()
    noisy[~mask] += 5
    assert all(torch.equal(a, b) for a, b in zip(model.context_exact(noisy, mean_num, index), (mean2, index2)))
    # an anchor's symbol changes its neighbours' tables
    moved = anchors.clone()
    moved[:, :, 2, 2] += 9
    assert not torch.equal(model.context_exact(moved, mean_num, index)[1], index2)
    # the training path computes the same integers (float32 with straight-through rounding)
    with torch.no_grad():
        mean_t, index_t = model.context_params(anchors.float(), mean_num.float(), index.float())
    assert (mean_t - mean2).abs().max() <= 1 and (index_t - index2).abs().max() <= 1
    assert (mean_t == mean2).float().mean() > 0.99


def test_checkerboard_stream_codes_the_anchors_first(fashion_test_slice):
    """The decoder can only build the non-anchors' tables once every anchor is read: the stream
    holds the anchors' symbols first, so truncating it after them still decodes the anchors."""
    codec = ConvLearnedCodec.from_trained(_tiny_model("checkerboard"))
    images = fashion_test_slice.images[:2]
    symbols, _ = codec._symbols(codec.latents(images)[0], np.array([90, 90]))
    m, (h, w) = TINY["latent_channels"], (7, 7)
    z_count = 1 + TINY["hyper_channels"] * 2 * 2
    order, anchor_count = codec._y_order((h, w))
    assert anchor_count == 25 * m
    assert sorted(order.tolist()) == list(range(m * h * w))
    flat_mask = ConvCodec.anchor_mask((h, w)).expand(1, m, h, w).reshape(-1).bool().numpy()
    assert flat_mask[order[:anchor_count]].all() and not flat_mask[order[anchor_count:]].any()
    assert symbols.shape[1] == z_count + m * h * w


def test_warm_start_adds_a_fresh_context_that_keeps_the_rate(tmp_path, fashion_test_slice):
    from tosc.checkpoint import save_checkpoint
    from tosc.source_coding.learned import train_conv

    plain = _tiny_model()
    save_checkpoint(tmp_path / "plain.pt", kind="codec", arch="conv-codec-v3", state_dict=plain.state_dict(),
                    config={"codec": plain.config.to_dict()})
    cfg = train_conv.ConvTrainConfig(epochs=1, batch_size=16, train_images=16, context="checkerboard",
                                     init_from=str(tmp_path / "plain.pt"), lr=1e-9, final_lr=1e-9, **TINY)
    train_conv.train_conv_codec(cfg, tmp_path / "cb.pt", progress=False)
    cb = ConvLearnedCodec.load(tmp_path / "cb.pt")
    assert cb.model.ctx is not None and cb.model.config.context == "checkerboard"
    before = ConvLearnedCodec.from_trained(plain)
    images = fashion_test_slice.images[:8]
    bits = [np.mean([stream_bits(s) for s in c.encode(images, 100)]) for c in (before, cb)]
    assert abs(bits[1] - bits[0]) < 0.02 * bits[0] + 16
    assert cb.decode(cb.encode(images, 100), (28, 28)).shape == images.shape
    with pytest.raises(ConfigError, match="context='causal'"):
        ConvCodec(ConvCodecConfig(context="causal", **TINY))


def test_large_batches_run_in_chunks_with_the_same_bytes_and_errors_name_the_callers_row(tiny_codec, monkeypatch):
    """The transform codec encodes and decodes 256 images at a time (faster: the arrays stay in
    the CPU caches); streams and images equal one whole-batch pass, and a damaged stream is named
    by its place in the caller's batch, not in its chunk."""
    from tosc.source_coding.learned import conv_codec

    images = torch.rand(300, 1, 28, 28)
    quality = np.arange(300) % 128
    streams = tiny_codec.encode(images, quality)
    decoded = tiny_codec.decode(streams, (28, 28))
    monkeypatch.setattr(conv_codec, "_CHUNK", 10**9)
    assert tiny_codec.encode(images, quality) == streams
    assert torch.equal(tiny_codec.decode(streams, (28, 28)), decoded)
    # a decoder of a subset of the streams (a chunk, or one mode's rows) names the caller's row
    cdfs, lengths, offsets = _gaussian_tables()
    dec = StreamDecoder([b"\x00" * 40] * 6 + [b"\xff" * 40], Tables(cdfs, lengths, offsets))
    with pytest.raises(CorruptFileError, match="^image 5:"):  # the subset's first row: "image 0" before
        dec.subset(np.array([5, 6])).decode(np.full((2, 5000), len(cdfs) - 1, dtype=np.int64))
