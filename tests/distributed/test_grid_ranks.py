"""`tosc evaluate` under torchrun: one slice per rank, merged by rank 0 (the in-process
--shard/--merge equivalence is tests/evaluation/test_grid.py)."""

from fractions import Fraction

import pytest

from tosc.evaluation import GridSpec, run_grid
from tosc.evaluation.grid import record_key
from tosc.results import read_results

from .conftest import run, standalone

SPEC = GridSpec(systems=("tosc-sr+ideal", "jpeg-payload+ldpc"), channels=("awgn",), snrs_db=(0.0, 10.0),
                cbrs=(Fraction(1, 16), Fraction(1, 4)), limit=6, seed=3)


def _by_point(records) -> dict:
    """Records keyed by their point, without wall-clock timings."""
    return {record_key(r): {k: v for k, v in r.to_dict().items() if k != "timings_s"} for r in records}


@pytest.mark.slow
def test_grid_under_torchrun_equals_one_process(tmp_path):
    whole = run_grid(SPEC, tmp_path / "whole", jobs=1, progress=False)
    out = tmp_path / "ranks"
    proc = run(standalone(2) + ["-m", "tosc", "evaluate", "--systems", *SPEC.systems, "--snr-db", "0", "10",
                                "--cbr", "1/16", "1/4", "--limit", "6", "--seed", "3", "--device", "cpu",
                                "--out", str(out)])
    assert proc.stdout.count("operating points") == 1  # rank 0 alone reports
    merged = read_results(out / "results.jsonl")
    a, b = _by_point(merged), _by_point(whole)
    assert len(merged) == 8 and a.keys() == b.keys()
    differing = {k: [f for f in a[k] if a[k][f] != b[k][f]] for k in a if a[k] != b[k]}
    assert not differing, differing
    # each rank ran its own slice, resumably, in its own folder
    for rank in (0, 1):
        assert len(read_results(out / "shards" / f"rank{rank}-of-2" / "results.jsonl")) == 4
    assert sorted(p.name for p in (out / "examples").iterdir()) == \
        sorted(p.name for p in (tmp_path / "whole" / "examples").iterdir())
    assert (out / "report.html").stat().st_size > 1000
