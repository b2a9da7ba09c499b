"""Careless and hostile use of the CLI, round 2 (issue 21): output paths, memory bounds,
signals, concurrent runs, the model zoo and misleading messages.

Every case must end in exit status 0, 2 (one ``error:`` line) or 130 (Ctrl-C, one line saying
what was saved), never a traceback, a replaced device file or a lost record.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import stat
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from tosc.cli import main
from tosc.io import save_image_arrays

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
GRID = ["--systems", "mse-only+ideal", "jpeg-payload+ideal", "--snr-db", "3", "8", "15", "--cbr", "1/8",
        "--limit", "8", "--seed", "3"]


def _tosc(*args: str) -> list[str]:
    return [sys.executable, "-m", "tosc.cli", *args]


def _terminal_lines(err: str) -> list[str]:
    """The lines a terminal shows: a progress bar redrawn with carriage returns leaves only
    what was written after its last one."""
    return [shown for line in err.split("\n") if (shown := line.split("\r")[-1]).strip()]


def _one_error_line(capsys, *fragments: str) -> str:
    err = capsys.readouterr().err
    lines = _terminal_lines(err)
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in err, err
    return err


@pytest.fixture(scope="module")
def images_npz(tmp_path_factory, fashion_test_slice) -> Path:
    path = tmp_path_factory.mktemp("in") / "images.npz"
    save_image_arrays(path, fashion_test_slice.images[:2].numpy())
    return path


@pytest.fixture(scope="module")
def tosc_file(tmp_path_factory, images_npz) -> Path:
    path = tmp_path_factory.mktemp("tosc") / "x.tosc"
    assert main(["encode", str(images_npz), "--model", "tosc-sr-r1", "-o", str(path)]) == 0
    return path


# ------------------------------------------------------------------------------ output paths

def _commands(images_npz: Path, tosc_file: Path) -> dict[str, callable]:
    """Each command with an output, as a function of that output (all other arguments valid)."""
    return {
        "encode": lambda o: ["encode", str(images_npz), "-m", "tosc-sr-r1", "-o", o],
        "decode": lambda o: ["decode", str(tosc_file), "-o", o],
        "transmit": lambda o: ["transmit", "--system", "jpeg+ideal", "--limit", "2", "--snr-db", "5", "--cbr", "1/8",
                               "--out", o],
        "evaluate": lambda o: ["evaluate", "--systems", "jpeg+ideal", "--snr-db", "5", "--cbr", "1/8", "--limit", "2",
                               "--jobs", "1", "--out", o],
        "train": lambda o: ["train", "--out", o, "--epochs", "1"],
        "theory": lambda o: ["theory", "--source", "binary-symmetric", "--quiet", "--out", o],
        "mcs": lambda o: ["channel", "mcs", "--recompute", "--max-codewords", "10", "--out", o],
    }


FOLDER_OUTPUTS = {"transmit", "evaluate", "theory"}


def _bad_outputs(tmp: Path, command: str) -> dict[str, tuple[str, str]]:
    """name -> (output path, fragment the error line must hold)."""
    a_file = tmp / "a-file.txt"
    a_file.write_text("x")
    a_folder = tmp / "a-folder"
    a_folder.mkdir(exist_ok=True)
    fifo = tmp / "fifo.npz"
    if not fifo.exists():
        os.mkfifo(fifo)
    suffix = ".npz" if command == "decode" else ".out"
    cases = {
        "parent is a file": (str(a_file / f"x{suffix}"), "is a file"),
        "under /proc": (f"/proc/tosc-{command}/x{suffix}" if command in FOLDER_OUTPUTS else f"/proc/x{suffix}",
                        "/proc"),
    }
    if command in FOLDER_OUTPUTS:
        cases["a file given as the folder"] = (str(a_file), "is a file, expected a folder")
    else:
        cases["existing folder given as the file"] = (str(a_folder), "is a folder")
        cases["/dev/null"] = ("/dev/null", "character device")
        cases["/dev/full"] = ("/dev/full", "character device")
        cases["a FIFO"] = (str(fifo), "FIFO")
    return cases


@pytest.mark.parametrize("command", ["encode", "decode", "transmit", "evaluate", "train", "theory", "mcs"])
def test_bad_output_locations_fail_before_any_work(command, tmp_path, capsys, images_npz, tosc_file):
    build = _commands(images_npz, tosc_file)[command]
    devices = {p: os.stat(p) for p in ("/dev/null", "/dev/full")}
    for name, (output, fragment) in _bad_outputs(tmp_path, command).items():
        start = time.perf_counter()
        assert main(build(output)) == 2, name
        _one_error_line(capsys, fragment)
        # refused before computing anything (a grid point or an epoch takes seconds)
        assert time.perf_counter() - start < 5, name
    for path, before in devices.items():  # the devices are still devices, not regular files
        assert stat.S_ISCHR(os.stat(path).st_mode) and os.stat(path).st_rdev == before.st_rdev
    assert stat.S_ISFIFO(os.stat(tmp_path / "fifo.npz").st_mode)


def test_output_equal_to_input_and_read_only_output_are_refused(tmp_path, capsys, images_npz, tosc_file):
    same = tmp_path / "same.npz"
    shutil.copy(images_npz, same)
    before = same.read_bytes()
    assert main(["encode", str(same), "-m", "tosc-sr-r1", "-o", str(same)]) == 2
    _one_error_line(capsys, "also the input")
    assert same.read_bytes() == before
    same_tosc = tmp_path / "same.tosc"
    shutil.copy(tosc_file, same_tosc)
    link = tmp_path / "link.npz"
    link.symlink_to(same_tosc)
    assert main(["decode", str(same_tosc), "-o", str(link)]) == 2  # the same file under another name
    _one_error_line(capsys, "also the input")

    protected = tmp_path / "protected.tosc"
    protected.write_bytes(b"keep me")
    protected.chmod(0o444)
    assert main(["encode", str(images_npz), "-m", "tosc-sr-r1", "-o", str(protected)]) == 2
    _one_error_line(capsys, "read-only")
    assert protected.read_bytes() == b"keep me" and stat.S_IMODE(protected.stat().st_mode) == 0o444


def test_missing_parent_folders_are_created(tmp_path, images_npz):
    out = tmp_path / "new" / "deeper" / "x.tosc"
    assert main(["encode", str(images_npz), "-m", "tosc-sr-r1", "-o", str(out)]) == 0
    assert out.stat().st_size > 0


# ------------------------------------------------------------------------------ bad inputs

def _fuzz_worker():
    """The crafted-file makers shared with the CLI fuzzer (tests/reliability/cli_fuzz_worker.py)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("cli_fuzz_worker", Path(__file__).with_name("cli_fuzz_worker.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_png_header_only = _fuzz_worker()._png_header_only
_npz_header_only = _fuzz_worker()._npz_header_only


def test_bad_images_to_encode(tmp_path, capsys):
    zero = tmp_path / "zero.npz"
    save_image_arrays(zero, np.zeros((0, 1, 28, 28), np.float32))
    assert main(["encode", str(zero), "-m", "tosc-sr-r1", "-o", str(tmp_path / "zero.tosc")]) == 2
    _one_error_line(capsys, "nothing to encode")
    assert not (tmp_path / "zero.tosc").exists()

    bomb = tmp_path / "bomb.png"
    for side in (10000, 30000):  # over Pillow's limit; over twice it (DecompressionBombError)
        bomb.write_bytes(_png_header_only(side, side))
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a Pillow warning would be a second line on stderr
            assert main(["encode", str(bomb), "-m", "tosc-sr-r1", "-o", str(tmp_path / "b.tosc")]) == 2
        _one_error_line(capsys, "pixel limit per image")

    huge = tmp_path / "huge.npz"  # 36000 x 36000 floats declared: 5 GB, in a file of 200 bytes
    huge.write_bytes(_npz_header_only((36000, 36000)))
    assert main(["encode", str(huge), "-m", "tosc-sr-r1", "-o", str(tmp_path / "h.tosc")]) == 2
    _one_error_line(capsys, "36000")

    text = tmp_path / "text.npz"
    text.write_text("images = 1, 2, 3\n")
    assert main(["encode", str(text), "-m", "tosc-sr-r1", "-o", str(tmp_path / "t.tosc")]) == 2
    err = _one_error_line(capsys, "not a readable .npz file", "zip archive")
    assert "pickle" not in err

    assert main(["encode", str(tmp_path), "-m", "tosc-sr-r1", "-o", str(tmp_path / "f.tosc")]) == 2
    _one_error_line(capsys, "is a folder")
    assert main(["decode", str(tmp_path), "-o", str(tmp_path / "f.npz")]) == 2
    _one_error_line(capsys, "is a folder")


def test_huge_declared_npz_is_refused_from_its_header(tmp_path):
    """The declared shape is checked before the data is read: refusing costs no memory."""
    import resource

    from tosc.errors import DataError
    from tosc.io import load_image_arrays, read_npz

    huge = tmp_path / "huge.npz"
    huge.write_bytes(_npz_header_only((4, 1, 36000, 36000), "|u1"))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(DataError, match="pixel limit"):
        load_image_arrays(huge)
    with pytest.raises(DataError, match="GiB"):
        read_npz(huge, max_bytes=1 << 30)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 64 * 1024  # KiB: < 64 MiB


def test_train_settings_nan_wrong_types_and_lists(tmp_path, capsys):
    out = str(tmp_path / "c.pt")
    for flags, fragment in ((["--lr", "nan"], "finite"), (["--codec", "family", "--lambda-p", "nan"], "finite"),
                            (["--codec", "family", "--lambda-p", "inf"], "finite"), (["--lambda-s", "-inf"], "finite"),
                            (["--lambda-p", "40"], "add --codec family"), (["--codec", "v4"], "one of v3, family, jscc"),
                            (["--codec", "jscc", "--lambda-p", "nan"], "finite")):
        assert main(["train", "--out", out, *flags]) == 2
        _one_error_line(capsys, fragment)
    configs = {"wrong.toml": ('epochs = "abc"\n', "epochs: must be an integer"),
               "list.json": ("[1, 2, 3]", "table of settings"),
               "zero.toml": ("train_images = 0\n", "train_images must be positive"),
               "nan.json": ('{"lr": NaN}', "finite"),
               "binary.toml": (b"\xff\xfe\x00", "cannot parse")}
    for name, (text, fragment) in configs.items():
        path = tmp_path / name
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        assert main(["train", "--out", out, "--config", str(path)]) == 2, name
        _one_error_line(capsys, fragment)
    assert main(["train", "--out", out, "--config", str(tmp_path)]) == 2
    _one_error_line(capsys, "is a folder")
    assert not Path(out).exists()


def test_plain_pickle_checkpoint_says_what_it_is(tmp_path, capsys, images_npz):
    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps({"format": "tosc-checkpoint", "weights": [1.0, 2.0]}, protocol=5))
    assert main(["encode", str(images_npz), "-m", str(raw), "-o", str(tmp_path / "x.tosc")]) == 2
    err = _one_error_line(capsys, "plain Python pickle", "protocol 5")
    assert "operand" not in err


def test_useless_cbr_and_jobs_are_refused_before_any_work(tmp_path, capsys):
    for command in (["transmit", "--system", "tosc-sr+ldpc", "--limit", "8", "--snr-db", "5", "--cbr", "1e9",
                     "--out", str(tmp_path / "t")],
                    ["evaluate", "--systems", "tosc-sr+ldpc", "jpeg+ideal", "--snr-db", "5", "--cbr", "1e9",
                     "--limit", "8", "--out", str(tmp_path / "e")],
                    ["transmit", "--system", "jpeg+ideal", "--limit", "8", "--snr-db", "-10", "--cbr", "1000",
                     "--out", str(tmp_path / "t")]):
        start = time.perf_counter()
        assert main(command) == 2
        _one_error_line(capsys, "more than", "can use")
        assert time.perf_counter() - start < 60  # building the system at most, no link simulated
    assert not (tmp_path / "e" / "results.jsonl").exists()
    for jobs in ("0", "-3"):
        assert main(["evaluate", *GRID, "--jobs", jobs, "--out", str(tmp_path / "j")]) == 2
        _one_error_line(capsys, "--jobs")


def test_complex_joint_distribution_is_refused(tmp_path, capsys):
    source = tmp_path / "complex.npz"
    np.savez(source, p_xy=np.array([[0.5, 0], [0, 0.5]]) + 0.1j, distortion=np.array([[0.0, 1], [1, 0]]))
    assert main(["theory", "--input", str(source), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    _one_error_line(capsys, "real numbers")


def test_malformed_results_record_names_file_and_line(tmp_path, capsys):
    from tosc.errors import CorruptFileError
    from tosc.results import read_results

    path = tmp_path / "results.jsonl"
    path.write_text('{"system": "x"}\n')
    with pytest.raises(CorruptFileError, match=r"results\.jsonl:1: .*'channel'"):
        read_results(path)
    path.write_text("[1, 2]\n")
    with pytest.raises(CorruptFileError, match=r"results\.jsonl:1: .*JSON object"):
        read_results(path)
    assert main(["evaluate", *GRID, "--jobs", "1", "--out", str(tmp_path)]) == 2
    _one_error_line(capsys, "results.jsonl:1")


# ------------------------------------------------------------------------------ memory

def test_decoding_many_tiny_streams_is_bounded(tmp_path, tosc_file):
    """6,000 streams of 10 bytes (60 KB): decoding used to take about 150 KB per image (900 MB
    here; the issue's 30,000 streams took 5.6 GB); in batches it takes the output and a little."""
    script = f"""
import resource, torch
from tosc.source_coding.learned import LearnedCodec
from tosc.source_coding.learned.bitstream import pack_file, unpack_file
torch.set_num_threads(1)
codec = LearnedCodec.load("tosc-sr-r1")
header, _ = unpack_file(open({str(tosc_file)!r}, "rb").read())
stream = codec.encode_symbols(torch.zeros(1, codec.config.latent_dim, dtype=torch.int64))[0]
small, big = pack_file(header, [stream] * 2), pack_file(header, [stream] * 6000)
codec.decode_file(small)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
images = codec.decode_file(big)
print(len(big), tuple(images.shape), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""
    out = subprocess.run([sys.executable, "-c", script], env=ENV, capture_output=True, text=True, check=True)
    size, shape, growth_kib = out.stdout.split(" ", 1)[0], out.stdout.split("(")[1].split(")")[0], \
        int(out.stdout.split()[-1])
    assert shape.startswith("6000,")
    output_kib = 6000 * 28 * 28 * 4 // 1024  # the decoded images themselves (18 MB)
    assert growth_kib < output_kib + 128 * 1024, (size, growth_kib)


# ------------------------------------------------------------------------------ the zoo

@pytest.fixture()
def small_zoo(tmp_path) -> Path:
    from tosc.zoo import zoo_dir

    zoo = tmp_path / "zoo"
    shutil.copytree(zoo_dir() / "tasks", zoo / "tasks")
    (zoo / "codecs").mkdir()
    for name in ("tosc-sr-r1", "tosc-sr-r2", "tosc-sr-r3"):
        shutil.copy(zoo_dir() / "codecs" / f"{name}.pt", zoo / "codecs")
    return zoo


def test_damaged_zoo_model_is_recorded_in_result_json(small_zoo, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TOSC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("TOSC_ZOO", str(small_zoo))
    damaged = small_zoo / "codecs" / "tosc-sr-r3.pt"
    damaged.write_bytes(damaged.read_bytes()[:1000])
    out = tmp_path / "tx"
    with pytest.warns(UserWarning, match="tosc-sr-r3"):
        assert main(["transmit", "--system", "tosc-sr-family+ideal", "--limit", "4", "--snr-db", "10", "--cbr", "1/8",
                     "--out", str(out)]) == 0
    record = json.loads((out / "result.json").read_text())
    assert record["config"]["zoo_skipped_damaged"] == ["tosc-sr-r3.pt"]


def test_tosc_zoo_pointing_nowhere_or_empty(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TOSC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("TOSC_ZOO", str(tmp_path / "nowhere"))
    assert main(["models"]) == 2
    _one_error_line(capsys, str(tmp_path / "nowhere"))
    monkeypatch.setenv("TOSC_ZOO", "")
    monkeypatch.chdir(tmp_path)  # an empty value used to mean this folder (no models)
    assert main(["models"]) == 0
    assert "tosc-sr-r1" in capsys.readouterr().out


def test_zoo_index_follows_the_files(small_zoo, tmp_path, monkeypatch, capsys):
    """`tosc models` reads a cached index; adding, replacing, damaging or removing a checkpoint
    changes the listing exactly as loading every file would."""
    from tosc.checkpoint import load_checkpoint

    monkeypatch.setenv("TOSC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("TOSC_ZOO", str(small_zoo))
    codecs = small_zoo / "codecs"

    def listing() -> dict[str, str]:
        assert main(["models"]) == 0
        rows = capsys.readouterr().out.splitlines()[1:]
        return {row.split()[0]: row.split()[4] for row in rows}  # name -> bpp

    def truth() -> dict[str, str]:
        return {p.stem: f"{load_checkpoint(p)['metrics']['bpp']:.3f}" for p in sorted(codecs.glob("*.pt"))}

    assert listing() == truth()
    assert list((tmp_path / "cache" / "zoo-index").glob("*.json"))
    # replaced by another model's file, with the old modification time put back
    old = os.stat(codecs / "tosc-sr-r1.pt")
    shutil.copy(codecs / "tosc-sr-r3.pt", codecs / "tosc-sr-r1.pt")
    os.utime(codecs / "tosc-sr-r1.pt", ns=(old.st_atime_ns, old.st_mtime_ns))
    shutil.copy(codecs / "tosc-sr-r2.pt", codecs / "added.pt")
    (codecs / "tosc-sr-r2.pt").unlink()
    assert listing() == truth()
    (codecs / "added.pt").write_bytes(b"damaged")
    assert main(["models"]) == 0
    captured = capsys.readouterr()
    assert "added.pt" in captured.err and "added" not in captured.out


# ------------------------------------------------------------------------------ Ctrl-C

def _wait_for(condition, proc: subprocess.Popen, timeout_s: float = 300.0) -> None:
    deadline = time.time() + timeout_s
    while not condition():
        assert proc.poll() is None, f"the process ended (status {proc.returncode}) before Ctrl-C"
        assert time.time() < deadline, "no progress before Ctrl-C"
        time.sleep(0.05)


def _default_sigint() -> None:
    """A child inherits an ignored SIGINT (pytest-xdist workers ignore it), and Python then never
    raises KeyboardInterrupt: give the child a terminal's default, as a user's shell would."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt(proc: subprocess.Popen) -> tuple[int, str]:
    """Ctrl-C as a terminal sends it: SIGINT to the whole process group (workers included)."""
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


@pytest.mark.parametrize("jobs", [pytest.param("1", marks=pytest.mark.slow), "2"])
def test_ctrl_c_during_evaluate_exits_130_and_says_how_to_resume(tmp_path, jobs):
    results = tmp_path / "results.jsonl"
    # long enough (11 SNRs x 2 systems x 32 images) to be running when Ctrl-C comes
    grid = ["--systems", "mse-only+ideal", "jpeg-payload+ideal", "--snr-db", *map(str, range(0, 21, 2)),
            "--cbr", "1/8", "--limit", "32"]
    proc = subprocess.Popen(_tosc("evaluate", *grid, "--jobs", jobs, "--out", str(tmp_path)), env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=_default_sigint)
    _wait_for(lambda: results.exists() and results.read_text().count("\n") >= 1, proc)
    status, err = _interrupt(proc)
    lines = [line for line in err.splitlines() if "error: " in line or "Traceback" in line]
    assert status == 130, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err  # not glued to a progress bar
    assert "finished operating point" in lines[0] and "same command" in lines[0], err
    done = results.read_text().count("\n")
    assert f"holds {done} " in lines[0]


def test_ctrl_c_during_train_exits_130_and_says_how_to_resume(tmp_path):
    config = tmp_path / "quick.json"
    config.write_text(json.dumps(dict(train_images=768, eval_images=64, batch_size=32, latent_dim=16, width=8,
                                      lambda_p=50.0, epochs=50, seed=4)))
    out = tmp_path / "c.pt"
    proc = subprocess.Popen(_tosc("train", "--codec", "family", "--out", str(out), "--config", str(config), "--device",
                                  "cpu"), env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=_default_sigint)
    _wait_for(out.exists, proc)
    status, err = _interrupt(proc)
    lines = [line for line in err.splitlines() if "error: " in line or "Traceback" in line]
    assert status == 130, err
    assert len(lines) == 1 and lines[0].startswith("error: ") and "--resume" in lines[0] and "holds epoch" in lines[0], err


# ------------------------------------------------------------------------------ concurrent runs

def test_concurrent_evaluate_runs_lose_and_double_nothing(tmp_path):
    """Three grids (two the same, one overlapping) run into one folder at once by separate
    processes, as three `tosc evaluate` would (the lock and the once-per-point rule live in
    run_grid, under the command): every point ends up in results.jsonl exactly once."""
    script = """
import sys
from fractions import Fraction
from tosc.evaluation import GridSpec, run_grid
snrs = tuple(float(s) for s in sys.argv[2].split(","))
run_grid(GridSpec(("jpeg-payload+ideal",), ("awgn",), snrs, (Fraction(1, 8),), limit=4), sys.argv[1], jobs=1,
         progress=False)
"""
    procs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path), snrs], env=ENV, stderr=subprocess.PIPE,
                              text=True) for snrs in ("3,8,15", "3,8,15", "3,20")]
    for proc in procs:
        _, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err
    records = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    points = [(r["system"], r["channel"]["snr_db"]) for r in records]
    assert sorted(points) == sorted(("jpeg-payload+ideal", snr) for snr in (3.0, 8.0, 15.0, 20.0))


# ------------------------------------------------------------------------------ found by the fuzzer

def test_mcs_table_with_a_step_that_never_ends(capsys):
    """`tosc channel mcs --snr-step -3` looped for ever and grew to 8 GB."""
    for flags in (["--snr-step", "-3"], ["--snr-step", "0"], ["--snr-step", "1e-9"], ["--snr-min", "-1e300"],
                  ["--snr-step", "nan"]):
        assert main(["channel", "mcs", *flags]) == 2, flags
        _one_error_line(capsys, "snr" if "nan" in flags or "-3" in flags or "0" in flags else "more than")


def test_diverging_training_is_an_error_line(tmp_path, capsys):
    """`--lr 5` made the weights NaN, and building the entropy tables raised ValueError."""
    config = tmp_path / "quick.json"
    config.write_text(json.dumps({"train_images": 64, "eval_images": 16, "batch_size": 8, "latent_dim": 16,
                                  "width": 8}))
    assert main(["train", "--codec", "family", "--out", str(tmp_path / "c.pt"), "--config", str(config), "--lr", "5",
                 "--epochs", "2", "--device", "cpu"]) == 2
    _one_error_line(capsys, "diverged", "lr 5")


def test_an_interrupt_python_cannot_raise_prints_no_traceback(capsys, monkeypatch):
    """Ctrl-C inside a callback (numba compiling through ctypes on a first run) is 'unraisable':
    the CLI drops that message, as the command reports the interrupt itself; other unraisable
    errors still print."""
    from tosc.cli import _quiet_interrupts

    monkeypatch.setattr(sys, "unraisablehook", _quiet_interrupts)

    class Raises:
        def __init__(self, exc):
            self.exc = exc

        def __del__(self):
            raise self.exc

    Raises(KeyboardInterrupt())
    assert capsys.readouterr().err == ""
    Raises(ValueError("kept"))
    assert "ValueError: kept" in capsys.readouterr().err


def test_an_interrupt_a_library_turns_into_another_error_still_exits_130(tmp_path, capsys, monkeypatch):
    """Ctrl-C inside numpy's savez left a zip member open and numpy's cleanup raised ValueError
    instead (seen once in CI, while evaluate wrote an example image): the command still says
    what was saved and exits 130; an error with no interrupt behind it keeps its traceback."""
    import tosc.evaluation as grid_module  # where the command imports run_grid from

    def interrupted_save(*args, **kwargs):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise ValueError("Can't close the ZIP file while there is an open writing handle on it.")

    monkeypatch.setattr(grid_module, "run_grid", interrupted_save)
    args = ["evaluate", "--systems", "jpeg-payload+ideal", "--snr-db", "10", "--cbr", "1/8", "--limit", "2",
            "--out", str(tmp_path / "run")]
    assert main(args) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "same command" in err[0], err

    def plain_bug(*args, **kwargs):
        raise ValueError("a bug")

    monkeypatch.setattr(grid_module, "run_grid", plain_bug)
    with pytest.raises(ValueError, match="a bug"):
        main(args[:-1] + [str(tmp_path / "run2")])
