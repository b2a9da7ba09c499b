"""Transmission: the channel conventions, the digital (5G LDPC + QAM) link, the analog
(JSCC) channel and the ideal capacity-bound link.

Where things are:

- ``conventions``: dB, N0, Eb/N0, capacity, CBR -> channel uses, bit budgets (docs/channel.md).
- ``fading``: AWGN, ``rayleigh-block``, ``rayleigh-fast`` on complex tensors (registered
  under kind ``channel``).
- ``analog``: per-image power normalisation and the differentiable :class:`AnalogChannel`.
- ``modulation``: BPSK/QPSK/16-QAM/64-QAM (Sionna mapper, exact APP demapper), uncoded BER.
- ``ldpc``: 5G NR LDPC codes (Sionna encoder, Sionna BP and the faster equivalent BP).
- ``mcs``: the modulation-and-coding table (simulated, shipped in ``data/``).
- ``digital``: :class:`DigitalLink`, payload bits of any length -> codewords -> bits + flags.
- ``ideal``: :class:`IdealLink`, bits up to k log2(1 + SNR) arrive error-free.
- ``residual``: optional bit flips after decoding.
"""

from .analog import AnalogChannel, complex_to_real, normalize_power, real_to_complex
from .conventions import (
    CHANNEL_KINDS,
    CSI_MODES,
    bit_budget,
    capacity_bits_per_use,
    channel_uses,
    db_to_linear,
    ebno_db_to_n0,
    ideal_bit_budget,
    linear_to_db,
    parse_cbr,
    snr_db_to_n0,
)
from .digital import (
    DigitalLink,
    Link,
    LinkOutput,
    ReceivedPayload,
    SegmentPlan,
    bits_from_bytes,
    bytes_from_bits,
    choose_mcs,
    plan_segments,
)
from .fading import ChannelOutput, FadingChannel, make_channel
from .ideal import IdealLink
from .ldpc import LDPC5GCode
from .mcs import MCS_SET, Mcs, McsChoice, McsTable, get_mcs, load_table
from .modulation import MODULATIONS, Modulation, QamModem, get_modulation, uncoded_ber
from .residual import flip_bits

__all__ = [
    "CHANNEL_KINDS",
    "CSI_MODES",
    "db_to_linear",
    "linear_to_db",
    "snr_db_to_n0",
    "ebno_db_to_n0",
    "capacity_bits_per_use",
    "parse_cbr",
    "channel_uses",
    "bit_budget",
    "ideal_bit_budget",
    "FadingChannel",
    "ChannelOutput",
    "make_channel",
    "AnalogChannel",
    "normalize_power",
    "real_to_complex",
    "complex_to_real",
    "Modulation",
    "MODULATIONS",
    "get_modulation",
    "QamModem",
    "uncoded_ber",
    "LDPC5GCode",
    "Mcs",
    "MCS_SET",
    "get_mcs",
    "McsChoice",
    "McsTable",
    "load_table",
    "Link",
    "DigitalLink",
    "IdealLink",
    "LinkOutput",
    "ReceivedPayload",
    "SegmentPlan",
    "plan_segments",
    "choose_mcs",
    "bits_from_bytes",
    "bytes_from_bits",
    "flip_bits",
]
