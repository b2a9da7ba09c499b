"""How small each classic codec gets on a data set, and which link operating points it reaches.

A point (SNR, CBR) gives k = CBR * n channel uses per image (n = C*H*W real source values) and a
bit budget B(SNR, k) from a budget function. Until the link's modulation-and-coding table exists
the default is the ideal one, ``B = floor(k * log2(1 + SNR))`` (capacity); the digital link's
``B = floor(k * r_c * log2 M)`` drops in as another budget function. A codec reaches a point
when every surveyed image's smallest bitstream (at ``quality_min``) is at most ``B // 8`` bytes.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable, Sequence

import numpy as np
import torch

from ...errors import ConfigError, DataError
from .base import ClassicCodec

__all__ = [
    "BudgetFn",
    "SNRS_DB",
    "CBRS",
    "ideal_budget_bits",
    "digital_budget_bits",
    "n_channel_uses",
    "CodecSurvey",
    "survey_codec",
    "psnr_db",
    "reachable",
    "render_summary",
    "render_markdown",
]

#: (snr_db, n_channel_uses) -> bits per image
BudgetFn = Callable[[float, int], int]

SNRS_DB: tuple[float, ...] = (0.0, 5.0, 10.0, 15.0, 20.0)
CBRS: tuple[Fraction, ...] = (Fraction(1, 16), Fraction(1, 8), Fraction(1, 4), Fraction(1, 2))


def ideal_budget_bits(snr_db: float, n_channel_uses: int) -> int:
    """Capacity bound: floor(k * log2(1 + SNR)) bits, SNR = 10^(snr_db / 10) per complex use."""
    return math.floor(n_channel_uses * math.log2(1.0 + 10.0 ** (snr_db / 10.0)))


def digital_budget_bits(n_channel_uses: int, code_rate: float, bits_per_symbol: int) -> int:
    """A coded link's payload: floor(k * r_c * log2 M) bits (bits_per_symbol = log2 M)."""
    return math.floor(n_channel_uses * code_rate * bits_per_symbol)


def n_channel_uses(cbr: float | Fraction, n_source_values: int) -> int:
    """k = CBR * n complex channel uses; must come out a positive whole number."""
    k = Fraction(cbr).limit_denominator(1 << 20) * n_source_values
    if k.denominator != 1 or k < 1:
        raise ConfigError(f"CBR {cbr} x {n_source_values} source values is not a positive whole number of channel uses")
    return int(k)


@dataclass
class CodecSurvey:
    """Sizes of one codec on a set of images, at its lowest and highest quality.

    Lists hold one entry per image; bytes are whole-file or payload sizes.
    """

    codec: str
    library: str
    gray_coded_as: str
    quality_min: int
    quality_max: int
    image_shape: tuple[int, int, int]
    #: bits a payload-only sender adds per image (the quality index); 0 for whole files
    index_bits: int = 0
    file_bytes_min_quality: list[int] = field(default_factory=list)
    payload_bytes_min_quality: list[int] = field(default_factory=list)
    file_bytes_max_quality: list[int] = field(default_factory=list)
    payload_bytes_max_quality: list[int] = field(default_factory=list)
    psnr_db_min_quality: list[float] = field(default_factory=list)

    @property
    def pixels(self) -> int:
        return self.image_shape[1] * self.image_shape[2]

    def smallest(self, measure: str) -> list[int]:
        if measure == "file":
            return self.file_bytes_min_quality
        if measure == "payload":
            return self.payload_bytes_min_quality
        raise ConfigError(f"measure must be 'file' or 'payload', got {measure!r}")

    def bpp_range(self, measure: str = "file") -> tuple[float, float]:
        """Median bits per pixel at the lowest and at the highest quality."""
        low = self.smallest(measure)
        high = self.file_bytes_max_quality if measure == "file" else self.payload_bytes_max_quality
        return 8 * statistics.median(low) / self.pixels, 8 * statistics.median(high) / self.pixels


def psnr_db(decoded: torch.Tensor, original: torch.Tensor | np.ndarray) -> float:
    """PSNR in dB of a decoded image against the 8-bit version of the original (peak 1.0)."""
    reference = torch.round(torch.as_tensor(np.asarray(original), dtype=torch.float64) * 255.0) / 255.0
    mse = float(torch.mean((decoded.to(torch.float64) - reference) ** 2))
    return math.inf if mse == 0.0 else 10.0 * math.log10(1.0 / mse)


def survey_codec(codec: ClassicCodec, images: torch.Tensor | np.ndarray) -> CodecSurvey:
    """Encode every image (N x C x H x W) at the codec's lowest and highest quality."""
    if images.ndim != 4 or len(images) == 0:
        raise DataError(f"survey needs a non-empty N x C x H x W batch, got shape {tuple(images.shape)}")
    channels = int(images.shape[1])
    survey = CodecSurvey(
        codec=codec.name,
        library=codec.library,
        gray_coded_as=codec.gray_coded_as if channels == 1 else "(RGB input)",
        quality_min=codec.quality_min,
        quality_max=codec.quality_max,
        image_shape=tuple(int(s) for s in images.shape[1:]),
        index_bits=codec.quality_index_bits,
    )
    for image in images:
        low = codec.encode(image, codec.quality_min)
        high = codec.encode(image, codec.quality_max)
        survey.file_bytes_min_quality.append(len(low))
        survey.payload_bytes_min_quality.append(codec.payload_bytes(low))
        survey.file_bytes_max_quality.append(len(high))
        survey.payload_bytes_max_quality.append(codec.payload_bytes(high))
        survey.psnr_db_min_quality.append(psnr_db(codec.decode(low, channels=channels), image))
    return survey


def reachable(
    survey: CodecSurvey,
    measure: str,
    snr_db: float,
    cbr: float | Fraction,
    budget_bits: BudgetFn = ideal_budget_bits,
) -> bool:
    """True when every surveyed image fits the point's budget at the codec's lowest quality
    (payload: after the quality index a payload-only sender puts in front)."""
    c, h, w = survey.image_shape
    k = n_channel_uses(cbr, c * h * w)
    index = survey.index_bits if measure == "payload" else 0
    return 8 * max(survey.smallest(measure)) + index <= budget_bits(snr_db, k)


def _fmt_cbr(cbr: Fraction) -> str:
    return f"{cbr.numerator}/{cbr.denominator}"


def _fmt_snrs(snrs: list[float], grid: Sequence[float]) -> str:
    if not snrs:
        return "none"
    if snrs == list(grid):
        return "all"
    if snrs == list(grid)[len(grid) - len(snrs) :]:  # upward closed
        return f">= {snrs[0]:g} dB"
    return ", ".join(f"{s:g}" for s in snrs) + " dB"


def _size_cell(sizes: list[int]) -> str:
    return f"{statistics.median(sizes):g} ({min(sizes)}-{max(sizes)})"


def render_summary(surveys: Sequence[CodecSurvey]) -> str:
    """Plain-text summary for ``tosc codecs``."""
    lines = [
        f"{'codec':<15} {'gray coded as':<22} {'smallest file B':>16} {'smallest payload B':>18} "
        f"{'PSNR dB':>8} {'bpp file':>12} {'bpp payload':>12}",
    ]
    for s in surveys:
        lo, hi = s.bpp_range("file")
        plo, phi = s.bpp_range("payload")
        lines.append(
            f"{s.codec:<15} {s.gray_coded_as:<22} "
            f"{_size_cell(s.file_bytes_min_quality):>16} {_size_cell(s.payload_bytes_min_quality):>18} "
            f"{statistics.median(s.psnr_db_min_quality):>8.1f} "
            f"{f'{lo:.2f}..{hi:.2f}':>12} {f'{plo:.2f}..{phi:.2f}':>12}"
        )
    lines.append(
        "sizes: median (min-max) over the images at the lowest quality, PSNR: median there; "
        "bpp: medians at the lowest..highest quality"
    )
    return "\n".join(lines)


def render_markdown(
    surveys: Sequence[CodecSurvey],
    *,
    dataset: str,
    snrs_db: Sequence[float] = SNRS_DB,
    cbrs: Sequence[Fraction] = CBRS,
    budget_bits: BudgetFn = ideal_budget_bits,
    budget_name: str = "ideal: B = floor(k log2(1 + SNR))",
) -> str:
    """The README tables: smallest sizes, budgets per point, and reachable points per codec."""
    if not surveys:
        raise ConfigError("no codec surveys to render")
    shape = surveys[0].image_shape
    n_images = len(surveys[0].file_bytes_min_quality)
    n_values = shape[0] * shape[1] * shape[2]
    out = [
        f"Smallest bitstreams on {n_images} {dataset} images ({shape[0]}x{shape[1]}x{shape[2]}), "
        "at each codec's lowest quality: median (min-max) bytes, and the median PSNR of those images.",
        "",
        "| codec | gray coded as | smallest whole file (B) | smallest payload (B) | PSNR there (dB) "
        "| bpp, whole file (lowest..highest quality) | library |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for s in surveys:
        lo, hi = s.bpp_range("file")
        out.append(
            f"| {s.codec} | {s.gray_coded_as} | {_size_cell(s.file_bytes_min_quality)} "
            f"| {_size_cell(s.payload_bytes_min_quality)} | {statistics.median(s.psnr_db_min_quality):.1f} "
            f"| {lo:.2f}..{hi:.2f} | {s.library} |"
        )
    out += [
        "",
        f"Byte budget per image, B // 8, with B from the {budget_name} bound "
        f"and k = CBR x {n_values} channel uses:",
        "",
        "| SNR (dB) | " + " | ".join(f"CBR {_fmt_cbr(c)} (k={n_channel_uses(c, n_values)})" for c in cbrs) + " |",
        "| ---: | " + " | ".join("---:" for _ in cbrs) + " |",
    ]
    for snr in snrs_db:
        cells = [str(budget_bits(snr, n_channel_uses(c, n_values)) // 8) for c in cbrs]
        out.append(f"| {snr:g} | " + " | ".join(cells) + " |")
    out += [
        "",
        f"SNRs (of {', '.join(f'{s:g}' for s in snrs_db)} dB) at which every image fits at the lowest "
        "quality, per CBR; whole file, and payload only (headers rebuilt by the receiver; the payload "
        "pays its quality index, ceil(log2 of the number of quality levels) bits):",
        "",
        "| codec | counted | " + " | ".join(f"CBR {_fmt_cbr(c)}" for c in cbrs) + " |",
        "| --- | --- | " + " | ".join("---" for _ in cbrs) + " |",
    ]
    for s in surveys:
        for measure, label in (("file", "whole file"), ("payload", "payload")):
            cells = [
                _fmt_snrs([snr for snr in snrs_db if reachable(s, measure, snr, c, budget_bits)], snrs_db)
                for c in cbrs
            ]
            out.append(f"| {s.codec} | {label} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"
