import pickle

import numpy as np
import pytest
import torch

from tosc.data import load_dataset
from tosc.errors import CorruptFileError, DatasetNotFoundError


def _write_cifar(root, n_per_batch=6, seed=0):
    """A tiny CIFAR-10 directory in the standard python-pickle layout."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(n_per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, size=n_per_batch)]
        batches[name] = (data, labels)
        with open(folder / name, "wb") as handle:
            pickle.dump({b"batch_label": name.encode(), b"labels": labels, b"data": data, b"filenames": []}, handle)
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    with open(folder / "batches.meta", "wb") as handle:
        pickle.dump({b"label_names": names, b"num_vis": 3072}, handle)
    return folder, batches


def test_reads_standard_layout(tmp_path):
    folder, batches = _write_cifar(tmp_path)
    test = load_dataset("cifar10", "test", root=tmp_path)
    data, labels = batches["test_batch"]
    assert test.images.shape == (6, 3, 32, 32) and test.images.dtype == torch.float32
    # channel-major layout: the first 1024 bytes are the red plane
    assert torch.allclose(test.images[0, 0].flatten(), torch.from_numpy(data[0, :1024]).float() / 255)
    assert test.labels.tolist() == labels
    train = load_dataset("cifar10", "train", root=folder, validation_fraction=0.2)
    val = load_dataset("cifar10", "validation", root=folder, validation_fraction=0.2)
    assert len(train) + len(val) == 30 and len(val) == 6
    assert test.classes[1] == "automobile"


def test_missing_and_incomplete_directory(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        load_dataset("cifar10", root=tmp_path / "absent")
    (tmp_path / "data_batch_1").write_bytes(b"")
    with pytest.raises(DatasetNotFoundError, match="data_batch_1..5"):
        load_dataset("cifar10", root=tmp_path)
    with pytest.raises(DatasetNotFoundError, match="--root"):
        load_dataset("cifar10")


def test_corrupt_pickle(tmp_path):
    folder, _ = _write_cifar(tmp_path)
    (folder / "data_batch_3").write_bytes(b"\x80\x04garbage")
    with pytest.raises(CorruptFileError, match="data_batch_3"):
        load_dataset("cifar10", "train", root=folder)


def test_pickle_that_would_run_code_is_refused(tmp_path):
    folder, _ = _write_cifar(tmp_path)

    class Exploit:
        def __reduce__(self):
            return (print, ("owned",))

    with open(folder / "test_batch", "wb") as handle:
        pickle.dump({b"data": Exploit(), b"labels": []}, handle)
    with pytest.raises(CorruptFileError, match="refusing to load builtins.print"):
        load_dataset("cifar10", "test", root=folder)


def test_wrong_shape_in_pickle(tmp_path):
    folder, _ = _write_cifar(tmp_path)
    with open(folder / "test_batch", "wb") as handle:
        pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, handle)
    with pytest.raises(CorruptFileError, match="3072"):
        load_dataset("cifar10", "test", root=folder)
