import json
import math

import pytest

from tosc.errors import CorruptFileError
from tosc.results import ChannelSpec, RateSpec, ResultRecord, append_result, read_result, read_results, write_result


def _record(**overrides):
    fields = dict(
        system="jpeg+ldpc",
        dataset="fashion-mnist",
        split="test",
        n_images=8,
        channel=ChannelSpec("awgn", 10.0),
        rate=RateSpec(bpp=1.5, payload_bits_per_image=1176.0, channel_uses_per_image=98.0, cbr=0.125),
        metrics={"psnr_db": 21.5, "accuracy": 0.75, "ms_ssim": float("nan")},
        config={"quality": 10},
        seed=3,
    )
    fields.update(overrides)
    return ResultRecord(**fields)


def test_round_trip_and_provenance(tmp_path):
    record = _record()
    write_result(tmp_path / "result.json", record)
    raw = json.loads((tmp_path / "result.json").read_text())
    for key in ("system", "dataset", "split", "n_images", "channel", "rate", "metrics", "timings_s",
                "config", "seed", "versions", "git_commit"):
        assert key in raw
    assert raw["channel"] == {"kind": "awgn", "snr_db": 10.0, "csi": "perfect"}
    assert raw["metrics"]["ms_ssim"] is None  # NaN stored as JSON null
    assert "torch" in raw["versions"] and raw["versions"]["numpy"]
    back = read_result(tmp_path / "result.json")
    assert back.rate.bpp == 1.5 and back.metrics["psnr_db"] == 21.5 and back.seed == 3


def test_jsonl_of_records(tmp_path):
    for snr in (0.0, 5.0):
        append_result(tmp_path / "results.jsonl", _record(channel=ChannelSpec("awgn", snr)))
    assert [r.channel.snr_db for r in read_results(tmp_path / "results.jsonl")] == [0.0, 5.0]


def test_not_a_record(tmp_path):
    (tmp_path / "r.json").write_text('{"system": "x"}')
    with pytest.raises(CorruptFileError, match="not a tosc results record"):
        read_result(tmp_path / "r.json")
    (tmp_path / "r.json").write_text("{")
    with pytest.raises(CorruptFileError, match="not valid JSON"):
        read_result(tmp_path / "r.json")


def test_duplicate_points_are_kept_once(tmp_path):
    path = tmp_path / "results.jsonl"
    key = lambda r: (r["system"], r["channel"]["snr_db"])  # noqa: E731
    assert append_result(path, _record(), key=key)
    assert not append_result(path, _record(metrics={"psnr_db": 1.0}), key=key)  # same point: not added
    assert append_result(path, _record(channel=ChannelSpec("awgn", 5.0)), key=key)
    assert len(read_results(path)) == 2
    # a file that already holds a point twice (older versions, two runs at once) reads it once
    path.write_text(path.read_text() * 2)
    assert len(read_results(path)) == 4 and len(read_results(path, key=key)) == 2
    assert read_results(path, key=key)[0].metrics["psnr_db"] == 21.5
