"""benchmarks/gpu_check.sh: a clear exit where there is no GPU; its checks run on the CPU too."""

import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import env

ROOT = Path(__file__).resolve().parents[2]


def test_without_a_gpu_it_says_so_and_exits_3():
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh")], capture_output=True, text=True,
                          env={**env(), "CUDA_VISIBLE_DEVICES": "", "PYTHON": sys.executable}, timeout=120)
    assert proc.returncode == 3, proc.stderr
    assert "no CUDA GPU is visible to PyTorch" in proc.stderr and "nothing was checked" in proc.stderr


@pytest.mark.slow
def test_the_checks_pass_on_the_cpu_path(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--device", "cpu", "--out",
                           str(tmp_path), "--images", "256", "--test", "64", "--v3-steps", "4"], capture_output=True, text=True,
                          env=env(), timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "symbols identical" in proc.stdout and "all checks passed" in proc.stdout
    assert "images/s" in proc.stdout and (tmp_path / "device.tosc").stat().st_size > 0
    for mode in ("transform", "predictive", "global"):  # codec v3, one file per mode
        assert f"codec v3 {mode} " in proc.stdout and "CPU process decode identical" in proc.stdout
        assert (tmp_path / f"device-v3-{mode}.tosc").stat().st_size > 0
    assert "deep JSCC training:" in proc.stdout and (tmp_path / "gpu-check-jscc.pt").exists()
