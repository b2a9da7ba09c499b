"""Evaluation on scenes: the scene tasks score every record, systems that cannot code the images
are refused before any work, default selections follow registry metadata."""

import dataclasses
import json
import math
from fractions import Fraction

import pytest
import torch

from tosc import registry
from tosc.cli import main
from tosc.data import load_dataset
from tosc.errors import IncompatibleSystemError
from tosc.evaluation import GridSpec, OperatingPoint, run_grid, run_point, write_report
from tosc.evaluation import grid as grid_module
from tosc.evaluation.compat import check_codes, default_systems, image_support
from tosc.evaluation.point import scene_task_networks
from tosc.results import read_results
from tosc.zoo import zoo_dir

SCENE_TASKS = registry.select("task", images="scenes", channels=1)  # the networks of grey scenes


def _scene_zoo(tmp_path, monkeypatch, codec_links: dict[str, str] | None = None, leave_out: tuple[str, ...] = ()):
    """A zoo with the shipped task networks and codecs (but those named in ``leave_out``), an
    untrained 1 x 64 x 64 Deep JSCC model as ``deep-jscc`` (so that an analog system codes scenes
    whatever is shipped) and, optionally, codec files linked to shipped ones (``{name: shipped name}``)."""
    from tosc.checkpoint import save_checkpoint
    from tosc.jscc.model import DeepJSCC, JSCCConfig

    real = zoo_dir()
    zoo = tmp_path / "zoo"
    (zoo / "codecs").mkdir(parents=True)
    (zoo / "jscc").mkdir()
    (zoo / "tasks").symlink_to(real / "tasks")
    for f in (real / "codecs").glob("*.pt"):
        if f.stem not in leave_out and f.stem not in (codec_links or {}):
            (zoo / "codecs" / f.name).symlink_to(f)
    for new, shipped in (codec_links or {}).items():
        (zoo / "codecs" / f"{new}.pt").symlink_to(real / "codecs" / f"{shipped}.pt")
    torch.manual_seed(0)
    config = JSCCConfig(in_channels=1, image_hw=(64, 64), max_cbr=0.5, width=8)
    save_checkpoint(zoo / "jscc" / "deep-jscc.pt", kind="jscc", arch="deep-jscc",
                    state_dict=DeepJSCC(config).state_dict(),
                    config={"model": {**dataclasses.asdict(config), "image_hw": [64, 64]}}, variant="deep-jscc")
    monkeypatch.setenv("TOSC_ZOO", str(zoo))
    monkeypatch.setattr(grid_module, "_WORKER_CACHE", {})  # no system built from the shipped zoo
    return zoo


def test_eight_scenes_through_learned_classic_and_analog_systems(tmp_path, monkeypatch):
    _scene_zoo(tmp_path, monkeypatch)
    spec = GridSpec(systems=("mse-only+ideal", "jpeg2000-payload+ldpc", "deep-jscc"), channels=("awgn",),
                    snrs_db=(20.0,), cbrs=(Fraction(1, 2),), dataset="fashion-scenes", limit=8, seed=1)
    records = run_grid(spec, tmp_path / "ev", jobs=1, progress=False)
    assert sorted(r.system for r in records) == sorted(spec.systems)
    grey_classifiers = registry.select("task", images="scenes", output="present", channels=1)
    scored_by = {"det_map_50", "det_map", "scene_seg_iou",
                 *(f"scene_{kind}_{name}" for name in grey_classifiers for kind in ("exact", "f1"))}
    for r in records:
        assert r.dataset == "fashion-scenes" and r.n_images == 8
        assert set(r.config["task_networks"]) == scored_by
        assert set(r.config["task_networks"].values()) == set(SCENE_TASKS)
        for key in scored_by:
            assert 0.0 <= r.metrics[key] <= 1.0, (r.system, key)
        assert "accuracy" not in r.metrics  # the one-label classifiers do not judge scenes
        assert r.metrics["failure_rate"] < 1.0, r.system  # each system delivered something
    # the scores are those of the scene tasks on exactly what arrived
    data = load_dataset("fashion-scenes", "test", limit=8)
    tx, again = run_point(grid_module.build_for("jpeg2000-payload+ldpc", "fashion-scenes"), data.images, data.labels,
                          OperatingPoint("awgn", 20.0, Fraction(1, 2)), dataset="fashion-scenes", split="test",
                          seed=1, scenes=data)
    from tosc.tasks.scene_scores import load_scene_tasks, score_scenes

    direct = score_scenes(tx.received, data, load_scene_tasks())
    assert {k: again.metrics[k] for k in direct} == direct
    (jpeg,) = [r for r in records if r.system == "jpeg2000-payload+ldpc"]
    assert {k: jpeg.metrics[k] for k in direct} == direct


def test_report_shows_scene_metrics(tmp_path):
    from tosc.results import ChannelSpec, RateSpec, ResultRecord

    def record(system, psnr, det):
        metrics = {"psnr_db": psnr, "ms_ssim": 0.9, "det_map_50": det, "det_map": det / 2, "scene_seg_iou": 0.8,
                   "failure_rate": 0.0}
        return ResultRecord(system=system, dataset="fashion-scenes", split="test", n_images=8,
                            channel=ChannelSpec("awgn", 10.0), rate=RateSpec(bpp=0.3, payload_bits_per_image=1200,
                                                                            channel_uses_per_image=512, cbr=0.125),
                            metrics=metrics, config={"mode": "digital", "task_networks": {
                                "det_map_50": "scene-detector-fcos", "det_map": "scene-detector-fcos",
                                "scene_seg_iou": "scene-segmenter-unet"}}, versions={}, git_commit="0" * 40)

    html = write_report(tmp_path, [record("webp+ldpc", 28.0, 0.5), record("jpeg2000+ldpc", 29.0, 0.4)]).read_text()
    assert "<th>det_map_50</th>" in html and "<th>scene_seg_iou</th>" in html and "Scenes: detection" in html
    assert "<td>scene-detector-fcos</td>" in html and "<td>0.500</td>" in html
    assert (tmp_path / "plots" / "det_map_50_vs_snr_awgn_cbr0.125.png").exists()


def test_scenes_are_judged_only_by_networks_of_their_channels():
    assert scene_task_networks((1, 64, 64)) == tuple(SCENE_TASKS)
    colour = scene_task_networks((3, 64, 64))  # the shipped colour-scene classifiers, nothing grey
    assert colour == tuple(registry.select("task", images="scenes", channels=3))
    assert set(colour).isdisjoint(SCENE_TASKS) and len(colour) == 2


def test_the_old_learned_family_is_refused_on_scenes_before_any_work(tmp_path):
    assert image_support("mse-only-family+ldpc").hw == (28, 28)
    assert image_support("mse-only+ldpc").hw is None and image_support("jpeg+ldpc").channels is None
    check_codes("mse-only+ldpc", (1, 64, 64))  # codec v3, trained on items, codes any size
    spec = GridSpec(systems=("jpeg2000-payload+ldpc", "mse-only-family+ldpc"), channels=("awgn",), snrs_db=(10.0,),
                    cbrs=(Fraction(1, 8),), dataset="fashion-scenes", limit=8)
    with pytest.raises(IncompatibleSystemError, match=r"mse-only-family\+ldpc .*1x64x64"):
        run_grid(spec, tmp_path / "ev", jobs=1, progress=False)
    assert not (tmp_path / "ev" / "results.jsonl").exists()


def test_cli_says_which_system_cannot_code_the_scenes(tmp_path, capsys):
    status = main(["evaluate", "--systems", "tosc-sr-family+ldpc", "--dataset", "fashion-scenes", "--snr-db", "10",
                   "--cbr", "1/8", "--limit", "8", "--jobs", "1", "--out", str(tmp_path / "ev")])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1
    assert err[0].startswith("error: tosc-sr-family+ldpc cannot code the 1x64x64 images of fashion-scenes")


def test_default_selections_follow_trained_on(tmp_path, monkeypatch):
    items = default_systems("fashion-mnist", say=None)
    for name in items:
        meta = registry.meta_of("system", name)
        assert meta.get("trained_on", "items") == "items"
        assert meta["family"] != "classic" or (meta["measure"], meta["link"]) == ("payload", "ldpc")
    assert {"tosc-sr+ldpc", "mse-only-family+ldpc", "deep-jscc", "jpeg2000-payload+ldpc"} <= set(items)
    # a scene-trained codec v3 file appears: its systems join the scene selection, not the items one
    _scene_zoo(tmp_path, monkeypatch, {"tosc-sr-v3-scenes": "tosc-sr-v3"}, leave_out=("mse-only-v3-scenes",))
    said = []
    scenes = default_systems("fashion-scenes", say=said.append)
    assert {"jpeg2000+ldpc", "jpeg2000-payload+ldpc", "tosc-sr-v3-scenes+ldpc", "tosc-sr-v3-scenes+ideal"} <= set(scenes)
    for name in scenes:
        meta = registry.meta_of("system", name)
        assert meta["family"] == "classic" and meta["link"] == "ldpc" or meta.get("trained_on") == "scenes"
    assert not any(registry.meta_of("system", n).get("trained_on") == "scenes" for n in
                   default_systems("fashion-mnist", say=None))
    # the scene-trained MSE-only file is missing: left out with a line that says so
    assert "mse-only-v3-scenes+ldpc" not in scenes
    assert any(line.startswith("(leaving out mse-only-v3-scenes+ldpc") for line in said)


def test_fashion_mnist_records_keep_their_keys(tmp_path):
    spec = GridSpec(systems=("jpeg2000-payload+ldpc",), channels=("awgn",), snrs_db=(10.0,), cbrs=(Fraction(1, 8),),
                    limit=4)
    (record,) = run_grid(spec, tmp_path, jobs=1, progress=False)
    assert "task_networks" not in record.config and "det_map_50" not in record.metrics
    assert {"psnr_db", "ms_ssim", "accuracy", "seg_iou"} <= set(record.metrics)
    assert json.loads((tmp_path / "results.jsonl").read_text())["system"] == "jpeg2000-payload+ldpc"
    assert len(read_results(tmp_path / "results.jsonl")) == 1


def test_colour_scenes_through_the_colour_codec_and_a_classic_one(tmp_path):
    spec = GridSpec(systems=("mse-only-v3-scenes-rgb+ldpc", "webp-payload+ldpc"), channels=("awgn",),
                    snrs_db=(20.0,), cbrs=(Fraction(1, 2),), dataset="fashion-scenes-rgb", limit=8, seed=1)
    records = run_grid(spec, tmp_path / "ev", jobs=1, progress=False)
    colour = registry.select("task", images="scenes", output="present", channels=3)
    for r in records:
        assert r.dataset == "fashion-scenes-rgb" and r.metrics["failure_rate"] < 1.0, r.system
        assert set(r.config["task_networks"].values()) == set(colour)  # no grey network judges colour
        assert "det_map_50" not in r.metrics and r.metrics["psnr_db"] > 20.0
    # the grey scene codec refuses colour scenes before any work
    with pytest.raises(IncompatibleSystemError, match=r"mse-only-v3-scenes\+ldpc .*3x64x64"):
        check_codes("mse-only-v3-scenes+ldpc", (3, 64, 64), "fashion-scenes-rgb")


def test_the_demos_scene_selection_leaves_stdout_to_the_names(capsys):
    """The README builds a command from it with $(...): notes about left-out systems (the colour
    codecs cannot code grey scenes) must not land among the names."""
    from tosc.demo import scene_systems

    names = scene_systems()
    said = capsys.readouterr()
    assert said.out == ""
    assert "tosc-sr-v3-scenes+ldpc" in names and not any("rgb" in n for n in names)
    assert "(leaving out tosc-sr-v3-scenes-rgb+ldpc" in said.err


def test_records_carry_the_psnr_of_the_mean_squared_error():
    """psnr_db averages per-image dB, with a lossless image at the cap; the PSNR of the mean MSE
    does not let one perfect image outweigh a bad one."""
    from tosc.evaluation.point import score_images

    reference = load_dataset("fashion-scenes", "test", limit=2).images
    noisy = (reference[1:] + 0.1).clamp(0, 1)
    metrics = score_images(torch.cat([reference[:1], noisy]), reference, torch.full((2,), -1), tasks=(), segmenter=None)
    bad = -10 * torch.log10(((noisy - reference[1:]) ** 2).mean()).item()
    assert metrics["psnr_db"] == pytest.approx((100.0 + bad) / 2, abs=1e-3)  # lossless counts 100 dB
    assert metrics["psnr_db_of_mean_mse"] == pytest.approx(bad + 10 * math.log10(2), abs=1e-3)
