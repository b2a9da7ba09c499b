"""The one place that touches Sionna PHY beyond its documented calls, checked against its version.

tosc uses Sionna's 5G LDPC encoder and decoder (and reads a few attributes of them that are
not public API: the pruned graph, filler bits, the output interleaver), its CRC encoder
and decoder, and its QAM constellation. Those attributes have moved between releases, so
every access goes through this module, which refuses a Sionna outside the tested range
with a clear :class:`~tosc.errors.DependencyMissingError` instead of failing somewhere deep.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from ..errors import DependencyMissingError
from ..provenance import require_tested

__all__ = ["TESTED_MAJOR", "check_sionna", "crc", "CrcCodec", "ldpc5g_encoder", "ldpc5g_internals", "Ldpc5gInternals"]

TESTED_MAJOR = (2,)  # Sionna PHY 2.x (the torch port); 2.2.0 at the time of writing


@functools.lru_cache(maxsize=1)
def check_sionna() -> str:
    """Sionna's version string; raises DependencyMissingError outside :data:`TESTED_MAJOR`."""
    return require_tested("sionna", "Sionna", tuple((m,) for m in TESTED_MAJOR))


@dataclass(frozen=True)
class CrcCodec:
    """A 38.212 CRC for blocks of ``k`` bits: ``attach([..., k]) -> [..., k + length]`` and
    ``check([..., k + length]) -> (bits [..., k], passed [...] bool)``; bits are 0/1 tensors."""

    polynomial: str  # "CRC6", "CRC11", "CRC16", "CRC24A", "CRC24B"
    k: int
    length: int
    _encoder: object
    _decoder: object

    def attach(self, bits: torch.Tensor) -> torch.Tensor:
        return self._encoder(bits.to(torch.float32)).to(torch.uint8)

    def check(self, bits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        info, ok = self._decoder(bits.to(torch.float32))
        return info.to(torch.uint8), ok[..., 0].bool()


@functools.lru_cache(maxsize=64)
def crc(polynomial: str, k: int) -> CrcCodec:
    """A cached :class:`CrcCodec` (Sionna's ``CRCEncoder`` / ``CRCDecoder``) for ``k`` information bits."""
    check_sionna()
    from sionna.phy.fec.crc import CRCDecoder, CRCEncoder

    encoder = CRCEncoder(polynomial, k=int(k), device="cpu")
    return CrcCodec(polynomial, int(k), int(encoder.crc_length), encoder, CRCDecoder(encoder, device="cpu"))


@dataclass(frozen=True)
class Ldpc5gInternals:
    """What rate recovery needs from a Sionna ``LDPC5GEncoder`` / ``LDPC5GDecoder`` pair.

    pcm: the pruned parity-check matrix (scipy sparse); n_pruned: its columns; buffer_len:
    the circular-buffer length the received LLRs are padded to; z: the lifting size; k_filler:
    the number of filler bits; out_int_inv: the inverse 38.212 output interleaver or None.
    """

    pcm: object
    n_pruned: int
    buffer_len: int
    z: int
    k_filler: int
    out_int_inv: torch.Tensor | None


def ldpc5g_encoder(k: int, n: int, bits_per_symbol: int | None):
    """Sionna's ``LDPC5GEncoder`` for k information bits rate-matched to n coded bits.

    Sionna refuses code rates below 1/5 ("outer repetition coding not supported"), although
    38.212 sends more of base graph 2's parity bits there: the first n bits of the circular
    buffer. Its encoder already computes the whole buffer and slices the first n; only the
    rate check stands in the way. So a lower rate is built at rate exactly 1/5 (the same base
    graph 2 and lifting, which depend on k alone at rates <= 1/4) and then given length n and
    the output interleaver for n. The caller keeps n within the buffer (no repetition).
    """
    check_sionna()
    from sionna.phy.fec.ldpc import LDPC5GEncoder

    if k / n >= 0.2:
        return LDPC5GEncoder(k, n, num_bits_per_symbol=bits_per_symbol, device="cpu", check_input=False)
    encoder = LDPC5GEncoder(k, 5 * k, num_bits_per_symbol=None, device="cpu", check_input=False)
    try:
        if encoder.n_cb_comp < n or encoder._bg != "bg2":
            raise ValueError(f"{k}/{n} needs repetition beyond the {encoder.n_cb_comp}-bit circular buffer")
        encoder._n, encoder._coderate = int(n), k / n
        if bits_per_symbol is not None:
            out_int, out_int_inv = encoder.generate_out_int(int(n), int(bits_per_symbol))
            encoder._num_bits_per_symbol = int(bits_per_symbol)
            encoder.register_buffer("_out_int", torch.tensor(out_int, dtype=torch.int32))
            encoder.register_buffer("_out_int_inv", torch.tensor(out_int_inv, dtype=torch.int32))
    except AttributeError as exc:
        raise DependencyMissingError(f"this Sionna lacks an LDPC attribute tosc sets for rates below 1/5 ({exc}); "
                                     "pin the version in requirements.lock") from None
    return encoder


def ldpc5g_internals(encoder, decoder, interleaved: bool) -> Ldpc5gInternals:
    """Read the pruned graph and rate-matching layout from Sionna's encoder and decoder."""
    check_sionna()
    try:
        return Ldpc5gInternals(
            pcm=decoder.pcm, n_pruned=int(decoder._n_pruned),
            buffer_len=int(encoder.n_cb_comp - decoder._nb_pruned_nodes), z=int(encoder.z),
            k_filler=int(encoder.k_filler),
            out_int_inv=encoder.out_int_inv.to(torch.int64) if interleaved else None)
    except AttributeError as exc:
        raise DependencyMissingError(f"this Sionna lacks an LDPC attribute tosc reads ({exc}); "
                                     "pin the version in requirements.lock") from None


def bp_decode(decoder, llr: torch.Tensor) -> torch.Tensor:
    """Sionna's own BP core on the pruned graph: logits [B, n_pruned] -> hard bits [B, n_pruned]."""
    check_sionna()
    from sionna.phy.fec.ldpc import LDPCBPDecoder

    return LDPCBPDecoder.call(decoder, llr)
