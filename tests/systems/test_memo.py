"""The noise-free caches (tosc.systems.memo) change no result: a small grid gives the same
records and received images with them off and on, and with them on the work is done once."""

import json
from fractions import Fraction

import numpy as np
import pytest
import torch

from tosc.evaluation import GridSpec, run_grid
from tosc.io import load_image_arrays
from tosc.systems import digital
from tosc.systems.memo import Memo, batch_key, bits_key, caching

# one learned family and codec v3 (digital), one classic codec, one analog system; both ends
# of the grid on two channel kinds. At 0 dB the LDPC link carries 34 bits at CBR 1/8 on either
# channel (every stream truncated to fit; one budget at two points) and 73 or 92 at CBR 1/4
# (images 5 and 6 truncated again, to another length); at 20 dB CBR 1/2, 1333 or 2136.
SPEC = GridSpec(systems=("tosc-sr-family+ldpc", "tosc-sr+ideal", "webp-payload+ldpc", "deep-jscc"),
                channels=("awgn", "rayleigh-fast"), snrs_db=(0.0, 20.0), cbrs=(Fraction(1, 8), Fraction(1, 4), Fraction(1, 2)),
                limit=7, seed=5)


def _records(folder):
    rows = [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines()]
    for r in rows:
        r.pop("timings_s")
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True))


def _count_calls(monkeypatch, owner, name):
    calls = []
    original = getattr(owner, name)

    def counted(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return calls


def test_grid_results_identical_with_and_without_caches(tmp_path, monkeypatch):
    analysed = _count_calls(monkeypatch, digital.LearnedFamilySource, "_analyse")
    decodes = _count_calls(monkeypatch, digital.LearnedFamilySource, "decode")
    with caching(False):
        run_grid(SPEC, tmp_path / "off", jobs=1, progress=False)
    points = len(SPEC.channels) * len(SPEC.snrs_db) * len(SPEC.cbrs)
    decodes_off = len(decodes)
    assert len(analysed) == points  # without the cache: the family encodes the batch at every point
    analysed.clear(), decodes.clear()
    run_grid(SPEC, tmp_path / "on", jobs=1, progress=False)
    # at most once (another test in this process may have filled the cache); the same stream
    # arriving at several points is decoded once
    assert len(analysed) <= 1 and len(decodes) < decodes_off
    off, on = _records(tmp_path / "off"), _records(tmp_path / "on")
    assert len(off) == len(SPEC.systems) * points and on == off
    # the points reach truncation, fallbacks and fitted streams, so the comparison covers them
    learned = [r for r in on if r["system"] == "tosc-sr-family+ldpc"]
    assert sum(r["config"]["images_truncated_to_fit"] > 0 for r in learned) >= 3
    assert any(r["metrics"]["failure_rate"] == 0.0 for r in learned)
    for example in sorted((tmp_path / "off" / "examples").glob("*.npz")):
        a, b = load_image_arrays(example), load_image_arrays(tmp_path / "on" / "examples" / example.name)
        assert np.array_equal(a["images"], b["images"]) and np.array_equal(a["ok"], b["ok"])


def test_memo_bounds_keys_and_switch():
    memo = Memo(2)
    computed = []
    value = lambda v: (lambda: computed.append(v) or v)  # noqa: E731
    assert memo.get("a", value(1)) == 1 and memo.get("a", value(9)) == 1 and computed == [1]
    memo.get("b", value(2)), memo.get("a", value(9)), memo.get("c", value(3))  # "b" is the least recent
    assert len(memo) == 2 and memo.get("b", value(4)) == 4 and computed == [1, 2, 3, 4]
    with caching(False):
        assert memo.get("a", value(5)) == 5  # computed, not looked up
    with pytest.raises(ZeroDivisionError):  # an error is raised and nothing cached
        memo.get("z", lambda: 1 // 0)
    assert memo.get("z", value(6)) == 6
    weighed = Memo(10, max_bytes=8, weigh=len)
    weighed.get("x", lambda: b"12345"), weighed.get("y", lambda: b"6789")
    assert len(weighed) == 1  # 9 bytes > 8: the older entry went
    # keys follow content: equal values, equal keys; one changed value, another key
    images = torch.rand(3, 1, 4, 4)
    assert batch_key(images) == batch_key(images.clone()) != batch_key(images.double())
    changed = images.clone()
    changed[2, 0, 3, 3] += 1e-6
    assert batch_key(changed) != batch_key(images)
    bits = np.array([1, 0, 1], np.uint8)
    assert bits_key(bits) == bits_key(bits.astype(np.int64)) != bits_key(np.array([1, 0, 1, 0], np.uint8))
