import pytest
import torch

from tosc import registry
from tosc.data import load_dataset
from tosc.errors import ConfigError, DataError
from tosc.tasks import (FOREGROUND_THRESHOLD, SEGMENTATION_TASK, item_masks, load_segmenter, mean_iou,
                        segmentation_iou, train_segmenter)
from tosc.tasks.segmentation import build_segmenter


def test_masks_threshold_and_fill_holes():
    img = torch.zeros(1, 1, 8, 8)
    img[0, 0, 1:7, 1:7] = 0.8
    img[0, 0, 3:5, 3:5] = 0.0  # a dark hole inside the item: filled
    img[0, 0, 0, 7] = FOREGROUND_THRESHOLD  # at the threshold: background
    mask = item_masks(img)[0]
    assert mask.dtype == torch.bool and mask.sum() == 36 and mask[3, 3] and not mask[0, 7]
    with pytest.raises(DataError):
        item_masks(torch.zeros(8, 8))


def test_mean_iou_values():
    a = torch.zeros(2, 4, 4, dtype=torch.bool)
    b = a.clone()
    a[0, :2], b[0, :1] = True, True  # IoU 4/8
    assert mean_iou(a, b) == pytest.approx((0.5 + 1.0) / 2)  # the second pair is empty in both: 1
    with pytest.raises(DataError):
        mean_iou(a, b[:1])


def test_shipped_segmenter_is_registered_and_good_on_clean_images_only():
    assert SEGMENTATION_TASK in registry.names("task")
    net = registry.get("task", SEGMENTATION_TASK).factory()
    test = load_dataset("fashion-mnist", "test", limit=300)
    assert segmentation_iou(net, test.images, test.images) > 0.95
    blank = torch.full_like(test.images, test.images.mean().item())
    assert segmentation_iou(net, blank, test.images) < 0.8


@pytest.mark.slow
def test_training_writes_a_loadable_checkpoint(tmp_path):
    torch.manual_seed(0)
    metrics = train_segmenter(epochs=1, limit=256, batch_size=128, out=tmp_path / "seg.pt", progress=False)
    assert 0.0 <= metrics["test_iou"] <= 1.0
    net = load_segmenter(path=tmp_path / "seg.pt")
    assert not any(p.requires_grad for p in net.parameters())
    assert net(torch.zeros(2, 1, 28, 28)).shape == (2, 28, 28)
    with pytest.raises(ConfigError):
        build_segmenter(1, (30, 30))
