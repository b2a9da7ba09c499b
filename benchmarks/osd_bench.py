"""Ordered-statistics decoding: tosc's compiled OSD against Sionna's OSDecoder on the same words.

    .venv/bin/python benchmarks/osd_bench.py [--words 40]

For three short shapes of the link (QPSK at 49 and 98 channel uses, 64-QAM at 49), at an SNR
where BP fails often, it draws noisy words, keeps those BP failed on (what the link hands to
OSD), and decodes them with Sionna PHY's ``OSDecoder(encoder=..., t=2)`` and with
``tosc.channel.osd.osd_decode(..., order=2)``, one torch thread. It prints CPU milliseconds per
word for each, the ratio, and whether every decision agrees (it must: both search the same
candidates with equivalent metrics).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

SHAPES = ((49, 2, 22, 0.0), (98, 2, 139, 4.75), (49, 6, 253, 18.75))  # (uses, log2 M, K, SNR dB)


def main() -> int:
    from sionna.phy.fec.linear import OSDecoder

    from tosc.channel.fading import FadingChannel
    from tosc.channel.ldpc import get_code
    from tosc.channel.modulation import get_modem
    from tosc.channel.osd import osd_decode

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--words", type=int, default=40, help="BP failures to decode per shape")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"load average {os.getloadavg()[0]:.1f}")
    print("| shape | words | Sionna OSDecoder ms/word | tosc ms/word | ratio | same decisions |")
    print("| --- | --- | --- | --- | --- | --- |")
    for uses, m, k, snr in SHAPES:
        code = get_code(k, uses * m, m)
        name = {2: "qpsk", 4: "16qam", 6: "64qam", 8: "256qam"}[m]
        modem = get_modem(name)
        g = torch.Generator().manual_seed(k)
        failed = []
        while sum(len(f) for f in failed) < args.words:
            u = torch.randint(0, 2, (2000, k), generator=g, dtype=torch.uint8)
            out = FadingChannel("awgn")(modem.map(code.encode(u)), snr, g)
            llr = modem.demap(out.equalised("zf"), out.effective_n0())
            failed.append(llr[~code.decode(llr).ok])
        llr = torch.cat(failed)[:args.words]
        osd_decode(code.generator, llr[:1].numpy(), 2)  # compile (or load numba's cache) first
        t0 = time.process_time()
        ours, _, _ = osd_decode(code.generator, llr.numpy(), 2)
        t_ours = time.process_time() - t0
        sionna = OSDecoder(encoder=code.encoder, t=2, device="cpu")
        t0 = time.process_time()
        theirs = np.concatenate([sionna(llr[i:i + 8]).numpy() for i in range(0, len(llr), 8)])
        t_theirs = time.process_time() - t0
        same = np.array_equal(code.encode(torch.from_numpy(ours)).numpy().astype(np.uint8), theirs.astype(np.uint8))
        n = len(llr)
        print(f"| k={uses} {name} K={k} n={uses * m} at {snr:g} dB | {n} | {1e3 * t_theirs / n:.2f} | "
              f"{1e3 * t_ours / n:.3f} | {t_theirs / t_ours:.0f}x | {'yes' if same else 'NO'} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
