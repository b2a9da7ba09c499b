"""Residual bit errors (flips after the channel decoder) against every registered system.

The residual-error mode (``residual_ber``) flips each delivered payload bit with that probability
after the LDPC decoder or the ideal link has declared it intact, as undetected errors would.
Every digital system must survive it: the run finishes, each image is either decoded (degraded)
or replaced by the fallback with ``ok`` False, and the failures are counted.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from tosc.cli import main
from tosc.systems import build_system, fallback_image, system_names
from tosc import registry

from .conftest import available_codecs

#: the systems that deliver bits (the others, Deep JSCC and friends, are analog)
DIGITAL = {name for name in registry.names("system") if registry.get("system", name).meta["link"] != "analog"}

N_IMAGES = 3
N_USES = 1568  # CBR 2 on 28 x 28: every source fits at 20 dB, so only the flips can hurt


def _buildable(name: str) -> None:
    if name not in DIGITAL:
        pytest.skip("an analog system: it delivers no bits to flip")
    if registry.get("system", name).meta["source"] == "vvc" and "vvc" not in available_codecs():
        pytest.skip("VVenC not built: run bash scripts/build_vvenc.sh")


def _check(tx, images: torch.Tensor) -> None:
    n = len(images)
    assert tx.received.shape == images.shape and torch.isfinite(tx.received).all()
    assert 0 <= tx.received.min() and tx.received.max() <= 1
    assert tx.ok.shape == tx.decode_errors.shape == (n,)
    assert not (tx.ok & tx.decode_errors).any(), "an image cannot both decode and be rejected"
    assert not (tx.ok & ~tx.fitted).any()
    fallback = fallback_image(tuple(images.shape[1:]))
    for i in np.flatnonzero(~tx.ok):
        assert torch.equal(tx.received[i], fallback), "a failed image must show the documented fallback"


def _for(name: str, images: torch.Tensor) -> torch.Tensor:
    """The grey test images, or the same in three equal channels for a system that codes colour."""
    from tosc.evaluation.compat import image_support

    return images.repeat(1, 3, 1, 1) if image_support(name).channels == 3 else images


@pytest.mark.parametrize("name", system_names())
def test_every_digital_system_survives_residual_bit_errors(name, fashion_test_slice):
    _buildable(name)
    images = _for(name, fashion_test_slice.images[:N_IMAGES])
    clean = build_system(name).transmit(images, snr_db=20.0, n_channel_uses=N_USES, seed=2)
    assert clean.ok.all() and "residual_bit_flips" not in clean.info
    # 2% flips, or more for short payloads (task-only streams are tens of bits), so that every
    # image gets a flip but with probability < 1e-4: the draws are per image, not lucky
    ber = min(0.5, max(0.02, math.log(1e4) / int(clean.payload_bits.min())))
    tx = build_system(name, residual_ber=ber).transmit(images, snr_db=20.0, n_channel_uses=N_USES, seed=2)
    _check(tx, images)
    assert tx.info["residual_ber"] == ber
    # the flips really happened (the test could not pass by sending clean bits)
    assert tx.info["images_with_residual_flips"] == N_IMAGES and tx.info["residual_bit_flips"] >= N_IMAGES
    # each image is either rejected by its decoder (counted) or decoded from the damaged bits
    assert (tx.ok | tx.decode_errors).all()
    damaged = [i for i in range(N_IMAGES) if tx.ok[i] and not torch.equal(tx.received[i], clean.received[i])]
    assert len(damaged) + int(tx.decode_errors.sum()) == N_IMAGES, "a flipped stream decoded to the clean image"


def test_residual_errors_are_counted_in_the_results_record(tmp_path, capsys):
    out = tmp_path / "tx"
    assert main(["transmit", "--system", "jpeg+ldpc", "--limit", "8", "--snr-db", "20", "--cbr", "2",
                 "--residual-ber", "0.01", "--out", str(out)]) == 0
    record = json.loads((out / "result.json").read_text())
    assert record["config"]["residual_ber"] == 0.01 and record["config"]["images_with_residual_flips"] > 0
    m = record["metrics"]
    # whole JPEG files with flipped bits: libjpeg rejects some (decode errors), the rest decode degraded
    assert m["failure_rate"] == pytest.approx(m["decode_error_rate"]) and m["decode_error_rate"] > 0
    assert m["psnr_db"] > 5
    assert "failures" in capsys.readouterr().out


@pytest.mark.parametrize("value", ["-0.1", "0.6", "nan"])
def test_cli_refuses_impossible_residual_rates(value, tmp_path, capsys):
    assert main(["transmit", "--system", "jpeg+ldpc", "--limit", "2", "--snr-db", "20", "--cbr", "2",
                 "--residual-ber", value, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "residual_ber" in err and err.count("\n") == 1


@pytest.mark.slow
@pytest.mark.parametrize("ber", [1e-3, 0.05, 0.5])
def test_every_digital_system_survives_residual_bit_errors_long(ber, fashion_test_slice):
    images = fashion_test_slice.images[:16]
    for name in sorted(DIGITAL):
        if registry.get("system", name).meta["source"] == "vvc" and "vvc" not in available_codecs():
            continue
        for snr_db, uses in ((20.0, N_USES), (8.0, 98)):
            tx = build_system(name, residual_ber=ber).transmit(_for(name, images), snr_db=snr_db,
                                                               n_channel_uses=uses, seed=5)
            _check(tx, _for(name, images))


def test_evaluate_with_residual_errors_keeps_its_points_apart(tmp_path):
    """`tosc evaluate --residual-ber`: recorded in each point's config, and a rerun of the same
    grid with another rate in the same folder adds points instead of skipping them."""
    from tosc.results import read_results

    args = ["evaluate", "--systems", "mse-only+ideal", "--snr-db", "20", "--cbr", "1", "--limit", "4", "--jobs", "1",
            "--out", str(tmp_path)]
    assert main([*args, "--residual-ber", "0.01"]) == 0
    assert main([*args, "--residual-ber", "0.01"]) == 0  # done: skipped
    assert main(args) == 0
    records = [r.to_dict() for r in read_results(tmp_path / "results.jsonl")]
    assert len(records) == 2
    flipped, clean = records
    assert flipped["config"]["residual_ber"] == 0.01 and flipped["config"]["images_with_residual_flips"] == 4
    assert "residual_ber" not in clean["config"] and clean["metrics"]["failure_rate"] == 0.0
    assert flipped["metrics"]["psnr_db"] < clean["metrics"]["psnr_db"]


def test_a_damaged_size_field_is_refused_before_decoding(fashion_test_slice, monkeypatch):
    """Found by the long fuzz: a JPEG 2000 file whose width field became 524316 (under the
    codecs' generic 4096 x 4096 limit) decoded a 28 x 524316 picture, 170 MB, from 300 bytes.
    A system knows the image size, so it refuses such a header without decoding."""
    from tosc.errors import CorruptFileError
    from tosc.source_coding.classic.jpeg2000 import parse_j2k
    from tosc.systems.digital import ClassicSource
    from tosc.channel import bits_from_bytes, bytes_from_bits

    source = ClassicSource("jpeg2000", "file", cache=None)
    images = fashion_test_slice.images[:1]
    bits = source.encode(images, budget_bits=8 * 2000).bits[0]
    data = bytearray(bytes_from_bits(bits))  # the whole file is what was sent
    data[8:12] = (0x0008001C).to_bytes(4, "big")  # Xsiz
    assert parse_j2k(bytes(data)).width == 0x0008001C
    called = []
    monkeypatch.setattr(source.codec, "_decode", lambda *a, **k: called.append(1))
    with pytest.raises(CorruptFileError, match="524316 pixels for a 28 x 28 image"):
        source.decode(bits_from_bytes(bytes(data)), (1, 28, 28))
    assert not called
    monkeypatch.undo()
    assert source.decode(bits, (1, 28, 28)).shape == (1, 28, 28)


def test_residual_errors_on_an_analog_system_are_refused(tmp_path, capsys):
    assert main(["transmit", "--system", "deep-jscc", "--limit", "2", "--snr-db", "10", "--cbr", "1/8",
                 "--residual-ber", "0.01", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "analog" in err and err.count("\n") == 1
