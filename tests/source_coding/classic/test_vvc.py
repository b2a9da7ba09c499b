"""VVC: the VVenC build script, finding the encoder, and real encode/decode round trips."""

import os
import subprocess
import time
from pathlib import Path

import pytest
import torch

from tosc.errors import DataError, DependencyMissingError
from tosc.source_coding import classic
from tosc.source_coding.classic.survey import psnr_db

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "scripts" / "build_vvenc.sh"


def test_round_trip_at_two_qps(require_vvc, gray_image):
    codec = classic.get_codec("vvc")
    coarse, fine = codec.encode_qp(gray_image, 37), codec.encode_qp(gray_image, 22)
    assert len(fine) > len(coarse) and codec.payload_bytes(fine) > codec.payload_bytes(coarse)
    decoded_coarse = codec.decode(coarse, channels=1)
    decoded_fine = codec.decode(fine, channels=1)
    assert decoded_fine.shape == decoded_coarse.shape == (1, 28, 28)  # conformance window crops 32 -> 28
    psnr_coarse, psnr_fine = psnr_db(decoded_coarse, gray_image), psnr_db(decoded_fine, gray_image)
    assert psnr_fine > psnr_coarse + 3.0 and psnr_coarse > 20.0, (psnr_coarse, psnr_fine)


def test_colour_round_trip(require_vvc, rgb_image):
    codec = classic.get_codec("vvc")
    data = codec.encode_qp(rgb_image, 22)
    decoded = codec.decode(data)
    assert decoded.shape == (3, 32, 32)
    assert psnr_db(decoded, rgb_image) > 25.0
    # the gray path (Y plane) and the colour path (via RGB) agree on a gray picture
    gray = classic.get_codec("vvc").encode_qp(rgb_image.mean(0, keepdim=True), 22)
    y_plane, via_rgb = codec.decode(gray, channels=1), codec.decode(gray, channels=3)
    assert torch.allclose(via_rgb.mean(0, keepdim=True), y_plane, atol=2 / 255)


def test_parameter_sets_are_image_independent(require_vvc, fashion8):
    """Payload excludes only VPS/SPS/PPS, which do not depend on the picture."""
    codec = classic.get_codec("vvc")
    a, b = (codec.encode_qp(image, 30) for image in fashion8[:2])
    ranges_a, ranges_b = codec.payload_ranges(a), codec.payload_ranges(b)
    assert a[: ranges_a[0][0]] == b[: ranges_b[0][0]]  # everything before the first slice
    assert codec.payload(a) != codec.payload(b)
    assert all(a[start + 1] >> 3 < 12 for start, _ in ranges_a)  # VCL NAL units only, here


def test_odd_sizes_are_refused(require_vvc):
    with pytest.raises(DataError, match="even"):
        classic.get_codec("vvc").encode(torch.rand(1, 27, 28), 30)


def test_missing_encoder_names_the_setup_step(monkeypatch, tmp_path, gray_image):
    monkeypatch.delenv("TOSC_VVENCAPP", raising=False)
    monkeypatch.setenv("TOSC_CACHE_DIR", str(tmp_path))
    with pytest.raises(DependencyMissingError, match="bash scripts/build_vvenc.sh"):
        classic.find_vvencapp()
    with pytest.raises(DependencyMissingError, match="bash scripts/build_vvenc.sh"):
        classic.get_codec("vvc").encode(gray_image, 30)
    monkeypatch.setenv("TOSC_VVENCAPP", str(tmp_path / "nowhere"))
    with pytest.raises(DependencyMissingError, match="TOSC_VVENCAPP"):
        classic.find_vvencapp()


def test_build_script_is_a_fast_no_op_when_built(require_vvc):
    env = {k: v for k, v in os.environ.items() if k != "TOSC_VVENCAPP"}
    start = time.monotonic()
    done = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - start < 10
    assert Path(done.stdout.strip()) == classic.find_vvencapp()


@pytest.mark.parametrize("content", [None, b"not the vvenc tarball"])
def test_build_script_checks_the_tarball(tmp_path, content):
    tarball = tmp_path / "vvenc-1.9.1.tar.gz"
    if content is not None:
        tarball.write_bytes(content)
    env = dict(os.environ, TOSC_CACHE_DIR=str(tmp_path / "cache"), TOSC_VVENC_TARBALL=str(tarball))
    done = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 2
    assert ("not found" if content is None else "sha256") in done.stderr
    assert not (tmp_path / "cache" / f"vvenc-{classic.vvc.VVENC_SHA256[:16]}").exists()


def test_payload_with_an_alf_parameter_set_is_rebuilt_and_sent(require_vvc):
    """Where VVenC writes an adaptation parameter set before the slice (ALF on textured colour
    images), the payload holds both units and the start code between them, so the receiver
    rebuilds the file from the template (which has no such set) and the payload alone."""
    from tosc.source_coding.classic.vvc import _split_nal_units
    from tosc.systems.digital import ClassicSource

    codec = classic.get_codec("vvc")
    image = torch.rand(3, 48, 64, generator=torch.Generator().manual_seed(0))
    files = {q: codec.encode(image, q) for q in range(14, 26)}
    qualities = [q for q, f in files.items() if 17 in [f[s + 1] >> 3 for s, _ in _split_nal_units(f)]]
    assert qualities, "no file with an adaptation parameter set: the case is not exercised"
    sender, receiver = ClassicSource("vvc", "payload", cache=None), ClassicSource("vvc", "payload", cache=None)
    for q in qualities:
        assert codec.rebuild_file(codec.template(q, (3, 48, 64)), codec.payload(files[q])) == files[q]
    payload_bytes = codec.payload_bytes(files[qualities[0]])
    (bits,) = sender.encode(image[None], codec.quality_index_bits + 8 * payload_bytes).bits
    match = classic.match_rate(codec, image, payload_bytes, "payload")
    assert bits is not None and len(bits) == codec.quality_index_bits + 8 * match.payload_bytes
    assert torch.equal(receiver.decode(bits, (3, 48, 64)), codec.decode(match.bitstream))
