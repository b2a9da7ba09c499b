"""``tosc channel mcs``: a thin wrapper that prints the table and follows the error contract."""

import json
import subprocess
import sys

from tosc.cli import main


def test_mcs_table_prints(capsys):
    assert main(["channel", "mcs", "--channel", "awgn"]) == 0
    out = capsys.readouterr().out
    assert "qpsk-1/2" in out and "64qam-5/6" in out and "BLER <= 0.001" in out


def test_mcs_table_json(capsys):
    assert main(["channel", "mcs", "--channel", "rayleigh-block", "--json", "--snr-min", "20",
                 "--snr-max", "60", "--snr-step", "5"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["channel"] == "rayleigh-block" and len(data["rows"]) == 9
    assert data["rows"][0]["mcs"] is None and data["rows"][-1]["mcs"] is not None


def test_unknown_channel_is_one_error_line():
    proc = subprocess.run([sys.executable, "-m", "tosc.cli", "channel", "mcs", "--channel", "rician"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: unknown channel 'rician'") and proc.stderr.count("\n") == 1


def test_recompute_writes_where_asked(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TOSC_CACHE_DIR", str(tmp_path))
    # rayleigh-block is derived from the AWGN table: quick, no simulation
    assert main(["channel", "mcs", "--channel", "rayleigh-block", "--recompute"]) == 0
    assert (tmp_path / "mcs_rayleigh-block.json").exists()
    assert "wrote" in capsys.readouterr().err
