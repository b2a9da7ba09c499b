"""The CLI driven with generated bad paths, arguments and files (tests/reliability/cli_fuzz_worker.py):
every case ends with status 0 or 2, and status 2 with exactly one ``error:`` line, no traceback,
within a bounded time and memory. ``make test`` runs 40 cases; ``make test-slow`` 400, some with
every argument valid.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).with_name("cli_fuzz_worker.py")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
# torch, the models and the data set take about 1.2 GB; no case may add more than this on top
PEAK_GROWTH_KIB = 1_500_000


def _run(tmp_path: Path, seed: int, count: int, *flags: str) -> list[dict]:
    proc = subprocess.run([sys.executable, str(WORKER), str(seed), str(count), str(tmp_path), *flags], env=ENV,
                          capture_output=True, text=True, timeout=3000)
    assert proc.returncode == 0, proc.stderr[-3000:]
    cases = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(cases) == count, proc.stderr[-3000:]
    return cases


def _check(cases: list[dict]) -> None:
    first_peak = cases[0]["peak_kib"]
    problems = []
    for case in cases:
        if case["traceback"] or case["status"] not in (0, 2):
            problems.append(f"{case['args']}: status {case['status']}\n{case['traceback'] or case['stderr_tail']}")
        elif case["status"] == 2 and len(case["errors"]) != 1:
            problems.append(f"{case['args']}: {len(case['errors'])} error lines\n{case['stderr_tail']}")
        elif "Traceback" in case["stderr_tail"]:
            problems.append(f"{case['args']}: traceback on stderr\n{case['stderr_tail']}")
    assert not problems, "\n\n".join(problems)
    peak = max(c["peak_kib"] for c in cases)
    assert peak - first_peak < PEAK_GROWTH_KIB, [(c["args"], c["peak_kib"]) for c in cases]


def test_cli_fuzz_quick(tmp_path):
    _check(_run(tmp_path, seed=21, count=40))


@pytest.mark.slow
def test_cli_fuzz_long(tmp_path):
    _check(_run(tmp_path, 2121, 400, "--all-valid-allowed"))
