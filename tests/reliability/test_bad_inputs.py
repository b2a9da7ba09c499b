"""Corrupt checkpoints and bad command lines: always one ``error:`` line and exit status 2.

Complements tests/test_cli.py (unknown dataset, usage errors, missing dataset root) and the
per-command tests (unknown system, zero CBR for transmit, unknown codec): here the checkpoint
given to ``tosc decode --model``, ``tosc encode --model``, ``tosc train --resume`` and the model
zoo is truncated, random, empty, or a pickle that would run code; and the inputs are missing,
of the wrong shape, or the rate cannot fit.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tosc.checkpoint import load_checkpoint
from tosc.cli import main
from tosc.errors import CorruptFileError
from tosc.io import save_image_arrays
from tosc.source_coding.learned import CodecConfig, LearnedCodec, TinyImageCodec, freeze_entropy_tables
from tosc.zoo import codec_path, task_path

SENTINEL = "tosc-reliability-pwned"


class _RunsCode:
    """Unpickling this runs a shell command (what a hostile checkpoint would do)."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


@pytest.fixture(scope="module")
def bad_checkpoints(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad")
    real = codec_path("tosc-sr-r1").read_bytes()
    files = {
        "truncated": real[: len(real) // 2],
        "random": np.random.default_rng(0).integers(0, 256, 4000, np.uint8).tobytes(),
        "empty": b"",
        "zip-header-only": real[:64],
    }
    paths = {}
    for name, data in files.items():
        paths[name] = folder / f"{name}.pt"
        paths[name].write_bytes(data)
    target = folder / SENTINEL
    paths["runs-code-torch"] = folder / "runs-code-torch.pt"
    torch.save({"format": "tosc-checkpoint", "kind": "codec", "payload": _RunsCode(target)}, paths["runs-code-torch"])
    paths["runs-code-pickle"] = folder / "runs-code-pickle.pt"
    paths["runs-code-pickle"].write_bytes(pickle.dumps(_RunsCode(target), protocol=2))
    paths["task-network"] = folder / "task.pt"
    paths["task-network"].write_bytes(task_path("classifier-cnn").read_bytes())
    return paths


def _one_error_line(capsys, *fragments: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for fragment in fragments:
        assert fragment in err, err
    return err


@pytest.fixture(scope="module")
def tosc_file(tmp_path_factory, fashion_test_slice) -> Path:
    folder = tmp_path_factory.mktemp("tosc")
    save_image_arrays(folder / "images.npz", fashion_test_slice.images[:2].numpy())
    assert main(["encode", str(folder / "images.npz"), "--model", "tosc-sr-r1", "-o", str(folder / "x.tosc")]) == 0
    return folder / "x.tosc"


KINDS = ["truncated", "random", "empty", "zip-header-only", "runs-code-torch", "runs-code-pickle", "task-network"]


@pytest.mark.parametrize("kind", KINDS)
def test_decode_encode_and_resume_refuse_bad_checkpoints(kind, bad_checkpoints, tosc_file, tmp_path, capsys):
    bad = bad_checkpoints[kind]
    expected = "expected codec" if kind == "task-network" else "not a readable checkpoint"
    assert main(["decode", str(tosc_file), "-o", str(tmp_path / "y.npz"), "--model", str(bad)]) == 2
    _one_error_line(capsys, str(bad), expected)
    npz = tosc_file.with_name("images.npz")
    assert main(["encode", str(npz), "--model", str(bad), "-o", str(tmp_path / "z.tosc")]) == 2
    _one_error_line(capsys, expected)
    resume = tmp_path / "resume.pt"
    resume.write_bytes(bad.read_bytes())
    assert main(["train", "--out", str(resume), "--resume", "--epochs", "1"]) == 2
    _one_error_line(capsys, expected)
    assert not (bad.parent / SENTINEL).exists(), "a checkpoint ran code"


def test_code_in_a_checkpoint_is_named_not_run(bad_checkpoints):
    for kind in ("runs-code-torch", "runs-code-pickle"):
        with pytest.raises(CorruptFileError, match=r"calls Python code \((posix|os)\.system\)"):
            load_checkpoint(bad_checkpoints[kind])
    assert not (bad_checkpoints["empty"].parent / SENTINEL).exists()


def test_damaged_zoo_files_are_reported_not_skipped_silently(bad_checkpoints, tmp_path, monkeypatch, capsys):
    from tosc.source_coding.learned.zoo import list_codecs

    (tmp_path / "codecs").mkdir()
    (tmp_path / "codecs" / "good.pt").write_bytes(codec_path("tosc-sr-r1").read_bytes())
    (tmp_path / "codecs" / "broken.pt").write_bytes(bad_checkpoints["truncated"].read_bytes())
    monkeypatch.setenv("TOSC_ZOO", str(tmp_path))
    with pytest.warns(UserWarning, match="broken.pt: not a readable checkpoint"):
        assert [e.name for e in list_codecs()] == ["good"]
    # asked for by name, the damaged model is an error that says what is wrong with it
    assert main(["encode", str(bad_checkpoints["empty"]), "--model", "broken", "-o", str(tmp_path / "x.tosc")]) == 2
    _one_error_line(capsys, "broken.pt: not a readable checkpoint")


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_checkpoints_load_or_raise_corrupt_file_error(small_checkpoint, tmp_path_factory, data):
    raw = bytearray(small_checkpoint.read_bytes())
    if data.draw(st.booleans(), label="truncate"):
        raw = raw[: data.draw(st.integers(0, len(raw) - 1), label="keep")]
    else:
        for _ in range(data.draw(st.integers(1, 8), label="n_edits")):
            raw[data.draw(st.integers(0, len(raw) - 1), label="at")] = data.draw(st.integers(0, 255), label="v")
    path = tmp_path_factory.mktemp("mutant") / "m.pt"
    path.write_bytes(bytes(raw))
    try:
        codec = LearnedCodec.load(path)
    except CorruptFileError:
        return
    # damage inside tensor data can load: decoding must still be clean or a clear error
    try:
        images = codec.decode([b"\x12\x34"])
    except CorruptFileError:
        return
    assert torch.isfinite(images).all()


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = TinyImageCodec(CodecConfig(width=4, latent_dim=8))
    freeze_entropy_tables(model)
    path = tmp_path_factory.mktemp("small") / "small.pt"
    LearnedCodec(model, name="small").save(path)
    return path


# ---- command lines that cannot work ---------------------------------------------------------

@pytest.fixture(scope="module")
def image_files(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    save_image_arrays(folder / "rgb.npz", rng.random((2, 3, 28, 28), dtype=np.float32))
    save_image_arrays(folder / "large.npz", rng.random((2, 1, 64, 64), dtype=np.float32))
    np.savez(folder / "five-d.npz", images=np.zeros((1, 1, 1, 28, 28), np.float32))
    np.savez(folder / "no-images.npz", x=np.zeros(3))
    np.savez(folder / "out-of-range.npz", images=np.full((1, 1, 28, 28), 3.0, np.float32))
    (folder / "not-an-npz.npz").write_bytes(b"garbage")
    (folder / "not-an-image.png").write_bytes(b"garbage")
    return folder


@pytest.mark.parametrize("name, fragment", [
    ("missing.npz", "no such file"),
    ("rgb.npz", "codes 1-channel images; {rgb} has 3 channels (codec v3 models for 3-channel images: "
                "mse-only-v3-scenes-rgb, tosc-sr-v3-scenes-rgb)"),
    ("large.npz", "up to 28x28; got 64x64"),
    ("five-d.npz", "N x C x H x W"),
    ("no-images.npz", "has no 'images' array"),
    ("out-of-range.npz", "lie in [0, 1]"),
    ("not-an-npz.npz", "not a readable .npz file"),
    ("not-an-image.png", "not a readable image"),
])
def test_encode_refuses_bad_images(name, fragment, image_files, tmp_path, capsys):
    assert main(["encode", str(image_files / name), "--model", "tosc-sr-r1", "-o", str(tmp_path / "x.tosc")]) == 2
    _one_error_line(capsys, fragment.format(rgb=image_files / "rgb.npz"))
    assert not (tmp_path / "x.tosc").exists()


@pytest.mark.parametrize("args, fragment", [
    (["decode", "{tmp}/missing.tosc", "-o", "{tmp}/y.npz"], "no such file"),
    (["decode", "{tosc}", "-o", "{tmp}/y.txt"], "must end in .npz or .png"),
    (["decode", "{tosc}", "-o", "{tmp}/y.png"], "write them to a .npz"),
    (["decode", "{tosc}", "-o", "{tmp}/y.npz", "--model", "tosc-sr-r2"], "not by tosc-sr-r2"),
    (["train", "--out", "{tmp}/t.pt", "--config", "{tmp}/missing.json"], "no such file"),
    (["train", "--out", "{tmp}/t.pt", "--init-from", "{tmp}/missing.pt"], "no such checkpoint"),
    (["transmit", "--system", "jpeg+ldpc", "--snr-db", "10", "--cbr", "1/1000", "--limit", "2", "--out", "{tmp}"],
     "< 1 channel use"),
    (["transmit", "--system", "jpeg+ldpc", "--snr-db", "nan", "--cbr", "1/8", "--limit", "2", "--out", "{tmp}"],
     "must be finite"),
    (["transmit", "--system", "jpeg+ldpc", "--snr-db", "10", "--cbr", "1/8", "--limit", "0", "--out", "{tmp}"],
     "limit must be positive"),
    (["evaluate", "--systems", "jpeg+ldpc", "--snr-db", "10", "--cbr", "0", "--limit", "2", "--out", "{tmp}"],
     "must be positive"),
    (["evaluate", "--systems", "no-such-system", "--snr-db", "10", "--cbr", "1/8", "--limit", "2", "--jobs", "1",
      "--out", "{tmp}"], "no-such-system"),
    (["evaluate", "--merge", "{tmp}/missing", "--out", "{tmp}"], "has no results.jsonl"),
])
def test_command_lines_that_cannot_work(args, fragment, tosc_file, tmp_path, capsys):
    args = [a.format(tmp=tmp_path, tosc=tosc_file) for a in args]
    assert main(args) == 2
    _one_error_line(capsys, fragment)


def test_a_rate_that_cannot_fit_is_a_counted_failure_not_an_error(tmp_path, capsys):
    """At 1 channel use per 784 pixels no codec fits: every image is the fallback, counted."""
    import json

    assert main(["transmit", "--system", "jpeg+ldpc", "--snr-db", "0", "--cbr", "1/784", "--limit", "2",
                 "--out", str(tmp_path)]) == 0
    metrics = json.loads((tmp_path / "result.json").read_text())["metrics"]
    assert metrics["did_not_fit_rate"] == 1.0 and metrics["failure_rate"] == 1.0
