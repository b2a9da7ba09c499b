import subprocess
import sys
import textwrap

import pytest
import torch

from tosc.errors import CorruptFileError, DataError
from tosc.source_coding.learned import CodecConfig, LearnedCodec, TinyImageCodec, freeze_entropy_tables
from tosc.source_coding.learned.bitstream import unpack_file


def _codec(seed=0, latent_dim=24):
    torch.manual_seed(seed)
    model = TinyImageCodec(CodecConfig(width=8, latent_dim=latent_dim))
    freeze_entropy_tables(model)
    return LearnedCodec(model, name=f"test-{seed}")


@pytest.fixture(scope="module")
def codec():
    return _codec()


def test_streams_decode_to_the_encoder_symbols(codec, fashion_test_slice):
    images = fashion_test_slice.images[:16]
    streams = codec.encode(images)
    symbols, pad = codec.symbols(images)
    assert torch.equal(codec.decode_symbols(streams), symbols)
    assert codec.decode(streams).shape == images.shape


def test_file_round_trip_counts_every_byte(codec, fashion_test_slice):
    images = fashion_test_slice.images[:10]
    data = codec.encode_file(images)
    header, streams = unpack_file(data)
    assert header.shape == (1, 28, 28) and len(streams) == 10
    assert len(data) > sum(len(s) for s in streams)  # header, lengths and checksum are counted
    decoded = codec.decode_file(data)
    assert torch.equal(decoded, codec.decode(codec.encode(images)))
    assert decoded.min() >= 0 and decoded.max() <= 1


def test_smaller_images_are_padded_and_cropped(codec, fashion_test_slice):
    small = fashion_test_slice.images[:3, :, 2:25, 1:27]  # 23 x 26
    data = codec.encode_file(small)
    assert unpack_file(data)[0].padding == (1, 1, 2, 3)
    assert codec.decode_file(data).shape == small.shape


@pytest.mark.parametrize("images, message", [
    (torch.rand(2, 3, 28, 28), "1-channel images; got 3 channels"),
    (torch.rand(2, 1, 40, 28), "up to 28x28"),
    (torch.rand(28, 28), "N x C x H x W"),
    (torch.full((1, 1, 28, 28), 1.5), r"\[0, 1\]"),
])
def test_bad_images(codec, images, message):
    with pytest.raises(DataError, match=message):
        codec.encode_file(images)


def test_damaged_files_give_clear_errors(codec, fashion_test_slice):
    data = codec.encode_file(fashion_test_slice.images[:4])
    with pytest.raises(CorruptFileError, match="checksum"):
        codec.decode_file(data[:-10] + bytes([data[-10] ^ 1]) + data[-9:])
    with pytest.raises(CorruptFileError, match="truncated|checksum"):
        codec.decode_file(data[: len(data) // 2])
    with pytest.raises(CorruptFileError, match="bad magic"):
        codec.decode_file(b"PNG" + data[3:])
    with pytest.raises(CorruptFileError, match="not by"):
        _codec(seed=1).decode_file(data)


def test_decoding_is_bit_exact_in_another_process(codec, tmp_path, fashion_test_slice):
    path = tmp_path / "codec.pt"
    codec.save(path)
    images = fashion_test_slice.images[:8]
    data = codec.encode_file(images)
    (tmp_path / "x.tosc").write_bytes(data)
    expected = LearnedCodec.load(path).decode_file(data)
    script = textwrap.dedent(f"""
        import torch
        from tosc.source_coding.learned import LearnedCodec
        codec = LearnedCodec.load({str(path)!r})
        out = codec.decode_file(open({str(tmp_path / "x.tosc")!r}, "rb").read())
        torch.save(out, {str(tmp_path / "out.pt")!r})
        assert codec.encode_file(torch.load({str(tmp_path / "in.pt")!r})) == open({str(tmp_path / "x.tosc")!r}, "rb").read()
    """)
    torch.save(images, tmp_path / "in.pt")
    subprocess.run([sys.executable, "-c", script], check=True)
    assert torch.equal(torch.load(tmp_path / "out.pt"), expected)


def test_checkpoint_of_another_architecture(tmp_path):
    from tosc.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "task.pt", kind="task", arch="classifier-cnn", state_dict={}, config={})
    with pytest.raises(CorruptFileError, match="is a task checkpoint"):
        LearnedCodec.load(tmp_path / "task.pt")
    other = _codec(latent_dim=24)
    other.save(tmp_path / "c.pt")
    payload = torch.load(tmp_path / "c.pt", weights_only=True)
    payload["config"]["codec"]["latent_dim"] = 32
    torch.save(payload, tmp_path / "c.pt")
    with pytest.raises(CorruptFileError, match="do not fit this architecture"):
        LearnedCodec.load(tmp_path / "c.pt")
    (tmp_path / "junk.pt").write_bytes(b"\x00" * 100)
    with pytest.raises(CorruptFileError, match="not a readable checkpoint"):
        LearnedCodec.load(tmp_path / "junk.pt")


def test_a_shipped_family_model_decodes_8_bit_images_from_streams_and_files(fashion_test_slice):
    codec = LearnedCodec.load("mse-only-r3")
    images = fashion_test_slice.images[:6]
    decoded = codec.decode(codec.encode(images))
    assert torch.equal(decoded * 255, (decoded * 255).round())
    assert not torch.equal(decoded, decoded.round())  # not saturated, so the check above means something
    assert torch.equal(codec.decode_file(codec.encode_file(images)), decoded)
