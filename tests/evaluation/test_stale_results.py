"""A resumed grid recomputes the points that were computed with other model files."""

import json
from fractions import Fraction

from tosc.evaluation import GridSpec, run_grid
from tosc.evaluation.grid import model_fingerprint

SPEC = GridSpec(systems=("jpeg2000-payload+ldpc", "deep-jscc"), channels=("awgn",), snrs_db=(10.0,),
                cbrs=(Fraction(1, 8),), limit=4)


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_records_name_their_model_files_and_stale_ones_are_redone(tmp_path, capsys):
    first = {r.system: r for r in run_grid(SPEC, tmp_path, jobs=1, progress=False)}
    for name, record in first.items():
        assert record.config["model_files"] == model_fingerprint(name) is not None
    assert model_fingerprint("jpeg2000-payload+ideal") is None  # no model, no coded link
    # as if the JSCC point had been computed with other weights and the JPEG 2000 one by an
    # older tosc that wrote no fingerprint: the first is redone, the second kept as it is
    results = tmp_path / "results.jsonl"
    lines = _lines(results)
    for line in lines:
        line["metrics"]["psnr_db"] = -1.0
        if line["system"] == "deep-jscc":
            line["config"]["model_files"] = "0" * 16
        else:
            del line["config"]["model_files"]
    results.write_text("".join(json.dumps(line) + "\n" for line in lines))
    again = {r.system: r for r in run_grid(SPEC, tmp_path, jobs=1, progress=True)}
    said = capsys.readouterr().err
    assert "1 result(s) were computed with other model files" in said
    assert "1 result(s) were written by an older tosc" in said
    assert again["deep-jscc"].metrics["psnr_db"] == first["deep-jscc"].metrics["psnr_db"]
    assert again["jpeg2000-payload+ldpc"].metrics["psnr_db"] == -1.0
    assert sorted(r["system"] for r in _lines(results)) == ["deep-jscc", "jpeg2000-payload+ldpc"]
    kept = _lines(tmp_path / "results.stale-1.jsonl")  # nothing is lost
    assert [r["config"].get("model_files") for r in kept if r["system"] == "deep-jscc"] == ["0" * 16]
    run_grid(SPEC, tmp_path, jobs=1, progress=False)  # nothing stale now: nothing set aside again
    assert not (tmp_path / "results.stale-2.jsonl").exists()
