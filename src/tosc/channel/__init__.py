"""Transmission: the channel conventions, the digital (5G LDPC + QAM) link, the analog
(JSCC) channel and the ideal capacity-bound link.

Where things are:

- ``conventions``: dB, N0, Eb/N0, capacity, CBR -> channel uses, bit budgets (docs/channel.md).
- ``fading``: AWGN, ``rayleigh-block``, ``rayleigh-fast`` on complex tensors (registered
  under kind ``channel``).
- ``analog``: per-image power normalisation and the differentiable :class:`AnalogChannel`.
- ``fading``: also one class per channel kind (gains, receiver SNR, capacity, outage,
  normal approximation, how the digital link judges schemes on it).
- ``finite``: the normal approximation (finite-blocklength limit).
- ``modulation``: BPSK/QPSK/16/64/256-QAM (Sionna mapper, exact APP demapper), uncoded BER.
- ``ldpc``: 5G NR LDPC codes (Sionna encoder, Sionna BP and the faster equivalent BP).
- ``sionna_adapter``: the version-checked access to Sionna internals and its CRCs.
- ``bler``: the simulated BLER model of rate-matched codewords (shipped in ``data/``).
- ``mcs``: the older fixed modulation-and-coding table (``tosc channel mcs``).
- ``digital``: :class:`DigitalLink`, payload -> CRC -> rate-matched 5G LDPC -> QAM -> bits + flags.
- ``ideal``: :class:`IdealLink`, bits up to k log2(1 + SNR) arrive error-free;
  :class:`FiniteLengthLink`, bits up to the normal approximation arrive error-free (bounds).
- ``residual``: optional bit flips after decoding.
"""

from .analog import AnalogChannel, complex_to_real, normalize_power, real_to_complex
from .conventions import (
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
    Scheme,
    TransportPlan,
    bits_from_bytes,
    bytes_from_bits,
    choose_scheme,
    plan_transport,
)
from .fading import (AwgnChannel, ChannelOutput, FadingChannel, RayleighBlockChannel, RayleighFastChannel,
                     make_channel)
from .ideal import FiniteLengthLink, IdealLink
from .ldpc import LDPC5GCode
from .mcs import MCS_SET, Mcs, McsChoice, McsTable, get_mcs, load_table
from .modulation import MODULATIONS, Modulation, QamModem, get_modulation, uncoded_ber
from .residual import flip_bits

__all__ = [
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
    "AwgnChannel",
    "RayleighBlockChannel",
    "RayleighFastChannel",
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
    "FiniteLengthLink",
    "LinkOutput",
    "ReceivedPayload",
    "Scheme",
    "TransportPlan",
    "plan_transport",
    "choose_scheme",
    "bits_from_bytes",
    "bytes_from_bits",
    "flip_bits",
]
