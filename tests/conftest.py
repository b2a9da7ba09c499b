import os

import pytest
import torch

torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))


@pytest.fixture(scope="session")
def fashion_test_slice():
    """The first 64 images of the real Fashion-MNIST test split."""
    from tosc.data import load_dataset

    return load_dataset("fashion-mnist", split="test", limit=64)
