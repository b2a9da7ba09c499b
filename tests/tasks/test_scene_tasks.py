import pytest
import torch

from tosc.data.scenes import make_scenes
from tosc.errors import ConfigError, DataError
from tosc.tasks.detection import build_detector, detect, detection_map, load_detector, train_detector
from tosc.tasks.scene_scores import SceneTasks, score_scenes
from tosc.tasks.scenes import (HogMLP, SceneCNN, hog_features, load_scene_classifier, multilabel_scores,
                               predict_present, scene_segmentation_iou, train_scene_classifier)
from tosc.tasks.segmentation import build_segmenter


@pytest.fixture(scope="module")
def scenes():
    return make_scenes("test", n=24)


def test_multilabel_scores_by_hand():
    truth = torch.tensor([[1, 0, 1], [0, 1, 0], [1, 0, 0], [0, 0, 0]], dtype=torch.bool)
    guess = torch.tensor([[1, 0, 1], [0, 1, 1], [0, 0, 0], [0, 0, 0]], dtype=torch.bool)
    scores = multilabel_scores(guess, truth)
    assert scores["exact_set_accuracy"] == pytest.approx(2 / 4)
    # class 0: tp 1, fn 1 -> 2/3; class 1: tp 1 -> 1; class 2: tp 1, fp 1 -> 2/3
    assert scores["mean_f1"] == pytest.approx((2 / 3 + 1 + 2 / 3) / 3)
    with pytest.raises(DataError):
        multilabel_scores(guess[:2], truth)


def test_detection_map_rewards_right_boxes_and_classes(scenes):
    targets = scenes.detection_targets()
    perfect = [{"boxes": t["boxes"], "scores": torch.ones(len(t["labels"])), "labels": t["labels"]} for t in targets]
    assert detection_map(perfect, targets) == {"map_50": pytest.approx(1.0), "map": pytest.approx(1.0)}
    # boxes shifted by a fifth of their width overlap the truth with IoU 0.8 / 1.2 = 2/3: they pass
    # the IoU thresholds 0.50, 0.55, 0.60 and 0.65 of the ten in mAP@[.5:.95]
    shifted = []
    for p in perfect:
        boxes = p["boxes"].clone()
        boxes[:, [0, 2]] += (boxes[:, 2:3] - boxes[:, 0:1]) / 5
        shifted.append({**p, "boxes": boxes})
    assert detection_map(shifted, targets) == {"map_50": pytest.approx(1.0), "map": pytest.approx(0.4)}
    wrong = [{**p, "labels": (p["labels"] + 1) % 10} for p in perfect]
    assert detection_map(wrong, targets)["map_50"] == pytest.approx(0.0)
    with pytest.raises(DataError):
        detection_map(perfect[:3], targets)


def test_detector_forward_shapes_and_bad_input(scenes):
    torch.manual_seed(0)
    model = build_detector(1, 10, 64, input_size=64)
    model.train()
    losses = model(scenes.images[:4], scenes.detection_targets()[:4])
    assert set(losses) == {"classification", "bbox_regression", "bbox_ctrness"}
    out = detect(model, scenes.images[:3])
    assert len(out) == 3 and all(set(d) == {"boxes", "scores", "labels"} for d in out)
    with pytest.raises(DataError):
        model(torch.zeros(2, 3, 64, 64))
    with pytest.raises(ConfigError):
        build_detector(2, 10, 64)


@pytest.mark.slow  # three short detector trainings: about a minute on a loaded machine
def test_detector_training_resumes_to_the_same_weights(tmp_path):
    train, val = make_scenes("train", n=24), make_scenes("validation", n=8)
    kw = dict(epochs=2, batch_size=8, input_size=64, fpn_channels=32, progress=False)
    whole = train_detector(train, val, state=tmp_path / "a.state", out=tmp_path / "a.pt", **kw)

    class Killed(Exception):
        pass

    def die(epoch, _):
        raise Killed

    with pytest.raises(Killed):
        train_detector(train, val, state=tmp_path / "b.state", out=tmp_path / "b.pt", on_epoch=die, **kw)
    resumed = train_detector(train, val, state=tmp_path / "b.state", out=tmp_path / "b.pt", **kw)
    a, b = load_detector(path=tmp_path / "a.pt"), load_detector(path=tmp_path / "b.pt")
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), name
    assert [h["map_50"] for h in whole["history"]] == [h["map_50"] for h in resumed["history"]]
    with pytest.raises(ConfigError):  # a state file of another configuration is refused
        train_detector(train, val, state=tmp_path / "b.state", out=tmp_path / "c.pt", **{**kw, "epochs": 3})
    with pytest.raises(ConfigError):  # a start of another shape is refused
        train_detector(train, val, state=tmp_path / "d.state", out=tmp_path / "d.pt", init_from=tmp_path / "a.pt",
                       **{**kw, "fpn_channels": 64})


def test_detector_noise_augmentation_is_8_bit_seeded_and_on_about_half_the_scenes(scenes):
    from tosc.tasks.detection import _noisy

    images = scenes.images[:24]
    a = _noisy(images, 6.0, torch.Generator().manual_seed(3))
    b = _noisy(images, 6.0, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.shape == images.shape
    assert torch.equal((a * 255).round() / 255, a) and a.min() >= 0 and a.max() <= 1
    changed = (a != images).flatten(1).any(1)
    assert 4 <= int(changed.sum()) <= 20  # a random half of 24
    assert (a - images).abs().max() > 1 / 255  # noise of several grey levels, not a rounding
    with pytest.raises(ConfigError):
        train_detector(scenes, scenes, state="unused.state", noise_max=-1.0)


def test_hog_classifier_is_not_a_cnn_and_takes_images(scenes):
    feats = hog_features(scenes.images[:2])
    assert feats.shape == (2, 7 * 7 * 2 * 2 * 9)
    model = HogMLP(1, 10, (64, 64))
    assert not any(isinstance(m, torch.nn.Conv2d) for m in model.modules())
    assert model(scenes.images[:5]).shape == (5, 10)
    rgb = make_scenes("test", n=2, rgb=True)
    assert HogMLP(3, 10, (64, 64))(rgb.images).shape == (2, 10)


def test_scene_classifier_trains_and_loads(tmp_path):
    train, val = make_scenes("train", n=64), make_scenes("validation", n=16)
    for arch in ("scene-cnn", "hog-mlp"):
        metrics = train_scene_classifier(arch, train, val, epochs=1, batch_size=32, out=tmp_path / f"{arch}.pt",
                                         progress=False)
        assert 0.0 <= metrics["validation_mean_f1"] <= 1.0
        model = load_scene_classifier(path=tmp_path / f"{arch}.pt")
        assert predict_present(model, val.images).shape == (16, 10)
    with pytest.raises(ConfigError):
        train_scene_classifier("resnet-9000", train, val, out=tmp_path / "x.pt")


def test_score_scenes_keys_and_ranges(scenes):
    torch.manual_seed(0)
    tasks = SceneTasks(classifiers={"toy": SceneCNN(1, 10).eval()}, detector=build_detector(1, 10, 64, 64).eval(),
                       segmenter=build_segmenter(1, (64, 64)).eval())
    out = score_scenes(scenes.images[:6], scenes, tasks)
    assert set(out) == {"det_map_50", "det_map", "scene_exact_toy", "scene_f1_toy", "scene_seg_iou"}
    assert all(0.0 <= v <= 1.0 for v in out.values())
    assert scene_segmentation_iou(tasks.segmenter, scenes.images[:6], scenes.masks[:6]) == out["scene_seg_iou"]
    with pytest.raises(DataError):
        score_scenes(torch.zeros(3, 3, 64, 64), scenes, tasks)


def test_shipped_scene_networks_score_clean_scenes_well_and_noisy_ones_worse():
    from tosc.tasks.scene_scores import load_scene_tasks

    data = make_scenes("test", n=200)
    tasks = load_scene_tasks()
    clean = score_scenes(data.images, data, tasks)
    # floors well below the measured clean scores on these scenes (README, scenes section); the
    # detector's sit just above its stage-5 weights' (0.779 / 0.644 on 2,000 test scenes)
    floors = {"det_map_50": 0.8, "det_map": 0.68, "scene_f1_scene-classifier-cnn": 0.5,
              "scene_f1_scene-classifier-hog": 0.45, "scene_seg_iou": 0.9}
    for key, floor in floors.items():
        assert clean[key] > floor, (key, clean[key])
    noisy = (data.images + 0.3 * torch.randn(data.images.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    worse = score_scenes(noisy, data, tasks)
    for key in floors:
        assert worse[key] < clean[key], (key, worse[key], clean[key])


def test_shipped_scene_classifiers_ignore_noise_of_half_a_grey_level():
    """A held-out judge must judge the scene, not whether a decoded background is exactly zero:
    with skimage's HOG regulariser (1e-5) noise of sigma 0.5/255 took the HOG network's exact-set
    accuracy from 0.21 to 0.03 on validation scenes (tosc.tasks.scenes.HOG_EPS)."""
    data = make_scenes("validation", n=300)
    faint = (data.images + 0.5 / 255 * torch.randn(data.images.shape, generator=torch.Generator().manual_seed(1))
             ).clamp(0, 1)
    for name in ("scene-classifier-hog", "scene-classifier-cnn"):
        net = load_scene_classifier(name)
        clean = multilabel_scores(predict_present(net, data.images), data.present)
        noisy = multilabel_scores(predict_present(net, faint), data.present)
        assert noisy["mean_f1"] > clean["mean_f1"] - 0.05, (name, clean, noisy)
        assert noisy["exact_set_accuracy"] > clean["exact_set_accuracy"] - 0.05, (name, clean, noisy)
