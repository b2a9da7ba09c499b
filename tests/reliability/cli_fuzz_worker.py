"""Drive the ``tosc`` CLI with generated bad paths, arguments and files, in one process.

    python tests/reliability/cli_fuzz_worker.py SEED N FOLDER [--all-valid-allowed]

Prints one JSON line per case: the arguments, the exit status, the ``error:`` lines, a
traceback if one escaped, the seconds taken and the process's peak memory (ru_maxrss, KiB)
after the case. Cases run in-process (through :func:`tosc.cli.main`) so that hundreds take
minutes, not an import of torch each. Unless ``--all-valid-allowed``, every case has at least
one bad part, so no case starts a long computation.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import resource
import signal
import struct
import sys
import time
import traceback
import zipfile
import zlib
from pathlib import Path

CASE_TIMEOUT_S = 300


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def _npz_header_only(shape: tuple[int, ...], dtype: str = "<f4", name: str = "images") -> bytes:
    import numpy as np

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": dtype, "fortran_order": False, "shape": shape})
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(f"{name}.npy", header.getvalue())
    return out.getvalue()


def make_files(folder: Path) -> dict[str, dict[str, list[str]]]:
    """Good and bad values for each kind of argument; files are created in ``folder``."""
    import numpy as np

    from tosc.cli import main
    from tosc.data import load_dataset
    from tosc.io import save_image_arrays

    folder.mkdir(parents=True, exist_ok=True)
    good_npz = folder / "good.npz"
    save_image_arrays(good_npz, load_dataset("fashion-mnist", "test", limit=2).images.numpy())
    good_tosc = folder / "good.tosc"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["encode", str(good_npz), "-m", "tosc-sr-r1", "-o", str(good_tosc)]) == 0
    a_file = folder / "a-file.txt"
    a_file.write_text("just text\n")
    (folder / "a-folder").mkdir(exist_ok=True)
    fifo = folder / "fifo"
    if not fifo.exists():
        os.mkfifo(fifo)
    rng = np.random.default_rng(0)
    writes = {
        "empty.npz": b"", "random.npz": rng.integers(0, 256, 3000, np.uint8).tobytes(),
        "truncated.npz": good_npz.read_bytes()[:300], "huge-header.npz": _npz_header_only((40000, 40000)),
        "huge-batch.npz": _npz_header_only((10**7, 1, 28, 28), "|u1"), "bomb.png": _png_header_only(40000, 40000),
        "bomb-1x.png": _png_header_only(10000, 10000),
        "text.npz": b"images = [1, 2]\n", "truncated.tosc": good_tosc.read_bytes()[:20],
        "random.tosc": rng.integers(0, 256, 200, np.uint8).tobytes(), "random.pt": rng.integers(0, 256, 500, np.uint8).tobytes(),
        "list.json": b"[1, 2, 3]", "wrong-type.toml": b'epochs = "abc"\n', "nan.json": b'{"lr": NaN}',
        "zero-images.toml": b"train_images = 0\n", "binary.toml": b"\xff\xfe\x00\x01",
        "complex.npz": b"", "object.npz": b"",
    }
    for name, data in writes.items():
        (folder / name).write_bytes(data)
    np.savez(folder / "complex.npz", p_xy=np.eye(2) / 2 + 0.1j, distortion=1 - np.eye(2))
    with open(folder / "object.npz", "wb") as handle:
        np.savez(handle, images=np.array([{"a": 1}], dtype=object))
    quick = folder / "quick.json"  # a training that takes seconds, for cases with every part valid
    quick.write_text(json.dumps({"train_images": 64, "eval_images": 16, "batch_size": 8, "latent_dim": 16, "width": 8}))
    protected = folder / "protected.tosc"
    protected.write_bytes(b"keep")
    protected.chmod(0o444)
    bad_inputs = [str(folder / n) for n in writes] + [
        str(folder / "missing.npz"), str(folder / "a-folder"), str(fifo), "/dev/zero", "/dev/null", "/proc/self/mem",
        str(a_file / "below-a-file.npz"), "", "x" * 300 + ".npz", str(folder / "object.npz")]
    bad_outputs = [str(folder / "a-folder"), "/dev/null", "/dev/full", str(fifo), str(protected),
                   str(a_file / "x.out"), "/proc/x.out", "/proc/tosc/x", "", "x" * 300, str(good_npz),
                   str(good_tosc), "/"]
    return {
        "images": {"good": [str(good_npz)], "bad": bad_inputs},
        "tosc": {"good": [str(good_tosc)], "bad": bad_inputs},
        "config": {"good": [str(quick)], "bad": [str(folder / n) for n in ("list.json", "wrong-type.toml", "nan.json",
                                                                  "zero-images.toml", "binary.toml")] + bad_inputs},
        "checkpoint": {"good": ["tosc-sr-r1"], "bad": bad_inputs + ["no-such-model", "../../etc/passwd"]},
        "source_npz": {"good": [], "bad": [str(folder / "complex.npz")] + bad_inputs},
        "out_file": {"good": [str(folder / "new" / "out.tosc")], "bad": bad_outputs},
        "out_npz": {"good": [str(folder / "new" / "out.npz")], "bad": bad_outputs + [str(folder / "x.txt")]},
        "out_dir": {"good": [str(folder / "new-dir")], "bad": [str(a_file), str(a_file / "sub"), "/proc/tosc",
                                                               "/dev/null", str(fifo), ""]},
        "number": {"good": ["5"], "bad": ["nan", "inf", "-inf", "0", "-3", "1e9", "1e-300", "abc", "", "1/0",
                                          str(10**30), "-0", "0x10"]},
        "int": {"good": ["2"], "bad": ["0", "-3", "abc", "", "nan", str(10**30), "1.5"]},
        "cbr": {"good": ["1/8"], "bad": ["0", "-1/8", "1e9", "1e6", "nan", "inf", "1/0", "abc", "", "1/100000",
                                         "10**9"]},
        "system": {"good": ["jpeg+ideal"], "bad": ["nope", "", "../x", "tosc-sr+ldpc+x"]},
        "source": {"good": ["binary-symmetric"], "bad": ["nope", "", "gaussian-vector;rm"]},
    }


COMMANDS = [
    ("encode", [("images", None), ("checkpoint", "-m"), ("out_file", "-o")]),
    ("decode", [("tosc", None), ("out_npz", "-o")]),
    ("transmit", [("system", "--system"), ("number", "--snr-db"), ("cbr", "--cbr"), ("int", "--limit"),
                  ("out_dir", "--out")]),
    ("evaluate", [("system", "--systems"), ("number", "--snr-db"), ("cbr", "--cbr"), ("int", "--limit"),
                  ("int", "--jobs"), ("out_dir", "--out")]),
    ("train", [("out_file", "--out"), ("config", "--config"), ("number", "--lr"), ("number", "--lambda-p"),
               ("int", "--epochs"), ("checkpoint", "--init-from")]),
    ("theory", [("source", "--source"), ("int", "--jobs"), ("int", "--lams"), ("out_dir", "--out")]),
    ("theory", [("source_npz", "--input"), ("out_dir", "--out")]),
    ("channel mcs", [("number", "--snr-step"), ("int", "--codeword-bits")]),
]
EXTRA = {"theory": ["--quiet", "--betas", "2", "--distortions", "2", "--max-iter", "20"],
         "train": ["--codec", "family", "--device", "cpu", "--batch-size", "8"], "transmit": [], "evaluate": []}
OPTIONAL = {"--lr", "--lambda-p", "--init-from", "--jobs", "--lams", "--snr-step",
            "--codeword-bits", "--epochs"}


def generate(rng: random.Random, files: dict, all_valid_allowed: bool) -> list[str]:
    command, slots = rng.choice(COMMANDS)
    while True:
        args, bad = command.split(), 0
        for kind, flag in slots:
            if flag in OPTIONAL and rng.random() < 0.4:
                continue
            choices = files[kind]
            use_bad = not choices["good"] or rng.random() < 0.35
            value = rng.choice(choices["bad"] if use_bad else choices["good"])
            bad += use_bad
            args += [value] if flag is None else [flag, value]
        if rng.random() < 0.1:  # an unknown or doubled option
            args.append(rng.choice(["--no-such-flag", "--", "-", "--help-me"]))
            bad += 1
        if bad or all_valid_allowed:
            return args + EXTRA.get(command, [])


def _timeout(signum, frame):
    raise TimeoutError(f"case ran past {CASE_TIMEOUT_S} s")


def main() -> None:
    import torch

    from tosc.cli import main as tosc_main

    torch.set_num_threads(1)
    seed, count, folder = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]).resolve()
    all_valid_allowed = "--all-valid-allowed" in sys.argv
    os.environ["TOSC_CACHE_DIR"] = str(folder / "cache")
    folder.mkdir(parents=True, exist_ok=True)
    os.chdir(folder)  # whatever a case writes by accident lands here
    files = make_files(folder / "files")
    rng = random.Random(seed)
    signal.signal(signal.SIGALRM, _timeout)
    for _ in range(count):
        args = generate(rng, files, all_valid_allowed)
        err, tb = io.StringIO(), None
        start = time.perf_counter()
        signal.alarm(CASE_TIMEOUT_S)
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                status = tosc_main(args)
        except BaseException:  # noqa: BLE001 - anything escaping main() is the finding
            status, tb = None, traceback.format_exc()
        finally:
            signal.alarm(0)
        errors = [line for line in err.getvalue().splitlines() if line.startswith("error:")]
        print(json.dumps({"args": args, "status": status, "errors": errors, "traceback": tb,
                          "stderr_tail": err.getvalue()[-2000:], "seconds": round(time.perf_counter() - start, 2),
                          "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}), flush=True)


if __name__ == "__main__":
    main()
