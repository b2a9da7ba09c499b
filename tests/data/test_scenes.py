import numpy as np
import pytest
import torch

from tosc.cli import main
from tosc.data import load_dataset
from tosc.data import scenes as scenes_module
from tosc.data.fashion_mnist import _read_all, find_root
from tosc.data.scenes import MAX_ITEMS, SceneSet, item_masks_28, make_scenes, render_scenes, scene_layout
from tosc.errors import ConfigError


def _fresh(split, **kw):
    """Scenes generated anew, not served from the in-process cache."""
    scenes_module._make_cached.cache_clear()
    return make_scenes(split, **kw)


def test_scenes_are_deterministic_per_seed_and_prefix_stable():
    a = _fresh("test", n=40, seed=3)
    b = _fresh("test", n=40, seed=3)
    c = _fresh("test", n=40, seed=4)
    longer = _fresh("test", n=60, seed=3)
    for field in ("images", "object_classes", "boxes", "instance_map", "source_indices", "labels"):
        assert torch.equal(getattr(a, field), getattr(b, field)), field
        assert torch.equal(getattr(a, field), getattr(longer, field)[:40]), field
    assert not torch.equal(a.images, c.images)


@pytest.mark.parametrize("split", ["train", "validation", "test"])
def test_scenes_are_split_pure_and_rebuilt_from_their_recorded_items(split):
    data = make_scenes(split, n=300, seed=5)
    fashion = load_dataset("fashion-mnist", split, seed=5)
    used = data.source_indices[data.source_indices >= 0]
    assert data.source_file == ("test" if split == "test" else "train")
    # every item comes from this split of Fashion-MNIST (train and validation carved by the same seed)
    assert set(used.tolist()) <= set(fashion.indices.tolist())
    if split != "test":
        other = load_dataset("fashion-mnist", "validation" if split == "train" else "train", seed=5)
        assert not set(used.tolist()) & set(other.indices.tolist())
    # the recorded items really are the pixels' source: painting them from the official file gives the scenes
    which, layout = scene_layout(split, n=300, seed=5)
    items = _read_all(find_root(None).resolve())[f"{which}_images"][:, 0]
    assert set(layout.source_indices[layout.source_indices >= 0].tolist()) >= set(used.tolist())
    images, instance = render_scenes(layout, items, item_masks_28(items))
    assert torch.equal(torch.from_numpy(images).float() / 255, data.images)
    assert torch.equal(torch.from_numpy(instance), data.instance_map)
    # and the classes are those of the recorded items
    file_labels = _read_all(find_root(None).resolve())[f"{which}_labels"]
    valid = data.object_classes >= 0
    assert torch.equal(data.object_classes[valid], torch.from_numpy(file_labels)[data.source_indices[valid]].long())


@pytest.mark.parametrize("rgb", [False, True])
def test_boxes_are_the_tight_boxes_of_the_masks(rgb):
    data = make_scenes("test", n=200, rgb=rgb)
    assert isinstance(data, SceneSet) and data.images.shape == (200, 3 if rgb else 1, 64, 64)
    per_scene = (data.object_classes >= 0).sum(1)
    assert per_scene.min() >= 1 and per_scene.max() <= MAX_ITEMS and len(set(per_scene.tolist())) == MAX_ITEMS
    for i in range(len(data)):
        for k in range(MAX_ITEMS):
            mask = data.item_mask(k)[i]
            if data.object_classes[i, k] < 0:
                assert not mask.any() and not data.boxes[i, k].any()
                continue
            ys, xs = torch.nonzero(mask, as_tuple=True)
            expected = torch.tensor([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=torch.float32)
            assert torch.equal(data.boxes[i, k], expected), (i, k)
    # the largest visible item gives the single label; multi-hot targets list every class present
    areas = torch.stack([data.item_mask(k).flatten(1).sum(1) for k in range(MAX_ITEMS)], 1)
    assert torch.equal(data.labels, data.object_classes.gather(1, areas.argmax(1, keepdim=True))[:, 0])
    assert torch.equal(data.present.sum(1), torch.tensor([len(set(c[c >= 0].tolist())) for c in data.object_classes]))
    # 8-bit pictures like every other image set
    assert torch.equal(data.images, (data.images * 255).round() / 255)


def test_overlap_is_bounded_and_items_stay_visible():
    data = make_scenes("test", n=400)
    boxes, valid = data.boxes, data.object_classes >= 0
    area = (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])
    worst = 0.0
    for a in range(MAX_ITEMS):
        for b in range(a + 1, MAX_ITEMS):
            both = valid[:, a] & valid[:, b]
            w = (torch.minimum(boxes[:, a, 2], boxes[:, b, 2]) - torch.maximum(boxes[:, a, 0], boxes[:, b, 0])).clamp(0)
            h = (torch.minimum(boxes[:, a, 3], boxes[:, b, 3]) - torch.maximum(boxes[:, a, 1], boxes[:, b, 1])).clamp(0)
            ratio = (w * h / torch.minimum(area[:, a], area[:, b]))[both]
            worst = max(worst, ratio.max().item() if len(ratio) else 0.0)
    # the bound is 0.2 on the full items' boxes; visible boxes of partly covered items can be a bit smaller
    assert worst <= 0.5
    assert valid.sum() > 2 * len(data)


def test_rgb_scenes_share_the_layout_and_have_textured_coloured_backgrounds():
    grey, rgb = make_scenes("test", n=50), make_scenes("test", n=50, rgb=True)
    assert torch.equal(grey.boxes, rgb.boxes) and torch.equal(grey.object_classes, rgb.object_classes)
    background = ~rgb.masks
    pixels = rgb.images.permute(0, 2, 3, 1)[background]
    assert pixels.std(0).min() > 0.02  # not flat
    assert (pixels.max(1).values - pixels.min(1).values).mean() > 0.02  # not grey
    assert grey.images[:, 0][~grey.masks].max() == 0  # grey scenes keep Fashion-MNIST's black background


def test_registered_loaders_limits_and_bad_arguments():
    data = load_dataset("fashion-scenes", "test", limit=8)
    assert len(data) == 8 and data.boxes.shape == (8, MAX_ITEMS, 4) and data.instance_map.shape == (8, 64, 64)
    assert len(data.detection_targets()) == 8
    assert make_scenes("test", n=4, size=96).images.shape == (4, 1, 96, 96)
    with pytest.raises(ConfigError):
        make_scenes("test", n=0)
    with pytest.raises(ConfigError):
        make_scenes("test", n=4, size=16)
    with pytest.raises(ConfigError):
        make_scenes("dev", n=4)
    with pytest.raises(ConfigError):
        make_scenes("test", n=4, transform=lambda x: x[..., :32, :32])


def test_cli_data_info_reports_scenes(capsys, monkeypatch):
    monkeypatch.setattr(scenes_module, "SCENE_COUNTS", {"train": 30, "validation": 10, "test": 20})
    assert main(["data", "info", "fashion-scenes"]) == 0
    out = capsys.readouterr().out
    assert "1x64x64" in out and "= 30 train + 10 validation" in out and "items per scene" in out
    assert main(["data", "info", "fashion-scenes-rgb", "--json"]) == 0
    assert '"scenes"' in capsys.readouterr().out
