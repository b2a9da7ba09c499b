"""`tosc evaluate` killed in the middle of a grid and rerun: done points are skipped, and the
final results file equals an uninterrupted run's (records compared without their timings)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import pytest

from tosc.cli import main
from tosc.evaluation import GridSpec, run_grid

SYSTEMS = ("mse-only+ideal", "jpeg-payload+ideal")
SNRS = (3.0, 8.0, 15.0)
SPEC = GridSpec(systems=SYSTEMS, channels=("awgn",), snrs_db=SNRS, cbrs=(Fraction(1, 8),), limit=8, seed=3)
ARGS = ["evaluate", "--systems", *SYSTEMS, "--snr-db", *(f"{s:g}" for s in SNRS), "--cbr", "1/8", "--limit", "8",
        "--seed", "3", "--jobs", "1"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}


def _comparable(path: Path) -> list[dict]:
    """Records in file order without what legitimately differs between runs: timings, and the
    git commit (others may commit between the two runs of this test)."""
    out = []
    for line in path.read_text().splitlines():
        record = json.loads(line)
        record.pop("timings_s")
        record.pop("git_commit")
        out.append(record)
    return out


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("whole")
    run_grid(SPEC, out, jobs=1, progress=False)
    return out / "results.jsonl"


def _lines(path: Path) -> int:
    return path.read_text().count("\n") if path.exists() else 0


def test_sigkill_mid_grid_then_rerun_skips_done_points(tmp_path, uninterrupted):
    results = tmp_path / "results.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "tosc.cli", *ARGS, "--out", str(tmp_path)], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while _lines(results) < 2:
        assert proc.poll() is None, f"evaluate ended (status {proc.returncode}) before it could be killed"
        assert time.time() < deadline, "evaluate made no progress"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = results.read_text().splitlines(keepends=True)
    assert 2 <= len(done_before) < len(SYSTEMS) * len(SNRS), "the kill came too late to test anything"
    assert main([*ARGS, "--out", str(tmp_path)]) == 0
    after = results.read_text().splitlines(keepends=True)
    # the points done before the kill were skipped: their lines (timings included) are untouched
    assert after[:len(done_before)] == done_before
    assert _comparable(results) == _comparable(uninterrupted)
    assert (tmp_path / "report.html").exists()


def test_cut_off_last_line_is_dropped_and_its_point_redone(tmp_path, uninterrupted):
    """A results file whose last line was cut off (a copy interrupted, a non-atomic writer):
    the rerun warns, recomputes that point, and ends with the uninterrupted file."""
    lines = uninterrupted.read_text().splitlines(keepends=True)
    results = tmp_path / "results.jsonl"
    results.write_text("".join(lines[:3]) + lines[3][: len(lines[3]) // 2])
    with pytest.warns(UserWarning, match="cut-off last line"):
        run_grid(SPEC, tmp_path, jobs=1, progress=False)
    assert results.read_text().splitlines(keepends=True)[:3] == lines[:3]
    assert _comparable(results) == _comparable(uninterrupted)


def test_damaged_line_in_the_middle_is_a_clear_error(tmp_path, uninterrupted, capsys):
    lines = uninterrupted.read_text().splitlines(keepends=True)
    (tmp_path / "results.jsonl").write_text(lines[0] + lines[1][:40] + "\n" + lines[2])
    assert main([*ARGS, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "results.jsonl:2: not valid JSON" in err and err.count("\n") == 1
