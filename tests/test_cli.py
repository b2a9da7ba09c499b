import subprocess
import sys

from tosc.cli import main


def test_data_info_fashion_mnist(capsys):
    assert main(["data", "info", "fashion-mnist"]) == 0
    out = capsys.readouterr().out
    assert "60000" in out and "10000" in out and "1x28x28" in out and "classes     10" in out


def test_bad_input_is_one_error_line_and_status_2():
    proc = subprocess.run([sys.executable, "-m", "tosc.cli", "data", "info", "imagenet-9000"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: unknown dataset 'imagenet-9000'")
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_usage_error_follows_the_same_contract(capsys):
    assert main(["data", "info", "fashion-mnist", "--no-such-flag"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


def test_missing_dataset_root(capsys, tmp_path):
    assert main(["data", "info", "folder", "--root", str(tmp_path / "x")]) == 2
    assert "does not exist" in capsys.readouterr().err
