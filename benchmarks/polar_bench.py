"""CA-polar decoding: tosc's compiled CA-SCL decoder against Sionna's Polar5GDecoder on the same words.

    .venv/bin/python benchmarks/polar_bench.py [--words 1000] [--list-size 8]

For four short blocks of the link (QPSK at 49, 98, 196 and 392 channel uses, so E = 98 .. 784 coded
bits, code rates 0.6 with CRC11, 5G uplink construction), at an SNR where about one block in ten
fails, it draws noisy words (AWGN, tosc's QPSK demapper) and decodes them with Sionna PHY's
``Polar5GDecoder(Polar5GEncoder(k, n), dec_type="SCL", list_size=8)`` and with
``tosc.channel.polar.PolarCode(k, n).decode``, both on one torch thread. It prints CPU microseconds
per word for each, the ratio, both block error rates (payload bits wrong) and the share of words on
which the two decisions agree (not all: Sionna uses the exact boxplus and a rate-1 shortcut, tosc
min-sum, so words near the decision boundary can go either way). The machine load is printed too:
on a shared machine the absolute numbers move, the ratio much less.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import torch

# (coded bits E, payload bits k, SNR dB per QPSK symbol): rate k/E = 0.61, BLER about 0.1 at L = 8
SHAPES = ((98, 60, 3.5), (196, 120, 3.25), (392, 240, 3.0), (784, 480, 3.0))


def main() -> int:
    from sionna.phy.fec.polar import Polar5GDecoder, Polar5GEncoder

    from tosc.channel.fading import FadingChannel
    from tosc.channel.modulation import get_modem
    from tosc.channel.polar import PolarCode

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--words", type=int, default=1000, help="noisy words per shape")
    parser.add_argument("--list-size", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", category=UserWarning)
    modem = get_modem("qpsk")
    print(f"load average {os.getloadavg()[0]:.1f}; list size {args.list_size}, CRC11, {args.words} words per shape")
    print("| E | k | K | N | mode | SNR dB | Sionna us/word | tosc us/word | ratio | BLER Sionna | BLER tosc "
          "| same decisions |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for e, k, snr in SHAPES:
        code = PolarCode(k, e, "CRC11", args.list_size)
        g = torch.Generator().manual_seed(e)
        u = torch.randint(0, 2, (args.words, k), generator=g, dtype=torch.uint8)
        out = FadingChannel("awgn")(modem.map(code.encode(u)), snr, g)
        llr = modem.demap(out.equalised("zf"), out.effective_n0()).contiguous()
        code.decode(llr[:4])  # compile (or load numba's cache) first
        t0 = time.process_time()
        ours = code.decode(llr).bits
        t_ours = time.process_time() - t0
        enc = Polar5GEncoder(k, e)
        if not torch.equal(enc(u[:8].float()), code.encode(u[:8])):
            raise AssertionError(f"Sionna's code differs from tosc's at k={k}, E={e}")
        sionna = Polar5GDecoder(enc, dec_type="SCL", list_size=args.list_size)
        sionna(llr[:4])  # build its decoding tape first
        t0 = time.process_time()
        theirs = torch.cat([sionna(llr[i:i + 200]) for i in range(0, len(llr), 200)]).to(torch.uint8)
        t_theirs = time.process_time() - t0
        n = len(llr)
        bler_ours = (ours != u).any(1).float().mean().item()
        bler_theirs = (theirs != u).any(1).float().mean().item()
        same = (ours == theirs).all(1).float().mean().item()
        print(f"| {e} | {k} | {code.k_polar} | {code.n_polar} | {code.mode} | {snr:g} | {1e6 * t_theirs / n:.0f} | "
              f"{1e6 * t_ours / n:.1f} | {t_theirs / t_ours:.0f}x | {bler_theirs:.3f} | {bler_ours:.3f} | {same:.1%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
