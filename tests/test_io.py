import json
import os
import signal
import stat
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tosc.errors import CorruptFileError, DataError
from tosc.io import append_jsonl, atomic_write_bytes, load_image_arrays, read_jsonl, save_image_arrays


def test_atomic_write_never_leaves_half_a_file(tmp_path):
    target = tmp_path / "out.bin"
    atomic_write_bytes(target, b"old")
    # a writer killed mid-write leaves the old content and no temp file visible under the name
    script = textwrap.dedent(f"""
        import os, time
        from tosc.io import atomic_write
        with atomic_write({str(target)!r}) as f:
            f.write(b"new" * 1000)
            f.flush()
            print("writing", flush=True)
            time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert target.read_bytes() == b"old"


def test_failed_write_removes_temp_file(tmp_path):
    from tosc.io import atomic_write

    with pytest.raises(RuntimeError):
        with atomic_write(tmp_path / "x.json", "w") as handle:
            handle.write("{")
            raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []


def test_jsonl_append_and_corruption(tmp_path):
    path = tmp_path / "results.jsonl"
    append_jsonl(path, {"a": 1})
    append_jsonl(path, {"a": 2})
    assert [r["a"] for r in read_jsonl(path)] == [1, 2]
    path.write_text(path.read_text() + '{"a": 3')  # a cut-off last line (a non-atomic writer)
    with pytest.warns(UserWarning, match="cut-off last line"):
        assert [r["a"] for r in read_jsonl(path)] == [1, 2]
    with pytest.warns(UserWarning, match="cut-off last line"):
        append_jsonl(path, {"a": 4})
    assert [r["a"] for r in read_jsonl(path)] == [1, 2, 4]
    path.write_text('{"a": 1}\n{"a": \n{"a": 3}\n')  # damage in the middle is never skipped
    with pytest.raises(CorruptFileError, match=":2: not valid JSON"):
        read_jsonl(path)


def test_image_npz_contract(tmp_path, fashion_test_slice):
    images = fashion_test_slice.images[:5].numpy()
    path = tmp_path / "received.npz"
    save_image_arrays(path, images, fashion_test_slice.labels[:5].numpy(), np.arange(10, 15),
                      ok=[True, True, False, True, True], payload_bits=[8, 16, 24, 8, 0])
    loaded = load_image_arrays(path)
    assert loaded["images"].dtype == np.float32 and loaded["images"].shape == (5, 1, 28, 28)
    np.testing.assert_array_equal(loaded["images"], images)
    assert loaded["indices"].tolist() == [10, 11, 12, 13, 14]
    assert loaded["ok"].tolist() == [True, True, False, True, True]
    # uint8 N x H x W input is accepted and normalised
    np.savez(tmp_path / "u8.npz", images=(images[:, 0] * 255).round().astype(np.uint8))
    u8 = load_image_arrays(tmp_path / "u8.npz")
    assert u8["images"].shape == (5, 1, 28, 28) and u8["labels"].tolist() == [-1] * 5
    np.testing.assert_allclose(u8["images"], images, atol=1 / 255)


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"images": np.zeros((2, 5, 8, 8), np.float32)}, "1 or 3 channels"),
        ({"images": np.full((2, 1, 8, 8), 2.0, np.float32)}, r"\[0, 1\]"),
        ({"images": np.zeros((2, 8), np.float32)}, "N x C x H x W"),
        ({"labels": np.zeros(2)}, "no 'images'"),
        ({"images": np.zeros((2, 1, 8, 8), np.float32), "labels": np.zeros(3)}, "labels must have shape"),
    ],
)
def test_bad_image_arrays(tmp_path, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError, match=message):
        load_image_arrays(tmp_path / "bad.npz")


def test_truncated_npz(tmp_path, fashion_test_slice):
    path = tmp_path / "x.npz"
    save_image_arrays(path, fashion_test_slice.images[:3].numpy())
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CorruptFileError):
        load_image_arrays(path)


# ---- output locations (issue 21) ------------------------------------------------------------

def test_check_output_file_refuses_what_must_not_be_replaced(tmp_path):
    from tosc.errors import OutputPathError
    from tosc.io import atomic_write_bytes, check_output_file

    folder = tmp_path / "folder"
    folder.mkdir()
    a_file = tmp_path / "a-file"
    a_file.write_bytes(b"x")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    protected = tmp_path / "protected"
    protected.write_bytes(b"keep")
    protected.chmod(0o444)
    cases = {folder: "is a folder", "/dev/null": "character device", "/dev/full": "character device",
             fifo: "FIFO", protected: "read-only", a_file / "x": "is a file", "/proc/x": "/proc",
             tmp_path / "x.txt": "must end in .npz"}
    for path, fragment in cases.items():
        with pytest.raises(OutputPathError, match=fragment.replace(".", r"\.")):
            check_output_file(path, suffixes=(".npz",) if str(path).endswith(".txt") else None)
    with pytest.raises(OutputPathError, match="also the input"):
        check_output_file(a_file, inputs=(None, tmp_path / "missing", a_file))
    # the last line of defence: atomic writes never swap a device or FIFO for a regular file
    for path in ("/dev/null", fifo):
        with pytest.raises(OutputPathError):
            atomic_write_bytes(path, b"data")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and protected.read_bytes() == b"keep"
    # a missing parent is fine (writing creates it) and checking leaves nothing behind
    assert check_output_file(tmp_path / "new" / "dir" / "x.npz", suffixes=(".npz",)).name == "x.npz"
    assert not (tmp_path / "new").exists()


def test_check_output_dir(tmp_path):
    from tosc.errors import OutputPathError
    from tosc.io import check_output_dir

    a_file = tmp_path / "a-file"
    a_file.write_bytes(b"x")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "result.json").mkdir()  # a folder where a file will be written
    for path, files, fragment in ((a_file, (), "expected a folder"), (a_file / "sub", (), "is a file"),
                                  ("/proc/tosc-x", (), "/proc"), (tmp_path / "out", ("result.json",), "is a folder")):
        with pytest.raises(OutputPathError, match=fragment):
            check_output_dir(path, files=files)
    assert check_output_dir(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert not (tmp_path / "a").exists() and not list((tmp_path / "out").glob(".tosc-probe*"))


def test_full_disk_is_an_error_line_not_a_traceback(tmp_path):
    """ENOSPC while writing (here: the write itself fails) becomes OutputPathError."""
    from tosc.errors import OutputPathError
    from tosc.io import atomic_write

    with pytest.raises(OutputPathError, match="No space left"):
        with atomic_write(tmp_path / "x.bin") as handle:
            raise OSError(28, "No space left on device")
    assert list(tmp_path.iterdir()) == []


def _append_many(path: str, start: int, count: int) -> None:
    from tosc.io import append_jsonl

    for i in range(start, start + count):
        append_jsonl(path, {"i": i})
        append_jsonl(path, {"i": i}, unique_key=lambda r: r["i"])  # a duplicate: not appended


def test_concurrent_appends_lose_and_double_nothing(tmp_path):
    import multiprocessing

    path = str(tmp_path / "results.jsonl")
    context = multiprocessing.get_context("fork")
    procs = [context.Process(target=_append_many, args=(path, 100 * k, 40)) for k in range(4)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    values = [r["i"] for r in read_jsonl(path)]
    assert sorted(values) == sorted(100 * k + i for k in range(4) for i in range(40))


# --- image files: every Pillow mode reaches 8-bit levels by scaling, never by clipping -----------

def _camera_levels():
    import skimage.data

    return skimage.data.camera()[::8, ::8]  # a real 64 x 64 grey photograph, uint8


@pytest.mark.parametrize("kind", ["png16", "tiff-int32", "tiff-float", "grey-palette", "grey-alpha", "bilevel"])
def test_deep_and_unusual_grey_files_read_as_their_8_bit_levels(tmp_path, kind):
    from PIL import Image

    from tosc.io import image_levels, is_grey_image, open_image

    levels = _camera_levels()
    path = tmp_path / ("x.png" if kind in ("png16", "grey-palette", "grey-alpha", "bilevel") else "x.tiff")
    if kind == "png16":  # 16-bit: Pillow's convert("L") would clip all but the darkest pixels to 255
        Image.fromarray(levels.astype(np.uint16) * 257).save(path)
    elif kind == "tiff-int32":
        Image.fromarray(levels.astype(np.int32) * 257, mode="I").save(path)
    elif kind == "tiff-float":
        Image.fromarray(levels.astype(np.float32) / 255).save(path)
    elif kind == "grey-palette":
        Image.fromarray(levels).convert("RGB").quantize(colors=256).save(path)
        levels = np.asarray(Image.open(path).convert("L"))  # the palette may merge levels
    elif kind == "grey-alpha":
        Image.fromarray(np.stack([levels, np.full_like(levels, 128)], axis=2), mode="LA").save(path)
    else:
        levels = np.where(levels > 127, 255, 0).astype(np.uint8)
        Image.fromarray(levels > 127).save(path)
    image = open_image(path)
    assert is_grey_image(image), image.mode
    got = image_levels(image, path)
    assert got.dtype == np.uint8 and got.shape == levels.shape
    np.testing.assert_array_equal(got, levels)


def test_colour_files_keep_three_channels_and_drop_alpha(tmp_path):
    import skimage.data
    from PIL import Image

    from tosc.io import image_levels, is_grey_image, open_image

    rgb = skimage.data.astronaut()[::8, ::8]
    Image.fromarray(np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 7, np.uint8)], axis=2), "RGBA").save(tmp_path / "a.png")
    image = open_image(tmp_path / "a.png")
    assert not is_grey_image(image)
    np.testing.assert_array_equal(image_levels(image), rgb)
    np.testing.assert_array_equal(image_levels(image, grey=True), np.asarray(Image.fromarray(rgb).convert("L")))


@pytest.mark.parametrize("values, match", [(np.full((8, 8), 1.5, np.float32), r"float pixels must lie in \[0, 1\]"),
                                           (np.full((8, 8), np.nan, np.float32), "float pixels"),
                                           (np.full((8, 8), 70000, np.int32), "integer pixels must lie in 0..65535")])
def test_pixels_outside_the_modes_range_are_refused(tmp_path, values, match):
    from PIL import Image

    from tosc.io import image_levels, open_image

    Image.fromarray(values).save(tmp_path / "x.tiff")
    with pytest.raises(DataError, match=match):
        image_levels(open_image(tmp_path / "x.tiff"), tmp_path / "x.tiff")
