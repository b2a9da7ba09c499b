import gzip
import shutil

import pytest
import torch

from tosc.data import PadTo, dataset_info, load_dataset
from tosc.data.fashion_mnist import DEFAULT_ROOTS
from tosc.errors import ConfigError, CorruptFileError, DatasetNotFoundError, UnknownNameError


def test_splits_are_official_sizes_and_shapes():
    train = load_dataset("fashion-mnist", "train", seed=0)
    val = load_dataset("fashion-mnist", "validation", seed=0)
    test = load_dataset("fashion-mnist", "test")
    assert len(train) + len(val) == 60000 and len(val) == 6000
    assert len(test) == 10000
    for part in (train, val, test):
        assert part.images.dtype == torch.float32 and part.images.shape[1:] == (1, 28, 28)
        assert part.labels.dtype == torch.int64
        assert 0.0 <= part.images.min() and part.images.max() <= 1.0
    # train and validation are disjoint and together cover the official training file
    together = torch.cat([train.indices, val.indices]).sort().values
    assert torch.equal(together, torch.arange(60000))
    assert set(test.labels.tolist()) == set(range(10))


def test_split_is_deterministic_in_the_seed():
    a = load_dataset("fashion-mnist", "validation", seed=3)
    b = load_dataset("fashion-mnist", "validation", seed=3)
    c = load_dataset("fashion-mnist", "validation", seed=4)
    assert torch.equal(a.indices, b.indices)
    assert not torch.equal(a.indices, c.indices)


def test_info_reports_counts_and_classes():
    info = dataset_info("fashion-mnist")
    assert info.split_sizes["train"] + info.split_sizes["validation"] == 60000
    assert info.split_sizes["test"] == 10000
    assert info.image_shape == (1, 28, 28)
    assert len(info.classes) == 10 and set(info.class_counts.values()) == {7000}
    assert 0.2 < info.pixel_mean < 0.4


def test_explicit_padding_transform(fashion_test_slice):
    padded = load_dataset("fashion-mnist", "test", limit=8, transform=PadTo(32, 32))
    assert padded.images.shape == (8, 1, 32, 32)
    assert torch.equal(padded.images[:, :, 2:30, 2:30], fashion_test_slice.images[:8])
    assert padded.images[:, :, :2].abs().sum() == 0


def test_missing_directory_names_the_apt_command(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_dataset("fashion-mnist", root=tmp_path / "nowhere")


def test_corrupt_idx_file(tmp_path):
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        shutil.copy(f"{DEFAULT_ROOTS[0]}/{name}.gz", tmp_path / f"{name}.gz")
    raw = gzip.decompress((tmp_path / "t10k-images-idx3-ubyte.gz").read_bytes())
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(raw[: len(raw) // 2]))
    with pytest.raises(CorruptFileError, match="t10k-images"):
        load_dataset("fashion-mnist", "test", root=tmp_path)


def test_bad_names_and_settings():
    with pytest.raises(UnknownNameError, match="unknown dataset 'mnist-3d'"):
        load_dataset("mnist-3d")
    with pytest.raises(ConfigError, match="unknown split"):
        load_dataset("fashion-mnist", "dev")
    with pytest.raises(ConfigError, match="validation_fraction"):
        load_dataset("fashion-mnist", validation_fraction=0.0)
    with pytest.raises(ConfigError, match="limit"):
        load_dataset("fashion-mnist", "test", limit=0)
