"""A trained learned codec: real bitstreams in and out.

:class:`LearnedCodec` wraps a :class:`TinyImageCodec` whose entropy tables were
frozen at the end of training. ``encode`` returns one stream per image (the
payload) and ``encode_file``/``decode_file`` the ``.tosc`` container.

``device`` moves only the transforms (analysis, synthesis) to a GPU. Entropy coding
always runs on the CPU over the stored integer tables, so a stream decodes to the same
symbols wherever it was written; on CUDA the transforms run in strict float32 (no TF32),
so that a GPU rounds the latents as the CPU does except for values within float error of a
rounding boundary. ``benchmarks/gpu_check.sh`` measures how often that happens.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ...checkpoint import load_checkpoint, save_checkpoint
from ...errors import CorruptFileError, DataError
from ...zoo import codec_path
from . import arithmetic
from .bitstream import FileHeader, check_writer, pack_file, unpack_file
from .compressai_adapter import freeze_factorized, has_tables, prepare_tables, tables_of
from .model import CodecConfig, TinyImageCodec

__all__ = ["LearnedCodec", "freeze_entropy_tables", "load_codec_state"]

def freeze_entropy_tables(model: TinyImageCodec) -> None:
    """Compute the integer CDF tables once; they are saved with the weights and never recomputed."""
    freeze_factorized(model.entropy_bottleneck)


@contextlib.contextmanager
def _strict_float32(device: torch.device):
    # cuDNN convolutions default to TF32 (10-bit mantissa), which would round many latents
    # differently from the CPU; matmuls too if the user lowered their precision
    if device.type != "cuda":
        yield
        return
    matmul = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        with torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=True, allow_tf32=False):
            yield
    finally:
        torch.set_float32_matmul_precision(matmul)


def load_codec_state(model: TinyImageCodec, state_dict: dict) -> None:
    """Load weights including the variable-size entropy tables."""
    prepare_tables(model.entropy_bottleneck, state_dict, "entropy_bottleneck")
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as exc:
        raise CorruptFileError(f"checkpoint weights do not fit this architecture: {str(exc).splitlines()[0]}") from None


# images synthesised at once by decode_file (bounds its memory whatever the file holds)
DECODE_BATCH = 256


@dataclass
class LearnedCodec:
    model: TinyImageCodec
    name: str = "unnamed"
    meta: dict = field(default_factory=dict)
    device: str | torch.device = "cpu"  # where the transforms run: cpu, cuda, cuda:N or auto

    def __post_init__(self) -> None:
        from ...distributed import resolve_device

        self.device = resolve_device(self.device)
        self.model.to(self.device)
        self.model.eval()
        eb = self.model.entropy_bottleneck
        if not has_tables(eb):
            raise CorruptFileError("codec has no frozen entropy tables (call freeze_entropy_tables)")
        # converting the tables to Python lists once per codec (not once per image) is most of
        # the speed-up over CompressAI's stock compress()
        self._cdfs, self._lengths, self._offsets = tables_of(eb)
        self._indexes = list(range(self.model.config.latent_dim))
        digest = hashlib.sha256()
        for key, value in sorted(self.model.state_dict().items()):
            if not key.startswith("g_a."):  # the decoder's identity: synthesis weights and tables
                digest.update(key.encode())
                digest.update(value.detach().cpu().contiguous().numpy().tobytes())
        self.model_id = digest.digest()[:8]

    # -- loading ------------------------------------------------------------------
    @classmethod
    def load(cls, name_or_path: str | Path, device: str | torch.device = "cpu") -> "LearnedCodec":
        path = Path(name_or_path)
        if not path.suffix:
            path = codec_path(str(name_or_path))
        ckpt = load_checkpoint(path, kind="codec")
        if ckpt.get("arch") != "tiny-image-codec":
            raise CorruptFileError(f"{path}: architecture {ckpt.get('arch')!r} is not a tosc image codec")
        try:
            model = TinyImageCodec(CodecConfig.from_dict(ckpt["config"]["codec"]))
        except (KeyError, TypeError, ValueError) as exc:  # a damaged file that still unpickles
            raise CorruptFileError(f"{path}: damaged codec configuration ({type(exc).__name__}: {exc})") from None
        load_codec_state(model, ckpt["state_dict"])
        return cls(model, name=path.stem, meta={k: ckpt.get(k) for k in ("config", "metrics", "variant")},
                   device=device)

    def save(self, path: str | Path, **extra) -> None:
        save_checkpoint(path, kind="codec", arch="tiny-image-codec", state_dict=self.model.state_dict(),
                        config={"codec": self.model.config.to_dict(), **self.meta.get("config", {})}, **extra)

    # -- coding -------------------------------------------------------------------
    @property
    def config(self) -> CodecConfig:
        return self.model.config

    @torch.no_grad()
    def symbols(self, images: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
        """Quantised latents (int64, N x latent_dim, on the CPU) and the padding used."""
        images = torch.as_tensor(images, dtype=torch.float32).to(self.device)
        with _strict_float32(self.device):
            y, pad = self.model.analysis(images)
            return torch.round(y - self.model.medians()).long().cpu(), pad

    def encode(self, images: torch.Tensor) -> list[bytes]:
        """Images N x C x H x W in [0, 1] -> one stream per image."""
        sym, _ = self.symbols(images)
        return self.encode_symbols(sym)

    def encode_symbols(self, symbols: torch.Tensor) -> list[bytes]:
        """Quantised latents (int64, N x latent_dim, as :meth:`symbols` gives) -> one stream per row."""
        return [arithmetic.encode(row, self._indexes, self._cdfs, self._lengths, self._offsets)
                for row in torch.as_tensor(symbols).tolist()]

    def decode_symbols(self, streams: list[bytes]) -> torch.Tensor:
        rows = [arithmetic.decode(s, self._indexes, self._cdfs, self._lengths, self._offsets) for s in streams]
        return torch.tensor(rows, dtype=torch.int64).view(len(streams), self.config.latent_dim)

    @torch.no_grad()
    def reconstruct(self, symbols: torch.Tensor, pad: tuple[int, int, int, int]) -> torch.Tensor:
        y_hat = symbols.float() + self.model.medians()
        images = self.model.synthesis(y_hat, pad).clamp_(0.0, 1.0)
        # escape codes allow latents up to 2**40; such (damaged) values overflow the synthesis
        if not torch.isfinite(images).all():
            raise CorruptFileError("stream decodes to latent values far outside the model's range (damaged data)")
        # 8-bit images, multiples of 1/255 like every classic decoder's (see conv_codec.decode)
        return images.mul_(255).round_().div_(255)

    def decode(self, streams: list[bytes], image_hw: tuple[int, int] | None = None) -> torch.Tensor:
        """Streams -> 8-bit images N x C x H x W in [0, 1] (H, W default to the training size)."""
        h, w = image_hw or self.config.image_hw
        return self.reconstruct(self.decode_symbols(streams), self.model.padding_for(h, w))

    def encode_file(self, images: torch.Tensor) -> bytes:
        images = torch.as_tensor(images, dtype=torch.float32)
        self.model.check_images(images)
        if images.numel() and (images.min() < 0 or images.max() > 1 or not torch.isfinite(images).all()):
            raise DataError("images must be finite and lie in [0, 1]")
        _, c, h, w = images.shape
        header = FileHeader(self.model_id, (c, h, w), self.model.padding_for(h, w))
        return pack_file(header, self.encode(images))

    def decode_file(self, data: bytes) -> torch.Tensor:
        header, streams = unpack_file(data)
        check_writer(header, 1, self.model_id, self.name)
        c, h, w = header.shape
        ch, cw = self.config.canvas_hw
        if h > ch or w > cw:
            raise CorruptFileError(f"file declares {h}x{w} images; {self.name} decodes at most {ch}x{cw}")
        if c != self.config.in_channels or header.padding != self.model.padding_for(h, w):
            raise CorruptFileError("file header disagrees with the model's geometry")
        # in batches: the synthesis of N images at once holds about 150 KB of activations per
        # image (5.6 GB for a 60 KB file of 30,000 short streams); the output alone is C*H*W*4 each
        images = torch.zeros(len(streams), c, h, w)
        for start in range(0, len(streams), DECODE_BATCH):
            batch = streams[start:start + DECODE_BATCH]
            images[start:start + len(batch)] = self.reconstruct(self.decode_symbols(batch), header.padding)
        return images
