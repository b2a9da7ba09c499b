import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from tosc.cli import main
from tosc.errors import ConfigError
from tosc.evaluation import GridSpec, merge_results, parse_shard, run_grid
from tosc.results import read_results

SPEC = GridSpec(systems=("mse-only+ideal", "jpeg2000-payload+ldpc"), channels=("awgn",), snrs_db=(3.0, 12.0),
                cbrs=(Fraction(1, 8), Fraction(1, 4)), limit=8, seed=7)


def _comparable(records):
    out = []
    for r in records:
        d = r.to_dict()
        d.pop("timings_s")
        out.append(d)
    return sorted(out, key=lambda d: (d["system"], d["channel"]["snr_db"], d["rate"]["cbr"]))


def test_shards_merged_equal_one_run_and_reruns_skip_done_points(tmp_path):
    whole = run_grid(SPEC, tmp_path / "whole", jobs=1, progress=False)
    assert len(whole) == 8
    run_grid(SPEC, tmp_path / "s0", shard=(0, 2), jobs=1, progress=False)
    run_grid(SPEC, tmp_path / "s1", shard=(1, 2), jobs=1, progress=False)
    merged = merge_results([tmp_path / "s0", tmp_path / "s1"], tmp_path / "merged")
    assert _comparable(merged) == _comparable(whole)
    # an interrupted run (here: only shard 0 done) resumed in the same folder gives the same results
    run_grid(SPEC, tmp_path / "s0", jobs=1, progress=False)
    assert _comparable(read_results(tmp_path / "s0" / "results.jsonl")) == _comparable(whole)
    lines_before = (tmp_path / "whole" / "results.jsonl").read_text()
    run_grid(SPEC, tmp_path / "whole", jobs=1, progress=False)
    assert (tmp_path / "whole" / "results.jsonl").read_text() == lines_before


def test_cli_evaluate_writes_report(tmp_path, capsys):
    out = tmp_path / "ev"
    assert main(["evaluate", "--systems", "mse-only+ideal", "tosc-sr+ideal", "deep-jscc", "tosc-sr-analog",
                 "--snr-db", "0", "10", "--cbr", "1/16",
                 "--limit", "8", "--jobs", "1", "--out", str(out)]) == 0
    html = (out / "report.html").read_text()
    assert "mse-only+ideal" in html and "tosc-sr+ideal" in html and "data:image/png;base64" in html
    assert (out / "plots" / "psnr_db_vs_snr_awgn_cbr0.0625.png").stat().st_size > 1000
    assert len(read_results(out / "results.jsonl")) == 8

    # the README block from that folder: --print only prints (it used to overwrite the committed
    # figures too); a rewrite replaces the block and copies the figures it links to
    script = Path(__file__).resolve().parents[2] / "scripts" / "readme_eval.py"
    img, readme = tmp_path / "img", tmp_path / "README.md"
    readme.write_text("head\n<!-- readme_eval:begin -->\nOLD-BLOCK-TEXT\n<!-- readme_eval:end -->\ntail\n")
    detail = tmp_path / "eval_results.md"
    common = [sys.executable, str(script), str(out), "--img", str(img), "--readme", str(readme), "--detail", str(detail)]
    printed = subprocess.run(common + ["--print"], capture_output=True, text=True, check=True).stdout
    assert "tosc-sr+ideal" in printed and not img.exists() and "OLD-BLOCK-TEXT" in readme.read_text()
    assert not detail.exists()
    subprocess.run(common, capture_output=True, text=True, check=True)
    text = readme.read_text()
    assert text.startswith("head\n") and text.endswith("tail\n") and "OLD-BLOCK-TEXT" not in text and "tosc-sr+ideal" in text
    assert any(img.glob("eval_panel_psnr_db_vs_*.png"))
    # the who-wins map has a row per channel and SNR; the detail page has every metric, bpp included
    assert "| awgn | 0 |" in text and "| awgn | 10 |" in text and str(detail) in text
    page = detail.read_text()
    assert "**bpp (actual payload), awgn**" in page and "**MS-SSIM, awgn**" in page and "mse-only+ideal" in page


@pytest.mark.parametrize("text", ["2/2", "x", "1/0", "-1/3"])
def test_bad_shards(text):
    with pytest.raises(ConfigError):
        parse_shard(text)


def test_evaluate_needs_a_grid(capsys, tmp_path):
    assert main(["evaluate", "--out", str(tmp_path)]) == 2
    assert "required" in capsys.readouterr().err


def test_report_screenshot_names_what_is_missing(tmp_path):
    script = Path(__file__).resolve().parents[2] / "scripts" / "report_screenshot.py"
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "nope.html"), "--out", str(tmp_path / "s.png")],
                          capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.startswith("error: ") and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "s.png").exists()
