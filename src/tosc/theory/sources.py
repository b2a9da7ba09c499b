"""Built-in sources for the theory tools: p(x, y) with a pixel distortion d(x, xhat).

Each builder returns a :class:`Source`. ``SOURCES`` maps the names the ``tosc theory``
command accepts to their builders; :func:`make_source` builds one by name with keyword
parameters (unknown parameters are a ConfigError). :func:`load_source_npz` reads a user's
``p_xy`` and ``distortion`` from an .npz file.
"""

from __future__ import annotations

import inspect
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
from scipy.stats import norm, truncnorm

from ..errors import ConfigError, DataError
from ..io import read_npz
from . import closed_forms as cf
from .measures import check_distortion, check_joint

__all__ = [
    "Source",
    "SOURCES",
    "IMAGE_SOURCES",
    "source_names",
    "source_parameters",
    "make_source",
    "load_source_npz",
    "binary_symmetric",
    "doubly_symmetric_binary",
    "uniform_mary",
    "two_bits",
    "gaussian_pair",
    "gaussian_vector",
    "fashion_mnist",
]


@dataclass(frozen=True)
class Source:
    """A source for the semantic rate-distortion problem.

    p_xy: |X| x |Y| joint probabilities. distortion: |X| x |Xhat| pixel distortion, in
    ``distortion_unit``. params: the builder's parameters (for the record).
    x_points / xhat_points: values of the source and reconstruction symbols for quantised
    continuous sources (|X| x k, |Xhat| x k), else None. offsets: per-symbol constant included
    in ``distortion`` (within-cell variance of a quantised source), else None; squared
    error is ``offsets[x] + ||x_points[x] - xhat_points[xhat]||^2``.
    reference_rate: closed-form R(D_p, I_0) in bits where one is known, else None.
    """

    name: str
    description: str
    p_xy: np.ndarray
    distortion: np.ndarray
    distortion_unit: str
    params: dict[str, Any] = field(default_factory=dict)
    x_points: np.ndarray | None = field(default=None, repr=False)
    xhat_points: np.ndarray | None = field(default=None, repr=False)
    offsets: np.ndarray | None = field(default=None, repr=False)
    reference_rate: Callable[[float, float], float] | None = field(default=None, repr=False, compare=False)
    reference_label: str = ""

    def summary(self) -> dict[str, Any]:
        """JSON-ready facts: sizes and the information quantities in bits."""
        from .measures import entropy_bits, min_distortion, mutual_information_bits, zero_rate_distortion

        px = self.p_xy.sum(axis=1)
        return {
            "name": self.name,
            "description": self.description,
            "params": _json_params(self.params),
            "n_x": int(self.p_xy.shape[0]),
            "n_y": int(self.p_xy.shape[1]),
            "n_xhat": int(self.distortion.shape[1]),
            "distortion_unit": self.distortion_unit,
            "entropy_x_bits": entropy_bits(px),
            "entropy_y_bits": entropy_bits(self.p_xy.sum(axis=0)),
            "mutual_information_xy_bits": mutual_information_bits(self.p_xy),
            "min_distortion": min_distortion(px, self.distortion),
            "zero_rate_distortion": zero_rate_distortion(px, self.distortion),
        }


def _json_params(params: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, np.ndarray):
            value = value.tolist()
        elif isinstance(value, (np.floating, np.integer)):
            value = value.item()
        elif isinstance(value, tuple):
            value = list(value)
        out[key] = value
    return out


def _hamming(n: int) -> np.ndarray:
    return 1.0 - np.eye(n)


def _check_prob(value: float, name: str, low: float, high: float, closed_high: bool = False) -> float:
    value = float(value)
    ok = low <= value <= high if closed_high else low <= value < high
    if not ok:
        raise ConfigError(f"{name} must lie in [{low}, {high}{']' if closed_high else ')'}, got {value}")
    return value


def _check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or int(value) != value or int(value) < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


# ----------------------------------------------------------------------- discrete sources


def binary_symmetric() -> Source:
    """X uniform bit, Y = X, Hamming distortion.

    Closed form R(D_p, I_0) = max(1 - h(D_p), I_0).
    """
    return Source(
        name="binary-symmetric",
        description="X uniform bit, Y = X, Hamming distortion",
        p_xy=np.eye(2) / 2.0,
        distortion=_hamming(2),
        distortion_unit="bit error rate",
        reference_rate=lambda d_p, i0: max(cf.binary_hamming_rate(min(d_p, 0.5)), i0),
        reference_label="max(1 - h(D_p), I_0)",
    )


def doubly_symmetric_binary(eps: float = 0.1) -> Source:
    """Doubly symmetric binary source: X uniform bit, Y = X xor Bern(eps), Hamming distortion.

    A binary symmetric test channel is optimal for both constraints, so
    R(D_p, I_0) = max(1 - h(D_p), dsbs_rate(eps, I_0)).
    """
    eps = _check_prob(eps, "eps", 0.0, 0.5)
    p = np.array([[1.0 - eps, eps], [eps, 1.0 - eps]]) / 2.0
    return Source(
        name="dsbs",
        description=f"doubly symmetric binary source: X uniform bit, Y = X xor Bern({eps:g}), Hamming distortion",
        p_xy=p,
        distortion=_hamming(2),
        distortion_unit="bit error rate",
        params={"eps": eps},
        reference_rate=lambda d_p, i0: max(cf.binary_hamming_rate(min(d_p, 0.5)), cf.dsbs_rate(eps, i0)),
        reference_label="max(1 - h(D_p), R_IB(I_0))",
    )


def uniform_mary(m: int = 4) -> Source:
    """X uniform on m values, Y = X, Hamming distortion.

    Closed form R(D_p, I_0) = max(log2 m - h(D_p) - D_p log2(m - 1), I_0).
    """
    m = _check_int(m, "m", 2)
    return Source(
        name="uniform-mary",
        description=f"X uniform on {m} values, Y = X, Hamming distortion",
        p_xy=np.eye(m) / m,
        distortion=_hamming(m),
        distortion_unit="symbol error rate",
        params={"m": m},
        reference_rate=lambda d_p, i0: max(cf.mary_hamming_rate(m, min(d_p, 1.0 - 1.0 / m)), i0),
        reference_label="max(log2 m - h(D) - D log2(m-1), I_0)",
    )


def two_bits() -> Source:
    """Two uniform independent bits, Y = the first bit, distortion = number of wrong bits.

    Pixel distortion weighs both bits, the task only the first: the discrete case where the
    two constraints trade off (closed form :func:`tosc.theory.closed_forms.binary_pair_rate`).
    Symbol x = 2 * x_1 + x_2.
    """
    bits = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    p = np.zeros((4, 2))
    p[np.arange(4), bits[:, 0]] = 0.25
    distortion = np.abs(bits[:, None, :] - bits[None, :, :]).sum(axis=2).astype(np.float64)
    return Source(
        name="two-bits",
        description="two uniform bits, Y = first bit, distortion = number of wrong bits",
        p_xy=p,
        distortion=distortion,
        distortion_unit="wrong bits per symbol",
        reference_rate=cf.binary_pair_rate,
        reference_label="binary pair closed form",
    )


# ---------------------------------------------------------------- quantised Gaussian sources


def _quantised_normal(variance: float, levels: int, span: float, sub: int) -> tuple[np.ndarray, ...]:
    """Cells of N(0, variance): probabilities, conditional means and variances, and ``sub``
    equal-probability sample points inside every cell (for integrating over a cell)."""
    sigma = math.sqrt(variance)
    edges = np.linspace(-span, span, levels + 1)
    lo, hi = edges[:-1].copy(), edges[1:].copy()
    lo[0], hi[-1] = -np.inf, np.inf
    probs = norm.cdf(hi) - norm.cdf(lo)
    mean, var = truncnorm.stats(lo, hi, moments="mv")
    quantiles = (np.arange(sub) + 0.5) / sub
    samples = truncnorm.ppf(quantiles[None, :], lo[:, None], hi[:, None])
    return probs, sigma * np.asarray(mean), variance * np.asarray(var), sigma * samples


def _label_given_x(samples: np.ndarray, variance: float, rho2: float, y_levels: int, span: float) -> np.ndarray:
    """p(y cell | x cell) for Y = X + N with squared correlation rho2, averaged over the cell."""
    noise_var = variance * (1.0 - rho2) / rho2
    sigma_y = math.sqrt(variance + noise_var)
    edges = np.linspace(-span * sigma_y, span * sigma_y, y_levels + 1)
    edges[0], edges[-1] = -np.inf, np.inf
    cdf = norm.cdf((edges[None, None, :] - samples[:, :, None]) / math.sqrt(noise_var))
    return np.diff(cdf, axis=2).mean(axis=1)


def gaussian_pair(rho2: float = 0.8, variance: float = 1.0, levels: int = 48, y_levels: int = 32,
                  span: float = 4.5) -> Source:
    """Quantised jointly Gaussian pair: X ~ N(0, variance), Y = X + N with squared correlation rho2.

    X: ``levels`` cells of width 2 span sigma / levels (outer cells open), each represented by
    its conditional mean; Y: ``y_levels`` cells. Reconstructions are the same points and
    the distortion is the exact squared error of the continuous X, offsets[x] +
    (mean_x - xhat)^2, so every solution is achievable for the continuous source and the
    closed form of :func:`tosc.theory.closed_forms.gaussian_joint_rate` is a lower bound
    that the quantised source approaches as the cells shrink.
    """
    rho2 = _check_prob(rho2, "rho2", 0.0, 1.0)
    if rho2 == 0.0:
        raise ConfigError("rho2 must be > 0 (Y would be independent of X)")
    variance = float(variance)
    if not (variance > 0 and math.isfinite(variance)):
        raise ConfigError(f"variance must be > 0, got {variance}")
    levels = _check_int(levels, "levels", 2)
    y_levels = _check_int(y_levels, "y_levels", 2)
    probs, means, cell_var, samples = _quantised_normal(variance, levels, span, sub=16)
    p = probs[:, None] * _label_given_x(samples, variance, rho2, y_levels, span)
    p /= p.sum()
    distortion = cell_var[:, None] + (means[:, None] - means[None, :]) ** 2
    i_xy = -0.5 * math.log2(1.0 - rho2)

    def reference(d_p: float, i0: float) -> float:
        return cf.gaussian_joint_rate(variance, rho2, max(d_p, 1e-300), max(i_xy - i0, 0.0))

    return Source(
        name="gaussian",
        description=f"jointly Gaussian pair, rho^2 = {rho2:g}, X quantised to {levels} cells, Y to {y_levels}",
        p_xy=p,
        distortion=distortion,
        distortion_unit="squared error",
        params={"rho2": rho2, "variance": variance, "levels": levels, "y_levels": y_levels, "span": span},
        x_points=means[:, None],
        xhat_points=means[:, None],
        offsets=cell_var,
        reference_rate=reference,
        reference_label="Gaussian closed form",
    )


def gaussian_vector(variances: tuple[float, ...] = (1.0, 1.0), rho2s: tuple[float, ...] = (0.8, 0.0),
                    levels: int = 16, y_levels: int = 24, span: float = 4.0) -> Source:
    """Quantised independent Gaussian components, only those with rho2 > 0 relevant to Y.

    X_i ~ N(0, variances[i]); Y_i = X_i + N_i for the components with rho2s[i] > 0 (the
    others are irrelevant to Y); all quantised as in
    :func:`gaussian_pair` and joined into product alphabets (|X| = levels^n,
    |Y| = y_levels^(number of relevant components)). Distortion: exact squared error summed
    over components; reconstructions are the product grid of cell means.
    Closed form: :func:`tosc.theory.closed_forms.vector_gaussian_rate` (a lower bound here).
    """
    s = np.atleast_1d(np.asarray(variances, dtype=np.float64))
    a = np.atleast_1d(np.asarray(rho2s, dtype=np.float64))
    if s.ndim != 1 or s.shape != a.shape or s.size == 0:
        raise ConfigError(f"variances and rho2s must have the same length, got {s.shape} and {a.shape}")
    if not ((s > 0).all() and np.isfinite(s).all() and (a >= 0).all() and (a < 1).all()):
        raise ConfigError("variances must be > 0 and rho2s in [0, 1)")
    if not (a > 0).any():
        raise ConfigError("at least one component must be relevant to Y (rho2 > 0)")
    levels = _check_int(levels, "levels", 2)
    y_levels = _check_int(y_levels, "y_levels", 2)
    if levels ** s.size > 4096:
        raise ConfigError(f"levels^components = {levels ** s.size} source symbols is too many (limit 4096)")
    p = np.ones((1, 1))
    points = np.zeros((1, 0))
    offsets = np.zeros(1)
    for variance, rho2 in zip(s, a):
        probs, means, cell_var, samples = _quantised_normal(float(variance), levels, span, sub=16)
        part = probs[:, None] * (_label_given_x(samples, float(variance), float(rho2), y_levels, span)
                                 if rho2 > 0 else np.ones((levels, 1)))
        p = np.einsum("ay,bz->abyz", p, part).reshape(p.shape[0] * levels, p.shape[1] * part.shape[1])
        points = np.concatenate([np.repeat(points, levels, axis=0), np.tile(means[:, None], (points.shape[0], 1))], 1)
        offsets = (offsets[:, None] + cell_var[None, :]).ravel()
    p /= p.sum()
    sq = (points * points).sum(1)
    distortion = offsets[:, None] + np.maximum(sq[:, None] + sq[None, :] - 2.0 * points @ points.T, 0.0)

    def reference(d_p: float, i0: float) -> float:
        return cf.vector_gaussian_rate(s, a, max(d_p, 1e-300), i0).rate_bits

    return Source(
        name="gaussian-vector",
        description=f"{s.size} independent Gaussian components, rho^2 = {a.tolist()}, {levels} cells each",
        p_xy=p,
        distortion=distortion,
        distortion_unit="squared error (summed over components)",
        params={"variances": s, "rho2s": a, "levels": levels, "y_levels": y_levels, "span": span},
        x_points=points,
        xhat_points=points,
        offsets=offsets,
        reference_rate=reference,
        reference_label="vector Gaussian closed form",
    )


# ------------------------------------------------------------------------- Fashion-MNIST


def fashion_mnist(levels: int = 8, dims: int = 2, split: str = "test", n_images: int | None = None,
                  root: str | None = None) -> Source:
    """Fashion-MNIST: X = quantised principal components of the images, Y = the class.

    X: the first ``dims`` principal components, each quantised into ``levels`` equal-count
    cells (empty product cells dropped); Y: the class (10 labels).

    Reconstructions are the mean images of the cells, and d(x, xhat) is the pixel MSE
    (pixels in [0, 1]) of replacing every image of cell x by the mean image of cell xhat:
    (within-cell variance of x + ||mean_x - mean_xhat||^2) / 784. Probabilities are counts
    over ``split`` (first ``n_images`` images; all when None).
    """
    levels = _check_int(levels, "levels", 2)
    dims = _check_int(dims, "dims", 1)
    if levels ** dims > 4096:
        raise ConfigError(f"levels^dims = {levels ** dims} cells is too many (limit 4096)")
    from ..data import load_dataset  # imports torch; only this source needs it

    data = load_dataset("fashion-mnist", split=split, root=root, limit=n_images)
    images = data.images.numpy().reshape(len(data), -1).astype(np.float64)
    labels = data.labels.numpy().astype(np.int64)
    n, n_pixels = images.shape
    n_classes = len(data.classes)
    if n < levels ** dims:
        raise DataError(f"{n} images are too few for {levels ** dims} cells; use more images or fewer levels")
    centred = images - images.mean(axis=0)
    _, vectors = np.linalg.eigh(centred.T @ centred)
    basis = vectors[:, ::-1][:, :dims]
    basis *= np.where(basis[np.abs(basis).argmax(axis=0), np.arange(dims)] < 0, -1.0, 1.0)  # fixed sign
    features = centred @ basis
    cells = np.zeros(n, dtype=np.int64)
    for k in range(dims):
        edges = np.quantile(features[:, k], np.linspace(0.0, 1.0, levels + 1)[1:-1])
        cells = cells * levels + np.searchsorted(edges, features[:, k], side="right")
    used, x = np.unique(cells, return_inverse=True)
    n_x = used.size
    counts = np.zeros((n_x, n_classes))
    np.add.at(counts, (x, labels), 1.0)
    sizes = counts.sum(axis=1)
    means = np.zeros((n_x, n_pixels))
    np.add.at(means, x, images)
    means /= sizes[:, None]
    within = np.zeros(n_x)
    np.add.at(within, x, ((images - means[x]) ** 2).sum(axis=1))
    within /= sizes
    sq = (means * means).sum(1)
    between = np.maximum(sq[:, None] + sq[None, :] - 2.0 * means @ means.T, 0.0)
    distortion = (within[:, None] + between) / n_pixels
    return Source(
        name="fashion-mnist",
        description=(f"Fashion-MNIST {split} ({n} images): X = first {dims} principal components in {levels} "
                     f"equal-count cells each ({n_x} used), Y = class, distortion = pixel MSE of the cell mean image"),
        p_xy=counts / n,
        distortion=distortion,
        distortion_unit="pixel MSE (pixels in [0, 1])",
        params={"levels": levels, "dims": dims, "split": split, "n_images": n},
        x_points=None,
        xhat_points=None,
        offsets=within / n_pixels,
    )


# ------------------------------------------------------------------------------- registry

SOURCES: dict[str, Callable[..., Source]] = {
    "binary-symmetric": binary_symmetric,
    "dsbs": doubly_symmetric_binary,
    "uniform-mary": uniform_mary,
    "two-bits": two_bits,
    "gaussian": gaussian_pair,
    "gaussian-vector": gaussian_vector,
    "fashion-mnist": fashion_mnist,
}


# sources of images rather than of p(x, y): bounded by a learned estimator (tosc.theory.image_bound)
IMAGE_SOURCES: dict[str, str] = {
    "fashion-mnist-images": "Fashion-MNIST images themselves (1x28x28 pixels, Y = class): learned upper bound "
                            "on R(D_p, I_0) (Yang & Mandt 2022 with a semantic term)",
}


def source_names() -> list[str]:
    return list(SOURCES)


def source_parameters(name: str) -> dict[str, Any]:
    """The parameters of source ``name`` with their defaults."""
    builder = _builder(name)
    return {p.name: p.default for p in inspect.signature(builder).parameters.values()}


def _builder(name: str) -> Callable[..., Source]:
    try:
        return SOURCES[name]
    except KeyError:
        from ..errors import UnknownNameError

        raise UnknownNameError(f"unknown theory source {name!r}; known: {', '.join(SOURCES)}") from None


def _coerce(value: Any, default: Any, key: str) -> Any:
    """Parse a CLI string into the type of the parameter's default."""
    if not isinstance(value, str):
        return value
    try:
        if isinstance(default, bool):
            return value.lower() in ("1", "true", "yes")
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, tuple):
            return tuple(float(v) for v in value.split(","))
    except ValueError:
        raise ConfigError(f"source parameter {key}={value!r} is not a valid {type(default).__name__}") from None
    if default is None and key == "n_images":
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"source parameter {key}={value!r} is not an integer") from None
    return value


def make_source(name: str, **params: Any) -> Source:
    """Build the built-in source ``name``; ``params`` may be strings (from the CLI)."""
    builder = _builder(name)
    defaults = source_parameters(name)
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        known = ", ".join(defaults) or "none"
        raise ConfigError(f"source {name!r} has no parameter {', '.join(unknown)}; its parameters: {known}")
    return builder(**{k: _coerce(v, defaults[k], k) for k, v in params.items()})


def load_source_npz(path: str | os.PathLike) -> Source:
    """A user's source from an .npz with ``p_xy`` (|X| x |Y|) and ``distortion`` (|X| x |Xhat|)."""
    path = Path(path)
    arrays = read_npz(path)
    missing = [key for key in ("p_xy", "distortion") if key not in arrays]
    if missing:
        raise DataError(f"{path}: missing array(s) {', '.join(missing)} (found {', '.join(sorted(arrays)) or 'none'})")
    for key in ("p_xy", "distortion"):  # numpy would drop an imaginary part with only a warning
        if not (np.issubdtype(arrays[key].dtype, np.number) or arrays[key].dtype == np.bool_) \
                or np.iscomplexobj(arrays[key]):
            raise DataError(f"{path}: {key} must hold real numbers, got dtype {arrays[key].dtype}")
    try:
        p = check_joint(arrays["p_xy"])
        d = check_distortion(arrays["distortion"], p.shape[0])
    except DataError as exc:
        raise DataError(f"{path}: {exc}") from None
    return Source(
        name=path.stem,
        description=f"user source from {path.name}",
        p_xy=p,
        distortion=d,
        distortion_unit="user units",
        params={"input": str(path)},
    )
