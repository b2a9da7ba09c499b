"""Separate source and channel coding: a source coder rate-matched to the link's bit budget.

Source coders:

- classic codecs (``tosc.source_coding.classic``), whole file or payload only (container,
  parameter sets and fixed tables counted as known to the receiver);
- the learned codec families (MSE-only, TOSC-SR, task-only): each image is coded with the
  highest-rate model of the family whose stream fits; a fixed-length model index is sent
  in front of the stream (and counted). When even the lowest-rate model's stream is too
  long, its smallest latents are set to their medians (the cheapest symbol) until the
  stream fits: the receiver decodes it as any other stream and gets a coarser image
  instead of the fallback (counted as ``images_truncated_to_fit``).

Links: ``ldpc`` (5G LDPC + QAM at the MCS table's scheme for the SNR) or ``ideal``
(error-free up to k log2(1 + SNR) bits). An image that does not fit, a failed codeword
or a bitstream the decoder rejects gives the fallback image and ``ok`` False.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

from .. import registry
from ..channel import DigitalLink, FiniteLengthLink, IdealLink, bits_from_bytes, bytes_from_bits
from ..errors import ConfigError, CorruptFileError, DataError, DoesNotFitError, UnknownNameError
from .base import System, Transmission, fallback_image

__all__ = ["DigitalSystem", "ClassicSource", "LearnedFamilySource"]


class ClassicSource:
    """A classic codec rate-matched per image by bisection on its quality knob."""

    def __init__(self, codec_name: str, measure: str) -> None:
        from ..source_coding import classic

        self._classic = classic
        self.codec = classic.get_codec(codec_name)
        self.measure = measure  # "file" or "payload"

    def encode(self, images: torch.Tensor, budget_bits: int) -> list[np.ndarray | None]:
        matches = self._classic.match_rate_batch(self.codec, images, budget_bits // 8, measure=self.measure)
        self._matches = matches
        self._image_hw = tuple(images.shape[-2:])
        out: list[np.ndarray | None] = []
        for m in matches:
            if not m.fits:
                out.append(None)
            elif self.measure == "file":
                out.append(bits_from_bytes(m.bitstream))
            else:
                out.append(bits_from_bytes(self.codec.payload(m.bitstream)))
        return out

    def decode(self, i: int, bits: np.ndarray, channels: int) -> torch.Tensor:
        data = bytes_from_bits(bits)
        if self.measure == "payload":
            # the receiver knows the container and parameter sets for the chosen quality
            data = self.codec.splice_payload(self._matches[i].bitstream, data)
        # the receiver knows the image size: a damaged size field (within the codecs' generic
        # 4096 x 4096 limit, e.g. 28 x 524316) must not make the library decode megapixels;
        # coded sizes may exceed the picture by block padding (HEVC codes 28 x 28 as 64 x 64)
        declared = self.codec.parse(data)
        h, w = self._image_hw
        if declared.height > max(2 * h, h + 128) or declared.width > max(2 * w, w + 128):
            raise CorruptFileError(f"{self.codec.name}: headers declare {declared.height} x {declared.width} "
                                   f"pixels for a {h} x {w} image")
        return torch.as_tensor(self.codec.decode(data, channels=channels), dtype=torch.float32)


class LearnedFamilySource:
    """Per image, the highest-rate model of a family whose stream fits the budget; below the
    lowest model's rate, that model's stream with its smallest latents zeroed (see
    :meth:`truncate_to_fit`). ``device``: where the codecs' transforms run (entropy coding
    stays on the CPU)."""

    def __init__(self, variant: str, device: str = "cpu") -> None:
        from ..source_coding.learned import LearnedCodec, list_codecs

        entries = [e for e in list_codecs() if e.variant == variant]
        if not entries:
            raise UnknownNameError(f"no trained {variant} codecs in the model zoo (run scripts/train_family.py)")
        entries.sort(key=lambda e: e.metrics.get("bpp", 0.0))
        self.codecs = [LearnedCodec.load(e.path, device) for e in entries]
        self.index_bits = max(1, math.ceil(math.log2(len(self.codecs))))
        self.truncated = 0  # images of the last encode() coded by truncate_to_fit

    def truncate_to_fit(self, symbols: torch.Tensor, max_bytes: int) -> bytes | None:
        """The lowest-rate model's stream for one image (``symbols``: int64, latent_dim) with
        the fewest of its smallest-magnitude nonzero latents set to 0 (the median, the most
        probable symbol) that brings it to <= ``max_bytes``; None when even all zeros do not fit.

        Smallest first because they change the reconstruction least; the count is found by
        bisection (the stream length falls, not always strictly, as more latents are zeroed)
        and the chosen stream is checked against the budget.
        """
        codec = self.codecs[0]
        nonzero = torch.nonzero(symbols).flatten()
        order = nonzero[torch.argsort(symbols[nonzero].abs(), stable=True)]

        def stream(m: int) -> bytes:
            trial = symbols.clone()
            trial[order[:m]] = 0
            return codec.encode_symbols(trial[None])[0]

        lo, hi = 1, len(order)
        if len(stream(hi)) > max_bytes:
            return None
        while lo < hi:
            mid = (lo + hi) // 2
            if len(stream(mid)) <= max_bytes:
                hi = mid
            else:
                lo = mid + 1
        return stream(hi)

    def encode(self, images: torch.Tensor, budget_bits: int) -> list[np.ndarray | None]:
        # the lowest model's latents also feed truncate_to_fit: analyse the batch once
        lowest_symbols = self.codecs[0].symbols(images)[0]
        streams = [self.codecs[0].encode_symbols(lowest_symbols)] + [c.encode(images) for c in self.codecs[1:]]
        self.truncated = 0
        out: list[np.ndarray | None] = []
        for i in range(len(images)):
            choice = None
            for m in range(len(self.codecs) - 1, -1, -1):
                if self.index_bits + 8 * len(streams[m][i]) <= budget_bits:
                    choice = m
                    break
            stream = streams[choice][i] if choice is not None else None
            if choice is None and budget_bits - self.index_bits >= 8:
                stream = self.truncate_to_fit(lowest_symbols[i], (budget_bits - self.index_bits) // 8)
                choice = 0
                self.truncated += stream is not None
            if stream is None:
                out.append(None)
                continue
            prefix = np.array([(choice >> b) & 1 for b in range(self.index_bits - 1, -1, -1)], dtype=np.uint8)
            out.append(np.concatenate([prefix, bits_from_bytes(stream)]))
        return out

    def decode(self, i: int, bits: np.ndarray, channels: int) -> torch.Tensor:
        choice = int("".join(map(str, bits[: self.index_bits].tolist())) or "0", 2)
        if choice >= len(self.codecs):
            raise CorruptFileError(f"model index {choice} out of range")
        stream = bits[self.index_bits:]
        stream = np.concatenate([stream, np.zeros((-len(stream)) % 8, np.uint8)])
        return self.codecs[choice].decode([bytes_from_bits(stream)])[0]


class DigitalSystem(System):
    def __init__(self, name: str, source_factory: Callable[[], object], link: str, *, residual_ber: float = 0.0,
                 dataset: str = "fashion-mnist", device: str = "cpu") -> None:
        if link not in _LINKS:
            raise ConfigError(f"link must be one of {', '.join(_LINKS)}, got {link!r}")
        self.name, self.link_kind, self.mode = name, link, _LINKS[link][0]
        self.device = device  # where the source coder's networks run (classic codecs: "cpu")
        self.source = source_factory()
        self.residual_ber = residual_ber
        self.dataset = dataset

    def _link(self, channel: str):
        return _LINK_TYPES[self.link_kind](channel=channel, residual_ber=self.residual_ber)

    def transmit(self, images: torch.Tensor, *, snr_db: float, n_channel_uses: int, channel: str = "awgn",
                 seed: int = 0) -> Transmission:
        if images.ndim != 4:
            raise DataError(f"expected images N x C x H x W, got shape {tuple(images.shape)}")
        n, c, h, w = images.shape
        link = self._link(channel)
        fallback = fallback_image((c, h, w), self.dataset)
        try:
            budget = link.capacity_bits(snr_db, n_channel_uses)
        except DoesNotFitError:
            budget = 0
        payloads = self.source.encode(images, budget) if budget > 0 else [None] * n
        fitted = np.array([p is not None for p in payloads], dtype=bool)
        received = fallback.expand(n, c, h, w).clone()
        ok = np.zeros(n, bool)
        payload_bits = np.zeros(n, np.int64)
        uses = np.zeros(n, np.int64)
        failed = np.zeros(n, np.int64)
        decode_errors = np.zeros(n, bool)
        info = {"budget_bits": int(budget), "link": self.link_kind}
        if isinstance(self.source, LearnedFamilySource):
            info["images_truncated_to_fit"] = int(self.source.truncated) if budget > 0 else 0
        if self.residual_ber > 0:
            info["residual_ber"] = float(self.residual_ber)
        sent = [i for i in range(n) if fitted[i]]
        if sent:
            # each image's channel depends on (seed, its index) only, not on which others fit
            out = link.transmit([payloads[i] for i in sent], snr_db=snr_db, n_channel_uses=n_channel_uses, seed=seed,
                                image_indices=sent)
            if getattr(out, "mcs", None) is not None:
                info["mcs"] = out.mcs.name
            if out.meets_target is not None:
                info["mcs_meets_target"] = bool(out.meets_target)
            flipped = [r.residual_flips for r in out.images]
            if self.residual_ber > 0:  # what the residual-error mode did, so a study can count it
                info["residual_bit_flips"] = int(sum(flipped))
                info["images_with_residual_flips"] = int(sum(f > 0 for f in flipped))
            for i, r in zip(sent, out.images):
                payload_bits[i], uses[i], failed[i] = r.payload_bits, r.n_channel_uses, r.n_failed_codewords
                if not r.ok:
                    continue
                try:
                    image = self.source.decode(i, r.bits, c)
                except (CorruptFileError, DataError):
                    decode_errors[i] = True
                    continue
                if image.shape != (c, h, w):
                    decode_errors[i] = True
                    continue
                received[i] = image
                ok[i] = True
        return Transmission(received, ok, payload_bits, uses, fitted, failed, decode_errors, info)


_LINKS = {"ldpc": ("digital", "5G LDPC + QAM link"), "ideal": ("ideal", "ideal capacity-bound link"),
          "fbl": ("ideal", "finite-blocklength bound (normal approximation at BLER 1e-3, error-free; a bound)")}
_LINK_TYPES = {"ldpc": DigitalLink, "ideal": IdealLink, "fbl": FiniteLengthLink}
_CLASSIC_LINKS = ("ldpc", "ideal")  # the fbl bound is registered for the learned families


def _register_classic(codec: str) -> None:
    """Four systems per classic codec: whole file or payload only, over either link."""
    about = registry.get("codec", codec).description.split(";")[0]  # what it is, not its payload rule
    for measure, suffix, what in (("file", "", "whole file"), ("payload", "-payload", "payload only")):
        for link in _CLASSIC_LINKS:
            mode, link_desc = _LINKS[link]
            name = f"{codec}{suffix}+{link}"
            # classic codecs have no networks: CPU only
            registry.register("system", name, f"{about} ({what}) over the {link_desc}", mode=mode,
                              link=link, family="classic", source=codec, measure=measure, proposed=False,
                              devices=("cpu",))(
                lambda codec=codec, measure=measure, link=link, name=name, device="cpu", **kw: DigitalSystem(
                    name, lambda: ClassicSource(codec, measure), link, device=device, **kw))


def _register_learned(variant: str, proposed: bool) -> None:
    """Two systems per learned codec family (the zoo's models of that variant), one per link."""
    for link, (mode, link_desc) in _LINKS.items():
        name = f"{variant}+{link}"
        registry.register("system", name, f"learned {variant} codec family over the {link_desc}", mode=mode,
                          link=link, family="learned", source=variant, proposed=proposed, devices=("cpu", "cuda"))(
            lambda variant=variant, link=link, name=name, device="cpu", **kw: DigitalSystem(
                name, lambda: LearnedFamilySource(variant, device), link, device=device, **kw))


for _codec in registry.select("codec", family="classic"):
    _register_classic(_codec)
_register_learned("mse-only", proposed=False)
_register_learned("tosc-sr", proposed=True)
_register_learned("task-only", proposed=False)
