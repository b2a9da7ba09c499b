"""The same seed gives the same results file (timings aside) and the same received images."""

from fractions import Fraction

import numpy as np

from tosc.evaluation import GridSpec, run_grid
from tosc.io import load_image_arrays


def _without_timings(path):
    import json

    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for r in rows:
        r.pop("timings_s")
    return rows


def test_same_seed_same_results_file(tmp_path):
    # block fading at a low SNR: some images fail at random, and that must repeat too
    spec = GridSpec(systems=("tosc-sr+ldpc", "jpeg2000-payload+ldpc"), channels=("rayleigh-block",),
                    snrs_db=(1.0,), cbrs=(Fraction(1, 4),), limit=8, seed=3)
    run_grid(spec, tmp_path / "a", jobs=1, progress=False)
    run_grid(spec, tmp_path / "b", jobs=1, progress=False)
    a, b = _without_timings(tmp_path / "a" / "results.jsonl"), _without_timings(tmp_path / "b" / "results.jsonl")
    assert len(a) == 2 and a == b
    assert all("seg_iou" in r["metrics"] for r in a)
    for example in sorted((tmp_path / "a" / "examples").glob("*.npz")):
        x, y = load_image_arrays(example), load_image_arrays(tmp_path / "b" / "examples" / example.name)
        assert np.array_equal(x["images"], y["images"]) and np.array_equal(x["ok"], y["ok"])
    # another seed draws other noise: the received images differ somewhere
    other = GridSpec(**{**spec.__dict__, "seed": 4})
    run_grid(other, tmp_path / "c", jobs=1, progress=False)
    differs = [not np.array_equal(load_image_arrays(e)["images"],
                                  load_image_arrays(tmp_path / "c" / "examples" / e.name)["images"])
               for e in sorted((tmp_path / "a" / "examples").glob("*.npz"))]
    assert any(differs)
