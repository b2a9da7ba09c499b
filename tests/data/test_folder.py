import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from tosc.data import Resize, load_dataset
from tosc.errors import CorruptFileError, DataError, DatasetNotFoundError


def _write_fashion_folder(root, fashion, per_class=5):
    """Real Fashion-MNIST images written as PNGs into root/<class>/."""
    counts = {}
    for image, label in zip(fashion.images, fashion.labels):
        name = fashion.classes[label].replace("/", "-")
        if counts.get(name, 0) >= per_class:
            continue
        counts[name] = counts.get(name, 0) + 1
        (root / name).mkdir(parents=True, exist_ok=True)
        Image.fromarray((image[0].numpy() * 255).round().astype(np.uint8)).save(root / name / f"{counts[name]}.png")
    return counts


def test_grayscale_folder_round_trips_pixels(tmp_path, fashion_test_slice):
    counts = _write_fashion_folder(tmp_path, fashion_test_slice)
    parts = {s: load_dataset("folder", s, root=tmp_path, seed=1) for s in ("train", "validation", "test")}
    assert sum(len(p) for p in parts.values()) == sum(counts.values())
    for part in parts.values():
        assert part.images.shape[1:] == (1, 28, 28)
        assert part.classes == sorted(counts)
    all_idx = torch.cat([p.indices for p in parts.values()]).sort().values
    assert torch.equal(all_idx, torch.arange(sum(counts.values())))
    # seeded: same seed, same split
    again = load_dataset("folder", "test", root=tmp_path, seed=1)
    assert torch.equal(again.indices, parts["test"].indices)


def test_rgb_photos_of_mixed_size_need_a_transform(tmp_path):
    for cls, images in {"astro": [skimage.data.astronaut(), skimage.data.chelsea()],
                        "coffee": [skimage.data.coffee(), skimage.data.rocket()]}.items():
        (tmp_path / cls).mkdir()
        for i, array in enumerate(images):
            Image.fromarray(array).save(tmp_path / cls / f"{i}.png")
    with pytest.raises(DataError, match="mixed sizes"):
        load_dataset("folder", "train", root=tmp_path, validation_fraction=0.01)
    data = load_dataset("folder", "train", root=tmp_path, validation_fraction=0.01, transform=Resize(32, 48))
    assert data.images.shape[1:] == (3, 32, 48)


def test_empty_class_folder_and_missing_root(tmp_path):
    (tmp_path / "cats").mkdir()
    (tmp_path / "dogs").mkdir()
    Image.fromarray(skimage.data.camera()).save(tmp_path / "cats" / "a.png")
    with pytest.raises(DataError, match="'dogs' has no images"):
        load_dataset("folder", root=tmp_path)
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        load_dataset("folder", root=tmp_path / "nope")
    with pytest.raises(DataError, match="no class subfolders"):
        load_dataset("folder", root=tmp_path / "cats")


def test_unreadable_image(tmp_path):
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for i in range(5):
            Image.fromarray(skimage.data.camera()[::16, ::16]).save(tmp_path / cls / f"{i}.png")
    (tmp_path / "a" / "0.png").write_bytes(b"not a png at all")
    with pytest.raises(CorruptFileError, match="not a readable image"):
        for split in ("train", "validation", "test"):
            load_dataset("folder", split, root=tmp_path)
