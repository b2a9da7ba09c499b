#!/usr/bin/env python
"""How fast the ``tosc`` command answers when it has nothing heavy to do, against starting
Python itself (``python -c pass``), measured in the same process run after run.

    .venv/bin/python benchmarks/cli_bench.py [--repeats 7]

For each command: the median wall time of a fresh process, its peak memory (MiB), and the
ratio to ``python -c pass``. ``tosc --help`` and a bad argument must stay under 0.5 s
(issue 21; they took 2.2 s and 660 MB while torch was imported for every command);
``tosc models`` reads the zoo's index (the first run builds it, the others reuse it);
``tosc decode`` decodes 16 Fashion-MNIST images coded by ``tosc-sr-v3`` (importing torch and
CompressAI, loading the codec: 20,498 CDF tables, 514 MB and seconds when they were padded to
the longest).
Medians of interleaved runs, so a busy machine slows all commands alike.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

TOSC = [sys.executable, "-m", "tosc.cli"]
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "tosc --help": [*TOSC, "--help"],
    "tosc encode --help": [*TOSC, "encode", "--help"],
    "tosc (bad argument)": [*TOSC, "encode", "x.npz", "--no-such-flag"],
    "tosc evaluate --jobs 0": [*TOSC, "evaluate", "--systems", "jpeg+ideal", "--snr-db", "5", "--cbr", "1/8",
                               "--jobs", "0", "--out", "/tmp/tosc-cli-bench"],
    "tosc models": [*TOSC, "models"],
    "tosc decode (v3, 16)": [*TOSC, "decode", "/tmp/tosc-cli-bench/x.tosc", "-o", "/tmp/tosc-cli-bench/y.npz"],
}
TARGET_S = 0.5


def _run(command: list[str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one fresh process. On a busy machine the
    wall time includes waiting for a core; the CPU time is what an idle machine would take."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 2):
        raise SystemExit(f"{command}: status {proc.returncode}\n{proc.stderr.decode()[-2000:]}")
    return seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _peak_mib(command: list[str]) -> float:
    """Peak RSS of one process, measured alone (GNU time is not everywhere, so via a wrapper)."""
    wrapper = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], capture_output=True); "
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", wrapper, *command], capture_output=True, text=True, check=True)
    return int(out.stdout.strip()) / 1024


def _stream_to_decode() -> None:
    """/tmp/tosc-cli-bench/x.tosc: 16 test images coded by tosc-sr-v3 at quality 40."""
    import numpy as np

    from tosc.data import load_dataset

    folder = Path("/tmp/tosc-cli-bench")
    folder.mkdir(exist_ok=True)
    images = load_dataset("fashion-mnist", "test", limit=16).images
    np.savez(folder / "x.npz", images=(images.numpy() * 255).round().astype(np.uint8))
    _run([*TOSC, "encode", str(folder / "x.npz"), "-m", "tosc-sr-v3", "-q", "40", "-o", str(folder / "x.tosc")])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    os.chdir(Path(__file__).resolve().parent.parent)
    _run(COMMANDS["tosc models"])  # builds the zoo index if this machine has none yet
    _stream_to_decode()
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    cpu: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.repeats):
        for name, command in COMMANDS.items():  # interleaved: load changes hit every command alike
            wall, used = _run(command)
            times[name].append(wall)
            cpu[name].append(used)
    base = statistics.median(times["python -c pass"])
    print(f"{'command':<26}{'median s':>10}{'CPU s':>8}{'peak MiB':>10}{'x python':>10}")
    failed = []
    for name, command in COMMANDS.items():
        median = statistics.median(times[name])
        print(f"{name:<26}{median:>10.3f}{statistics.median(cpu[name]):>8.3f}{_peak_mib(command):>10.0f}"
              f"{median / base:>10.1f}")
        if name in ("tosc --help", "tosc (bad argument)") and median > TARGET_S:
            failed.append(name)
    print(f"target: --help and a bad argument under {TARGET_S} s: {'missed by ' + ', '.join(failed) if failed else 'met'}")


if __name__ == "__main__":
    main()
