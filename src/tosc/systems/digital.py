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

import hashlib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .. import registry
from ..channel import DigitalLink, FiniteLengthLink, IdealLink, bits_from_bytes, bytes_from_bits
from ..errors import ConfigError, CorruptFileError, DataError, DoesNotFitError, UnknownNameError
from .base import System, Transmission, fallback_image
from .memo import Memo, batch_key, bits_key

# noise-free work shared by the points of a grid (see tosc.systems.memo): per image batch, a
# learned family's streams; per batch and budget, codec v3's choices; per received bit
# string, the decoded image (at most 256 MiB of images)
_ANALYSED = Memo(16)
_ENCODED = Memo(256)
_LADDERS = Memo(8)  # codec v3: one QualityLadder per model and image batch, shared by every budget
_DECODED = Memo(200_000, max_bytes=256 << 20, weigh=lambda image: image.nbytes)

__all__ = ["DigitalSystem", "SourceEncoding", "ClassicSource", "LearnedFamilySource", "ConvCodecSource"]


@dataclass
class SourceEncoding:
    """What a source coder's ``encode(images, budget_bits)`` returns.

    bits: per image, the 0/1 array handed to the link (None: nothing fits the budget). It
        holds everything the receiver needs besides what it truly knows in advance (the
        coder and the image shape C x H x W): ``decode(bits, shape)`` sees nothing else.
    info: facts about the batch for the results record (e.g. how many images were
        truncated to fit); never read by the receiver.

    The source coder interface: ``encode(images N x C x H x W, budget_bits) -> SourceEncoding``
    and ``decode(bits, shape) -> C x H x W float32 image`` (CorruptFileError or DataError on
    bits it cannot decode).
    """

    bits: list
    info: dict = field(default_factory=dict)


def _file_version(path) -> tuple[str, int, int]:
    """(path, size, modification time in ns) of a model file: a retrained file that replaces it
    gets other cache keys, in a process that loads it again."""
    stat = os.stat(path)
    return str(path), stat.st_size, stat.st_mtime_ns


class ClassicSource:
    """A classic codec rate-matched per image: the highest quality whose counted bits fit.

    measure ``file``: the whole file is sent; it is all a decoder needs.
    measure ``payload``: a fixed-length quality index (``codec.quality_index_bits``, e.g. 7
    bits for JPEG's 100 levels) and then the payload bytes; the receiver rebuilds the file
    from the codec's :meth:`~tosc.source_coding.classic.ClassicCodec.template` for that
    quality and the image shape, so every per-image choice is counted in the rate.

    The bisection is answered from a :class:`~tosc.source_coding.classic.table.RateTable`
    (encodes cached on disk, ``cache``: a RateCache, None for memory only, default: the user's
    cache folder), so the same image at many budgets is encoded once per quality.
    """

    _DEFAULT = object()

    def __init__(self, codec_name: str, measure: str, cache=_DEFAULT) -> None:
        from ..source_coding import classic
        from ..source_coding.classic.table import RateCache, RateTable

        if measure not in ("file", "payload"):
            raise ConfigError(f"measure must be 'file' or 'payload', got {measure!r}")
        self._classic = classic
        self.codec = classic.get_codec(codec_name)
        self.measure = measure
        self.table = RateTable(self.codec, RateCache() if cache is ClassicSource._DEFAULT else cache)
        self.index_bits = self.codec.quality_index_bits if measure == "payload" else 0
        self._templates: dict[tuple, bytes] = {}
        self.memo_key = ("classic", codec_name, measure)  # decode() is a pure function of these and the bits
        # decoding is a pure function of the file: the table's decoded images, keyed by the
        # file's content, spare decoding a file the receiver rebuilt identically
        self._decoded: dict[bytes, np.ndarray] = {}

    def _template(self, quality: int, shape: tuple[int, ...]) -> bytes:
        key = (quality, tuple(shape))
        if key not in self._templates:
            self._templates[key] = self.codec.template(quality, tuple(shape))
        return self._templates[key]

    def budget_bytes(self, budget_bits: int) -> int:
        """Bytes of file or payload that fit ``budget_bits`` after the quality index (-1: none)."""
        return (budget_bits - self.index_bits) // 8 if budget_bits >= self.index_bits else -1

    def _match(self, image: torch.Tensor, budget_bits: int):
        budget = self.budget_bytes(budget_bits)
        return None if budget < 0 else self._classic.match_rate(self.codec, image, budget, self.measure, self.table)

    def encode(self, images: torch.Tensor, budget_bits: int) -> SourceEncoding:
        out: list[np.ndarray | None] = []
        for image in images:
            match = self._match(image, budget_bits)
            if match is None or not match.fits:
                out.append(None)
                continue
            entry = self.table.entry(image, match.quality)
            if len(self._decoded) > 100_000:
                self._decoded.clear()
            self._decoded[hashlib.sha256(match.bitstream).digest()] = entry.decoded
            if self.measure == "file":
                out.append(bits_from_bytes(match.bitstream))
                continue
            payload = self.codec.payload(match.bitstream)
            if self.codec.rebuild_file(self._template(match.quality, tuple(image.shape)), payload) != match.bitstream:
                # never send a payload whose headers the receiver could not rebuild exactly
                raise DataError(f"{self.codec.name}: the file at quality {match.quality} holds header bytes that "
                                "its template does not; payload-only coding would hide them")
            index = match.quality - self.codec.quality_min
            prefix = np.array([(index >> b) & 1 for b in range(self.index_bits - 1, -1, -1)], dtype=np.uint8)
            out.append(np.concatenate([prefix, bits_from_bytes(payload)]))
        return SourceEncoding(out)

    def prepare(self, images: torch.Tensor, budgets_bits, jobs: int = 1) -> None:
        """Fill the rate table for ``images`` at every budget in ``budgets_bits`` (bits per
        image), ``jobs`` processes splitting the images; later encodes only look up."""
        budgets = sorted({self.budget_bytes(int(b)) for b in budgets_bits} - {-1})
        if not budgets or not len(images):
            return
        from ..source_coding.classic.table import fill_table

        fill_table(self.table, images, budgets, self.measure, jobs=jobs)

    def decode(self, bits: np.ndarray, shape: tuple[int, int, int]) -> torch.Tensor:
        c, h, w = shape
        bits = np.asarray(bits, dtype=np.uint8)
        if self.measure == "payload":
            if len(bits) < self.index_bits:
                raise CorruptFileError(f"{self.codec.name}: {len(bits)} bits hold no quality index")
            index = int("".join(map(str, bits[: self.index_bits].tolist())), 2)
            if index >= self.codec.quality_levels:
                raise CorruptFileError(f"{self.codec.name}: quality index {index} out of range")
            payload = bytes_from_bits(bits[self.index_bits:])
            try:
                data = self.codec.rebuild_file(self._template(self.codec.quality_min + index, shape), payload)
            except (ValueError, IndexError) as exc:
                raise CorruptFileError(f"{self.codec.name}: cannot rebuild the file ({exc})") from None
        else:
            data = bytes_from_bits(bits)
        # the receiver knows the image size: a damaged size field (within the codecs' generic
        # 4096 x 4096 limit, e.g. 28 x 524316) must not make the library decode megapixels;
        # coded sizes may exceed the picture by block padding (HEVC codes 28 x 28 as 64 x 64)
        declared = self.codec.parse(data)
        if declared.height > max(2 * h, h + 128) or declared.width > max(2 * w, w + 128):
            raise CorruptFileError(f"{self.codec.name}: headers declare {declared.height} x {declared.width} "
                                   f"pixels for a {h} x {w} image")
        known = self._decoded.get(hashlib.sha256(data).digest())
        if known is not None and known.shape[:2] == (h, w) and (known.ndim == 2) == (c == 1):
            return self.table.decoded_tensor(known)
        return torch.as_tensor(self.codec.decode(data, channels=c), dtype=torch.float32)


class LearnedFamilySource:
    """Per image, the highest-rate model of a family whose stream fits the budget; below the
    lowest model's rate, that model's stream with its smallest latents zeroed (see
    :meth:`truncate_to_fit`). ``device``: where the codecs' transforms run (entropy coding
    stays on the CPU)."""

    def __init__(self, variant: str, device: str = "cpu") -> None:
        from ..source_coding.learned import LearnedCodec
        from ..source_coding.learned.zoo import damaged_codecs, family_codecs

        # unreadable zoo files cannot say their variant: the family may be missing models, so
        # every record says which files were skipped (a results change never goes unexplained)
        self.damaged = damaged_codecs()
        entries = family_codecs(variant)
        if not entries:
            raise UnknownNameError(f"no trained {variant} codecs in the model zoo (run scripts/train_family.py)")
        entries.sort(key=lambda e: e.metrics.get("bpp", 0.0))
        # the same zoo files on the same device encode and decode alike (any link, any system);
        # read before loading, so a file replaced meanwhile cannot pass for the old one
        self.memo_key = ("learned", variant, str(device), tuple(_file_version(e.path) for e in entries))
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

    def _analyse(self, images: torch.Tensor) -> tuple[torch.Tensor, list[list[bytes]], dict]:
        """(the lowest model's symbols N x latent_dim, every model's N streams, an empty memo of
        truncate_to_fit results keyed by (image, max bytes)): all the encoding that does not
        depend on the budget."""
        # the lowest model's latents also feed truncate_to_fit: analyse the batch once
        lowest_symbols = self.codecs[0].symbols(images)[0]
        streams = [self.codecs[0].encode_symbols(lowest_symbols)] + [c.encode(images) for c in self.codecs[1:]]
        return lowest_symbols, streams, {}

    def encode(self, images: torch.Tensor, budget_bits: int) -> SourceEncoding:
        # once per image batch, not once per operating point
        lowest_symbols, streams, truncations = _ANALYSED.get((self.memo_key, batch_key(images)),
                                                             lambda: self._analyse(images))
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
                max_bytes = (budget_bits - self.index_bits) // 8
                if (i, max_bytes) not in truncations:
                    truncations[i, max_bytes] = self.truncate_to_fit(lowest_symbols[i], max_bytes)
                stream = truncations[i, max_bytes]
                choice = 0
                self.truncated += stream is not None
            if stream is None:
                out.append(None)
                continue
            prefix = np.array([(choice >> b) & 1 for b in range(self.index_bits - 1, -1, -1)], dtype=np.uint8)
            out.append(np.concatenate([prefix, bits_from_bytes(stream)]))
        facts = {"images_truncated_to_fit": int(self.truncated)}
        if self.damaged:
            facts["zoo_skipped_damaged"] = list(self.damaged)
        return SourceEncoding(out, facts)

    def decode(self, bits: np.ndarray, shape: tuple[int, int, int]) -> torch.Tensor:
        choice = int("".join(map(str, bits[: self.index_bits].tolist())) or "0", 2)
        if choice >= len(self.codecs):
            raise CorruptFileError(f"model index {choice} out of range")
        return self.codecs[choice].decode([_stream_of(bits[self.index_bits:])])[0]


class ConvCodecSource:
    """Codec v3 (one variable-rate checkpoint, ``<variant>-v3`` in the zoo): per image, the
    highest quality index whose stream fits the budget. The index travels inside the stream
    and is counted; trailing zero bits are not sent (the decoder reads missing bits as zeros).
    ``device``: where the float transforms run (entropy coding and the integer network stay on
    the CPU, so the receiver's tables never depend on the device)."""

    def __init__(self, name: str, device: str = "cpu") -> None:
        from ..source_coding.learned.conv_codec import ConvLearnedCodec
        from ..zoo import codec_path

        if not codec_path(name).exists():
            raise UnknownNameError(f"no trained codec {name} in the model zoo (run scripts/train_codec_v3.py)")
        self.memo_key = ("learned-v3", name, str(device), _file_version(codec_path(name)))  # before loading
        self.name = name
        self._kind: str | None = None
        self.codec = ConvLearnedCodec.load(name, device)

    def encode(self, images: torch.Tensor, budget_bits: int) -> SourceEncoding:
        from ..source_coding.learned.conv_codec import stream_bits

        # once per image batch and budget, not once per operating point (nor once per run)
        key = batch_key(images)
        streams, quality = _ENCODED.get((self.memo_key, key, int(budget_bits)),
                                        lambda: self._encode_to_budget(images, key, int(budget_bits)))
        out: list[np.ndarray | None] = []
        for s in streams:
            out.append(None if s is None else bits_from_bytes(s)[: stream_bits(s)])
        sizes = np.array([len(b) for b in out if b is not None], dtype=np.float64)
        facts: dict = {"quality_index_mean": float(quality[quality >= 0].mean()) if (quality >= 0).any() else None}
        if (quality >= 0).any():  # the share of images each extra mode took
            mode = self.codec.mode_of(quality[quality >= 0])
            if self.codec.predictive is not None:
                facts["predictive_share"] = float((mode == 1).mean())
            if self.codec.global_mode is not None:
                facts["global_share"] = float((mode == 2).mean())
        if len(sizes) and budget_bits > 0:
            facts["budget_filled_mean"] = float(sizes.mean() / budget_bits)
            facts["budget_filled_min"] = float(sizes.min() / budget_bits)
        return SourceEncoding(out, facts)

    def _disk_kind(self) -> str:
        """What a stored encode depends on besides the images and the budget: the checkpoint's
        bytes, the codec's source, torch's version and the device of the float transforms."""
        from ..diskcache import file_digest, source_digest
        from ..source_coding import learned
        from ..zoo import codec_path

        if self._kind is None:
            code = source_digest(*sorted(Path(learned.__file__).parent.glob("*.py")))
            from ..source_coding.learned.refine import encoder_key

            self._kind = (f"v3-encode{_ENCODE_FORMAT}|{file_digest(codec_path(self.name))}|code={code}"
                          f"|torch={torch.__version__}|device={self.memo_key[2]}"
                          f"|{encoder_key(self.codec.objective, self.codec.refinement)}")
        return self._kind

    def _encode_to_budget(self, images: torch.Tensor, key: bytes, budget_bits: int):
        """encode_to_budget through the on-disk cache ``v3-encodes`` (:mod:`tosc.diskcache`):
        a second run of a grid looks the streams up instead of searching the quality again."""
        from ..diskcache import cache_lookup, cache_store
        from .memo import caching_enabled

        row = hashlib.sha256(key + budget_bits.to_bytes(8, "little", signed=True)).digest()
        kind = self._disk_kind() if caching_enabled() else None  # no file digest while caching is off
        found = cache_lookup(_ENCODE_CACHE, kind, [row]).get(row)
        unpacked = _unpack_streams(found, len(images)) if found is not None else None
        if unpacked is not None:
            return unpacked
        streams, quality = self.codec.encode_to_budget(images, budget_bits, ladder=_LADDERS.get(
            (self.memo_key, key), lambda: self.codec.ladder(images)))
        cache_store(_ENCODE_CACHE, kind, {row: _pack_streams(streams, quality)})
        return streams, quality

    def decode(self, bits: np.ndarray, shape: tuple[int, int, int]) -> torch.Tensor:
        if shape[0] != self.codec.in_channels:
            raise DataError(f"this codec decodes {self.codec.in_channels}-channel images, not {shape[0]}")
        return self.codec.decode([_stream_of(bits)], tuple(shape[1:]))[0]

    def decode_many(self, bit_strings: list[np.ndarray], shape: tuple[int, int, int]) -> list:
        """:meth:`decode` of each bit string (an image, or the error it raised), in one batch:
        each image equals its own decode bit for bit (``per_image`` synthesis). A batch that
        raises is decoded one string at a time to find which."""
        if shape[0] == self.codec.in_channels and bit_strings:
            try:
                return list(self.codec.decode([_stream_of(b) for b in bit_strings], tuple(shape[1:]), per_image=True))
            except (CorruptFileError, DataError):
                pass
        out: list = []
        for bits in bit_strings:
            try:
                out.append(self.decode(bits, shape))
            except (CorruptFileError, DataError) as exc:
                out.append(exc)
        return out


def _stream_of(bits: np.ndarray) -> bytes:
    """A received bit string as the stream's bytes (missing trailing bits read as zeros)."""
    bits = np.asarray(bits, np.uint8)
    return bytes_from_bits(np.concatenate([bits, np.zeros((-len(bits)) % 8, np.uint8)]))


_ENCODE_FORMAT = 1  # bump when the packed layout below changes
_ENCODE_CACHE = f"v3-encodes-v{_ENCODE_FORMAT}"  # tosc.diskcache.shared_cache name


def _pack_streams(streams: list[bytes | None], quality: np.ndarray) -> bytes:
    """N streams (None: nothing fits) and quality indices as bytes: N int64 qualities, N int64
    lengths (-1 for None), then the streams back to back."""
    lengths = np.array([-1 if s is None else len(s) for s in streams], dtype="<i8")
    return (len(streams).to_bytes(8, "little") + np.asarray(quality, dtype="<i8").tobytes() + lengths.tobytes()
            + b"".join(s for s in streams if s is not None))


def _unpack_streams(blob: bytes, n: int) -> tuple[list[bytes | None], np.ndarray] | None:
    """The inverse of :func:`_pack_streams`; None unless it holds exactly ``n`` images."""
    if len(blob) < 8 or int.from_bytes(blob[:8], "little") != n or len(blob) < 8 + 16 * n:
        return None
    quality = np.frombuffer(blob, dtype="<i8", count=n, offset=8).astype(np.int64)
    lengths = np.frombuffer(blob, dtype="<i8", count=n, offset=8 + 8 * n)
    if int(lengths[lengths > 0].sum()) != len(blob) - 8 - 16 * n:
        return None
    streams: list[bytes | None] = []
    at = 8 + 16 * n
    for length in lengths.tolist():
        streams.append(None if length < 0 else blob[at:at + length])
        at += max(length, 0)
    return streams, quality


class DigitalSystem(System):
    def __init__(self, name: str, source_factory: Callable[[], object], link: str, *, residual_ber: float = 0.0,
                 dataset: str = "fashion-mnist", dataset_root: str | None = None, device: str = "cpu") -> None:
        if link not in _LINKS:
            raise ConfigError(f"link must be one of {', '.join(_LINKS)}, got {link!r}")
        self.name, self.link_kind, self.mode = name, link, _LINKS[link][0]
        self.device = device  # where the source coder's networks run (classic codecs: "cpu")
        self.source = source_factory()
        self.residual_ber = residual_ber
        self.dataset, self.dataset_root = dataset, dataset_root  # whose training-set mean fills failed images

    def _link(self, channel: str):
        return _LINK_TYPES[self.link_kind](channel=channel, residual_ber=self.residual_ber)

    def budget_bits(self, snr_db: float, n_channel_uses: int, channel: str = "awgn") -> int:
        """Payload bits per image the link carries at this point (0 where nothing fits)."""
        try:
            return self._link(channel).capacity_bits(snr_db, n_channel_uses)
        except DoesNotFitError:
            return 0

    def prepare(self, images: torch.Tensor, points, jobs: int = 1) -> None:
        """Do the noise-free source coding of ``points`` ((channel, snr_db, n_channel_uses)
        each) ahead of them, over ``jobs`` processes, where the source coder can (a classic
        codec fills its rate table); transmit() then looks the results up."""
        prepare = getattr(self.source, "prepare", None)
        if prepare is not None:
            prepare(images, sorted({self.budget_bits(snr, k, channel) for channel, snr, k in points}), jobs)

    def _decode_all(self, bit_strings: list[np.ndarray], shape: tuple[int, int, int]) -> list:
        """The source's decode of each bit string: an image, or the CorruptFileError / DataError
        it raised. Each distinct bit string is decoded once per process (a source without a
        ``memo_key`` decodes every time; errors are never cached), and the rest in one call to
        the source's ``decode_many`` where it has one (same images, less overhead)."""
        key = getattr(self.source, "memo_key", None)
        keys = [None if key is None else (key, bits_key(b), tuple(shape)) for b in bit_strings]
        out: list = [None if k is None else _DECODED.peek(k) for k in keys]
        first: dict = {}  # a bit string that arrives twice is decoded once
        todo = [j for j, image in enumerate(out)
                if image is None and (keys[j] is None or first.setdefault(keys[j], j) == j)]
        many = getattr(self.source, "decode_many", None)
        if many is not None and len(todo) > 1:
            results = many([bit_strings[j] for j in todo], shape)
        else:
            results = []
            for j in todo:
                try:
                    results.append(self.source.decode(bit_strings[j], shape))
                except (CorruptFileError, DataError) as exc:
                    results.append(exc)
        for j, result in zip(todo, results):
            out[j] = result
            if keys[j] is not None and not isinstance(result, Exception):
                _DECODED.put(keys[j], result)
        return [out[first[k]] if out[j] is None else out[j] for j, k in enumerate(keys)]

    def transmit(self, images: torch.Tensor, *, snr_db: float, n_channel_uses: int, channel: str = "awgn",
                 seed: int = 0) -> Transmission:
        if images.ndim != 4:
            raise DataError(f"expected images N x C x H x W, got shape {tuple(images.shape)}")
        n, c, h, w = images.shape
        link = self._link(channel)
        fallback = fallback_image((c, h, w), self.dataset, self.dataset_root)
        budget = self.budget_bits(snr_db, n_channel_uses, channel)
        encoded = self.source.encode(images, budget)  # a budget of 0 fits nothing, and says so
        payloads = encoded.bits
        fitted = np.array([p is not None for p in payloads], dtype=bool)
        received = fallback.expand(n, c, h, w).clone()
        ok = np.zeros(n, bool)
        payload_bits = np.zeros(n, np.int64)
        uses = np.zeros(n, np.int64)
        failed = np.zeros(n, np.int64)
        decode_errors = np.zeros(n, bool)
        info = {"budget_bits": int(budget), "link": self.link_kind}
        info.update(encoded.info)
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
            arrived, bit_strings = [], []
            for i, r in zip(sent, out.images):
                payload_bits[i], uses[i], failed[i] = r.payload_bits, r.n_channel_uses, r.n_failed_codewords
                if r.ok:
                    arrived.append(i)
                    bit_strings.append(r.bits)
            decoded = self._decode_all(bit_strings, (c, h, w))
            for i, image in zip(arrived, decoded):
                if isinstance(image, Exception) or image.shape != (c, h, w):
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


def _register_learned(variant: str) -> None:
    """One system per link for the old fixed-rate family of a variant (the zoo's
    ``<variant>-r<k>`` models, 28 x 28 grey only), named ``<variant>-family+<link>``: codec v3
    serves the plain names since it matched the family at its lowest rates and passed it above.
    Kept to compare with and to read the family's files; never a proposed system."""
    for link, (mode, link_desc) in _LINKS.items():
        name = f"{variant}-family+{link}"
        registry.register("system", name, f"the old fixed-rate learned {variant} family (28 x 28 grey) over the "
                          f"{link_desc}", mode=mode, link=link, family="learned", source=variant, proposed=False,
                          trained_on="items", devices=("cpu", "cuda"))(
            lambda variant=variant, link=link, name=name, device="cpu", **kw: DigitalSystem(
                name, lambda: LearnedFamilySource(variant, device), link, device=device, **kw))


for _codec in registry.select("codec", family="classic"):
    _register_classic(_codec)
for _variant in ("mse-only", "tosc-sr", "task-only"):
    _register_learned(_variant)


def _register_conv(variant: str, proposed: bool, images: str) -> None:
    """Codec v3 systems: one variable-rate checkpoint per variant, over every link. ``images``:
    what the checkpoint was trained on, "items" (Fashion-MNIST, zoo name ``<variant>-v3``),
    "scenes" (fashion-scenes, ``<variant>-v3-scenes``) or "scenes-rgb" (fashion-scenes-rgb,
    ``<variant>-v3-scenes-rgb``); all code images of any size with their checkpoint's channels."""
    source = f"{variant}-v3" if images == "items" else f"{variant}-v3-{images}"
    trained_on = "items" if images == "items" else "scenes"  # the kind; the channel count is the checkpoint's
    for link, (mode, link_desc) in _LINKS.items():
        # the item codecs serve the variants' plain names (``tosc-sr+ldpc``), the scene ones their own
        name = f"{variant}+{link}" if images == "items" else f"{source}+{link}"
        registry.register("system", name, f"learned {variant} codec v3 (variable rate, trained on {images}) over the "
                          f"{link_desc}", mode=mode, link=link, family="learned-v3", source=source, proposed=proposed,
                          trained_on=trained_on, devices=("cpu", "cuda"))(
            lambda source=source, link=link, name=name, device="cpu", **kw: DigitalSystem(
                name, lambda: ConvCodecSource(source, device), link, device=device, **kw))


for _images in ("items", "scenes"):
    _register_conv("mse-only", proposed=False, images=_images)
    _register_conv("tosc-sr", proposed=True, images=_images)
    _register_conv("task-only", proposed=False, images=_images)
# colour scenes: MSE-only and TOSC-SR (no task-only checkpoint was trained for them)
_register_conv("mse-only", proposed=False, images="scenes-rgb")
_register_conv("tosc-sr", proposed=True, images="scenes-rgb")
