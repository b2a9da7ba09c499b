"""Built-in sources, the .npz input and the closed forms the sources carry."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tosc.errors import ConfigError, CorruptFileError, DataError, DatasetNotFoundError, UnknownNameError
from tosc.theory import load_source_npz, make_source, mutual_information_bits, rate_at, source_names
from tosc.theory.sources import source_parameters

SMALL = {"gaussian": {"levels": 16, "y_levels": 8}, "gaussian-vector": {"levels": 6, "y_levels": 6}}


@pytest.mark.parametrize("name", [n for n in source_names() if n != "fashion-mnist"])
def test_every_builtin_source_is_a_valid_problem(name):
    src = make_source(name, **SMALL.get(name, {}))
    assert src.p_xy.ndim == 2 and src.p_xy.min() >= 0.0
    assert src.p_xy.sum() == pytest.approx(1.0, abs=1e-12)
    assert src.distortion.shape[0] == src.p_xy.shape[0] and src.distortion.min() >= 0.0
    summary = src.summary()
    assert summary["mutual_information_xy_bits"] > 0.0
    assert summary["min_distortion"] <= summary["zero_rate_distortion"]
    assert source_parameters(name) is not None


@pytest.mark.parametrize(
    "name, params, d_p, i0",
    [
        ("binary-symmetric", {}, 0.2, 0.3),
        ("binary-symmetric", {}, 0.2, 0.6),
        ("dsbs", {"eps": "0.2"}, 0.3, 0.15),
        ("dsbs", {"eps": "0.2"}, 0.1, 0.1),
        ("uniform-mary", {"m": "3"}, 0.3, 0.2),
        ("two-bits", {}, 0.5, 0.7),
    ],
)
def test_reference_rates_match_the_solver(name, params, d_p, i0):
    src = make_source(name, **params)
    point = rate_at(src.p_xy, src.distortion, d_p, i0)
    assert point.rate_bits == pytest.approx(src.reference_rate(d_p, i0), abs=1e-3)


def test_gaussian_source_statistics():
    src = make_source("gaussian", rho2=0.8, levels=64, y_levels=64)
    px = src.p_xy.sum(1)
    x = src.x_points[:, 0]
    # cell means and within-cell variances add up to the variance of the continuous source
    assert px @ x == pytest.approx(0.0, abs=1e-12)
    assert px @ (x * x) + px @ src.offsets == pytest.approx(1.0, abs=1e-9)
    # the quantised pair keeps almost all of I(X;Y) = -0.5 log2(1 - rho^2)
    assert 0.97 * 1.160964 < mutual_information_bits(src.p_xy) < 1.160964
    assert np.diag(src.distortion) == pytest.approx(src.offsets)


def test_gaussian_vector_source_is_a_product():
    src = make_source("gaussian-vector", variances="1,2", rho2s="0.5,0", levels=5, y_levels=4)
    assert src.p_xy.shape == (25, 4) and src.x_points.shape == (25, 2)
    px = src.p_xy.sum(1).reshape(5, 5)
    np.testing.assert_allclose(px, np.outer(px.sum(1), px.sum(0)), atol=1e-15)  # independent components
    assert mutual_information_bits(src.p_xy) < -0.5 * math.log2(0.5)
    with pytest.raises(ConfigError, match="relevant"):
        make_source("gaussian-vector", rho2s="0,0")


def test_make_source_errors():
    with pytest.raises(UnknownNameError, match="known: binary-symmetric"):
        make_source("no-such-source")
    with pytest.raises(ConfigError, match="has no parameter bogus"):
        make_source("dsbs", bogus="1")
    with pytest.raises(ConfigError, match="not a valid float"):
        make_source("dsbs", eps="abc")
    with pytest.raises(ConfigError, match="eps"):
        make_source("dsbs", eps=0.5)
    with pytest.raises(ConfigError, match="integer"):
        make_source("uniform-mary", m=1)


def test_npz_source_round_trip(tmp_path):
    p = np.array([[0.3, 0.1], [0.2, 0.4]])
    d = np.array([[0.0, 1.0, 0.5], [1.0, 0.0, 0.5]])
    path = tmp_path / "mine.npz"
    np.savez(path, p_xy=p, distortion=d)
    src = load_source_npz(path)
    np.testing.assert_array_equal(src.p_xy, p)
    np.testing.assert_array_equal(src.distortion, d)
    assert src.name == "mine"


@pytest.mark.parametrize(
    "arrays, match",
    [
        ({"p_xy": np.eye(2) / 2}, "missing array\\(s\\) distortion"),
        ({"p_xy": np.eye(2), "distortion": np.ones((2, 2))}, "sums to 2"),
        ({"p_xy": np.eye(2) / 2, "distortion": np.ones((3, 2))}, "3 rows but p_xy has 2"),
        ({"p_xy": np.array([[0.6, -0.1], [0.25, 0.25]]), "distortion": np.ones((2, 2))}, "negative"),
    ],
)
def test_npz_source_errors(tmp_path, arrays, match):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError, match=match):
        load_source_npz(path)


def test_npz_not_a_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_source_npz(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(CorruptFileError, match="not a readable"):
        load_source_npz(tmp_path / "junk.npz")
    good = tmp_path / "good.npz"
    np.savez(good, p_xy=np.eye(2) / 2, distortion=1 - np.eye(2))
    (tmp_path / "cut.npz").write_bytes(good.read_bytes()[:-40])  # a zip cut off in its directory
    with pytest.raises(CorruptFileError, match="not a readable"):
        load_source_npz(tmp_path / "cut.npz")


def test_fashion_mnist_source():
    try:
        src = make_source("fashion-mnist", levels=4, dims=2, n_images=2000)
    except DatasetNotFoundError as exc:
        pytest.skip(str(exc))
    n_x = src.p_xy.shape[0]
    assert src.p_xy.shape[1] == 10 and 8 <= n_x <= 16
    assert src.p_xy.sum() == pytest.approx(1.0)
    assert np.all(src.p_xy.sum(1) > 0)  # empty cells were dropped
    # the first two principal components carry real class information, far from all of H(Y)
    i_xy = mutual_information_bits(src.p_xy)
    assert 0.5 < i_xy < math.log2(10)
    # d(x, x) is the within-cell pixel MSE, the smallest entry of its row
    assert np.diag(src.distortion) == pytest.approx(src.offsets)
    assert np.all(src.distortion.argmin(axis=1) == np.arange(n_x))
    assert 0.0 < src.summary()["min_distortion"] < src.summary()["zero_rate_distortion"] < 0.2
