"""Fuzzing the receiving side: the .tosc decoder, the arithmetic decoder and every classic codec.

Contract under test: damaged or hostile bytes give :class:`CorruptFileError` (or, where the
format cannot tell, a finite image of the right layout); never another exception, a crash, a
hang, or an allocation sized by an absurd header field. The pure-Python parsers are fuzzed in
this process with hypothesis; the native decoders behind the classic codecs run in a
subprocess (``fuzz_worker.py``) so that a segfault or a hang is observed, not suffered.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tosc.errors import CorruptFileError
from tosc.source_coding import classic
from tosc.source_coding.classic import jpeg as jpeg_module
from tosc.source_coding.classic.vvc import _RbspReader, _split_nal_units
from tosc.source_coding.learned import LearnedCodec, arithmetic
from tosc.source_coding.learned.bitstream import MAGIC, FORMAT_VERSION, unpack_file, write_varint

from .conftest import available_codecs

WORKER = Path(__file__).with_name("fuzz_worker.py")
FAST = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def codec():
    return LearnedCodec.load("tosc-sr-r3")


@pytest.fixture(scope="module")
def tosc_file(codec, fashion_test_slice):
    return codec.encode_file(fashion_test_slice.images[:3])


def _with_crc(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


def _header(model_id: bytes, values: list[int]) -> bytes:
    return MAGIC + bytes([FORMAT_VERSION]) + model_id + b"".join(write_varint(v) for v in values)


def _check_images(images: torch.Tensor, shape: tuple[int, ...]) -> None:
    assert images.dtype == torch.float32 and tuple(images.shape[1:]) == shape
    assert torch.isfinite(images).all() and images.min() >= 0 and images.max() <= 1


# ---- .tosc files and the arithmetic decoder ---------------------------------------------------

@FAST
@given(data=st.binary(max_size=300))
def test_random_bytes_are_not_a_tosc_file(codec, data):
    with pytest.raises(CorruptFileError):
        codec.decode_file(data)
    with pytest.raises(CorruptFileError):
        codec.decode_file(MAGIC + data)


@FAST
@given(data=st.data())
def test_mutated_tosc_files_are_refused_or_decode(codec, tosc_file, data):
    """Mutations with the CRC left stale are caught by it; with the CRC recomputed (a forger, or
    damage before the checksum was written) the structure checks and the decoder take over."""
    body = bytearray(tosc_file[:-4])
    for _ in range(data.draw(st.integers(1, 4), label="n_edits")):
        at = data.draw(st.integers(0, len(body) - 1), label="at")
        kind = data.draw(st.sampled_from(["flip", "byte", "cut", "insert"]), label="kind")
        if kind == "flip":
            body[at] ^= 1 << data.draw(st.integers(0, 7))
        elif kind == "byte":
            body[at] = data.draw(st.sampled_from([0x00, 0x7F, 0x80, 0xFF]))
        elif kind == "cut":
            del body[at:at + data.draw(st.integers(1, 8))]
        else:
            body[at:at] = data.draw(st.binary(min_size=1, max_size=8))
    if bytes(body) == tosc_file[:-4]:
        return
    with pytest.raises(CorruptFileError):
        codec.decode_file(bytes(body) + tosc_file[-4:])
    try:
        images = codec.decode_file(_with_crc(bytes(body)))
    except CorruptFileError:
        return
    _check_images(images, (1, 28, 28))


@FAST
@given(stream=st.binary(max_size=200))
def test_any_stream_decodes_to_a_finite_image_or_an_error(codec, stream):
    """What a link hands over after residual bit errors: any bytes at all."""
    _decodes_or_refuses(codec, stream)


def _decodes_or_refuses(codec, stream: bytes) -> None:
    try:
        images = codec.decode([stream])
    except CorruptFileError:
        return
    _check_images(images, (1, 28, 28))


@pytest.mark.parametrize("magnitude", [2**30, 2**38])
def test_huge_escaped_latents_never_give_nan_images(codec, magnitude):
    """A well-formed stream whose escape codes carry absurd latent values (found by fuzzing:
    2**38 overflowed the synthesis to NaN, which clamp() does not remove)."""
    stream = arithmetic.encode([magnitude] * codec.config.latent_dim, codec._indexes, codec._cdfs,
                               codec._lengths, codec._offsets)
    try:
        images = codec.decode([stream])
    except CorruptFileError as exc:
        assert "outside the model's range" in str(exc)
        return
    _check_images(images, (1, 28, 28))


@pytest.mark.parametrize("values, message", [
    ([1, 28, 28, 0, 0, 0, 0, 2**31], "implausible .tosc header"),  # 2^31 images
    ([1, 65535, 65535, 0, 0, 0, 0, 1], "implausible .tosc header"),  # a 65535 x 65535 image
    ([1, 2**62, 28, 0, 0, 0, 0, 1], "implausible .tosc header"),
    ([3, 28, 28, 0, 0, 0, 0, 1], "geometry"),  # channels the model does not have
    ([1, 16000, 16000, 0, 0, 0, 0, 1], "decodes at most 28x28"),
    ([1, 28, 28, 0, 0, 0, 0, 2**24], "truncated"),  # a count the file cannot hold
])
def test_absurd_headers_are_refused_before_allocating(codec, values, message):
    """The checks run before any buffer sized by the header exists: Python allocations while
    refusing stay under 64 KiB (tracemalloc), whatever size or count the header claims."""
    data = _with_crc(_header(codec.model_id, values) + b"\x01\x05")
    tracemalloc.start()
    try:
        with pytest.raises(CorruptFileError, match=message):
            codec.decode_file(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024, peak


def test_unpack_rejects_trailing_and_missing_bytes(tosc_file):
    body = tosc_file[:-4]
    for bad in (body + b"\x00", body[:-1]):
        with pytest.raises(CorruptFileError):
            unpack_file(_with_crc(bad))


# ---- classic codecs: the container parsers (pure Python) in-process -------------------------

@pytest.fixture(scope="module")
def classic_seeds(fashion_test_slice):
    return {name: classic.get_codec(name).encode(fashion_test_slice.images[0], 30) for name in available_codecs()}


@FAST
@given(data=st.data())
def test_container_parsers_refuse_or_return_sane_ranges(classic_seeds, data):
    name = data.draw(st.sampled_from(sorted(classic_seeds)), label="codec")
    codec = classic.get_codec(name)
    good = classic_seeds[name]
    if data.draw(st.booleans(), label="random"):
        case = data.draw(st.binary(max_size=2 * len(good)), label="bytes")
    else:
        case = bytearray(good)
        for _ in range(data.draw(st.integers(1, 6), label="n_edits")):
            at = data.draw(st.integers(0, len(case) - 1), label="at")
            case[at] = data.draw(st.integers(0, 255), label="value")
        case = bytes(case[: data.draw(st.integers(0, len(case)), label="keep")])
    try:
        parsed = codec.parse(case)
    except CorruptFileError:
        return
    assert all(0 <= a <= b <= len(case) for a, b in parsed.payload)
    assert parsed.height >= 0 and parsed.width >= 0


def _set_u32(data: bytes, at: int, value: int, order: str = "big") -> bytes:
    return data[:at] + value.to_bytes(4, order) + data[at + 4:]


def _huge_jpeg(data: bytes) -> bytes:
    sof = next(i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] in jpeg_module._SOF_MARKERS)
    return data[:sof + 5] + b"\xff\xff\xff\xff" + data[sof + 9:]


def _huge_webp(data: bytes) -> bytes:
    start = data.index(b"VP8 ") + 8
    return data[:start + 6] + b"\xff\x3f\xff\x3f" + data[start + 10:]  # 16383 x 16383


def _huge_j2k(data: bytes) -> bytes:
    return _set_u32(_set_u32(data, 8, 65535), 12, 65535)  # Xsiz, Ysiz


def _huge_isobmff(data: bytes) -> bytes:
    at = data.index(b"ispe") + 8
    return _set_u32(_set_u32(data, at, 65535), at + 4, 65535)


def _bits_lsb(data: bytes) -> list[int]:
    return [(byte >> i) & 1 for byte in data for i in range(8)]


def _bytes_lsb(bits: list[int]) -> bytes:
    bits = bits + [0] * (-len(bits) % 8)
    return bytes(sum(bits[i + j] << j for j in range(8)) for i in range(0, len(bits), 8))


def _huge_jxl(data: bytes) -> bytes:
    """Rewrite the SizeHeader (LSB-first bits after FF0A) as 2^20 x 512, 32 bits longer than
    the original 15-bit one (28 x 28: div8=0, selector 0, 9 bits, ratio 1), so everything after
    it stays byte-aligned."""
    bits = _bits_lsb(data[2:])
    assert bits[0] == 0 and bits[1:3] == [0, 0], "expected a 9-bit height"
    old = 1 + 2 + 9 + 3
    new = [0, 1, 1] + _bits_lsb(((1 << 20) - 1).to_bytes(4, "little"))[:30] + [0, 0, 0]  # height 2^20, ratio 0
    new += [0, 0] + _bits_lsb((512 - 1).to_bytes(2, "little"))[:9]  # width 512
    assert len(new) - old == 32
    return data[:2] + _bytes_lsb(new + bits[old:])


def _huge_vvc(data: bytes) -> bytes:
    """Re-encode the SPS with sps_pic_{width,height}_max_in_luma_samples = 65535."""
    start, end = next((s, e) for s, e in _split_nal_units(data) if data[s + 1] >> 3 == 15)
    reader = _RbspReader(data[start + 2:end])
    rbsp = reader.data
    # walk to the width exactly as the parser does, remembering where it starts
    reader.u(8)
    sub = reader.u(3)
    reader.u(4)
    if reader.u(1):
        reader.u(18)
        assert reader.u(1) == 0
        reader.align()
        present = [reader.u(1) for _ in range(sub)]
        reader.align()
        reader.u(8 * sum(present))
        reader.u(32 * reader.u(8))
    reader.u(1)
    if reader.u(1):
        reader.u(1)
    before = reader.pos
    reader.ue(), reader.ue()
    after = reader.pos
    bits = [(rbsp[i >> 3] >> (7 - (i & 7))) & 1 for i in range(8 * len(rbsp))]

    def ue(v: int) -> list[int]:
        code = bin(v + 1)[2:]
        return [0] * (len(code) - 1) + [int(c) for c in code]

    new = bits[:before] + ue(65535) + ue(65535) + bits[after:]
    while new and new[-1] == 0:  # drop the old trailing bits and write new rbsp_trailing_bits
        new.pop()
    new = new + [0] * (-len(new) % 8)
    payload = bytes(int("".join(map(str, new[i:i + 8])), 2) for i in range(0, len(new), 8))
    payload = payload.replace(b"\x00\x00", b"\x00\x00\x03")  # emulation prevention (sufficient here)
    return data[:start + 2] + payload + data[end:]


HUGE = {"jpeg": _huge_jpeg, "jpeg-optimized": _huge_jpeg, "webp": _huge_webp, "jpeg2000": _huge_j2k,
        "heif": _huge_isobmff, "avif": _huge_isobmff, "jpegxl": _huge_jxl, "vvc": _huge_vvc}


def test_every_codec_has_an_absurd_size_case():
    assert sorted(HUGE) == sorted(classic.codec_names())


def test_absurd_picture_sizes_never_reach_the_library(codec_name_available, gray_image, monkeypatch):
    """A size field set to tens of thousands of pixels a side: refused by the container parser
    before the native decoder could allocate the picture."""
    codec = classic.get_codec(codec_name_available)
    good = codec.encode(gray_image, (codec.quality_min + codec.quality_max) // 2)
    huge = HUGE[codec.name](good)
    called = []
    monkeypatch.setattr(codec, "_decode", lambda *a, **k: called.append(1))
    with pytest.raises(CorruptFileError) as info:
        codec.decode(huge)
    assert not called, f"{codec.name}: the library was handed a {len(huge)}-byte file with an absurd size"
    if codec.name != "jpegxl":  # the JPEG XL parser may stop earlier, at a TOC the file cannot hold
        assert "decoder limit" in str(info.value), str(info.value)


# ---- classic codecs: the native decoders, in a subprocess -----------------------------------

def _run_worker(names: list[str], cases: int, seed: int, tmp_path: Path, timeout_s: float) -> dict:
    """Fuzz ``names`` in one subprocess; a crash or hang fails with the codec and the input."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    out = tmp_path / "fuzz"

    def last_input() -> str:
        codec = (out / "current.codec").read_text() if (out / "current.codec").exists() else "?"
        case = (out / "current.bin").read_bytes().hex() if (out / "current.bin").exists() else "?"
        return f"codec {codec}, last input {case[:400]}"

    try:
        proc = subprocess.run([sys.executable, str(WORKER), ",".join(names), str(cases), str(seed), str(out)],
                              capture_output=True, text=True, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail(f"a decoder hung (> {timeout_s} s): {last_input()}")
    if proc.returncode != 0:
        pytest.fail(f"fuzz process ended with status {proc.returncode} ({proc.stderr.strip()[-800:]}): {last_input()}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_native_decoders_survive_mutated_files(tmp_path):
    """120 mutated files per codec, in a separate process: no crash, no hang, no error other
    than CorruptFileError, memory flat."""
    results = _run_worker(list(available_codecs()), 120, seed=3, tmp_path=tmp_path, timeout_s=120)
    for name, r in results.items():
        assert r["decoded"] + r["corrupt"] == 120, (name, r)
        assert r["corrupt"] > 0, f"{name}: no mutation was refused; the fuzzer is not reaching the checks"
        assert r["memory_growth_mib"] < 256, (name, r)
        assert r["slowest_s"] < 5, (name, r)


@pytest.mark.slow
def test_native_decoders_survive_mutated_files_long(tmp_path):
    results = _run_worker(list(available_codecs()), 4000, seed=11, tmp_path=tmp_path, timeout_s=1800)
    for name, r in results.items():
        assert r["decoded"] + r["corrupt"] == 4000, (name, r)
        assert r["memory_growth_mib"] < 512, (name, r)
        assert r["slowest_s"] < 10, (name, r)


@pytest.mark.slow
@settings(max_examples=3000, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(stream=st.binary(max_size=400))
def test_any_stream_decodes_long(codec, stream):
    _decodes_or_refuses(codec, stream)
