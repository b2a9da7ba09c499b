"""Throughput and block error rate of the 5G LDPC decoders on the same LLRs.

    .venv/bin/python benchmarks/link_bench.py [--codewords 2000] [--threads 2] [--out bench.json]

Default settings of the issue: k = 512 information bits, n = 1024 coded bits, QPSK, AWGN,
20 BP iterations. For each Eb/N0 it draws one set of LLRs and decodes it with

- ``sionna``: Sionna PHY's ``LDPC5GDecoder(encoder, num_iter=20)`` as a Sionna user calls it
  (whole batch at once) with one torch thread, and ``sionna-2t`` with ``--threads`` threads;
- ``fast``: tosc's flooding BP with early stopping (batches of 256, one thread);
- ``fast-20it``: the same without early stopping (always 20 iterations);
- ``fast-Nmax``: early stopping after at most the link's N iterations (``tosc.channel.ldpc.NUM_ITER``);
- ``fast-2w``: early stopping, batches decoded by ``--threads`` worker threads.

It prints information bits per second of wall time and per CPU-second of this process
(the contention-proof number on a shared machine: one busy core = one CPU-second per
second), the ratio to single-threaded Sionna in CPU time, and each block error rate
(decoded information bits wrong) with a 95% Wilson interval, plus McNemar's exact test on
the codewords where the decoders disagree (same LLRs, so the comparison is paired). For
tosc's decoder it also prints the rate of blocks its parity check flags as failed (what the
link reports) and the undetected errors (flag ok, bits wrong). Then it times the whole digital link
(CRC, rate-matched encode, map, channel, demap, decode, CRC check) on images, at the scheme the
link chooses for 28x28 and CIFAR images and one fixed scheme. The machine load is printed too: on a
shared machine the absolute numbers move, the ratio much less.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time

import torch
from scipy import stats


def wilson(failures: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    if trials == 0:
        return 0.0, 1.0
    p = failures / trials
    den = 1 + z * z / trials
    mid = (p + z * z / (2 * trials)) / den
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / den
    return max(0.0, mid - half), min(1.0, mid + half)


def mcnemar_p(a_only: int, b_only: int) -> float:
    """Exact two-sided McNemar p-value for discordant pair counts."""
    n = a_only + b_only
    if n == 0:
        return 1.0
    return float(min(1.0, 2 * stats.binom.cdf(min(a_only, b_only), n, 0.5)))


def timed(fn, repeats: int = 1):
    """Best (wall seconds, CPU seconds of this process) over ``repeats`` runs, and the result."""
    best_wall, best_cpu, result = math.inf, math.inf, None
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn()
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return best_wall, best_cpu, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--codewords", type=int, default=2000, help="codewords per Eb/N0 point")
    parser.add_argument("--ebno-db", type=float, nargs="+", default=[1.5, 2.0, 2.5],
                        help="Eb/N0 points in dB (QPSK, rate 1/2: Es/N0 = Eb/N0)")
    parser.add_argument("--threads", type=int, default=2, help="cores to use")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="also write the numbers as JSON here")
    args = parser.parse_args(argv)

    from tosc.channel.conventions import ebno_db_to_snr_db
    from tosc.channel.digital import DigitalLink
    from tosc.channel.fading import FadingChannel
    from tosc.channel.ldpc import NUM_ITER, LDPC5GCode
    from tosc.channel.modulation import QamModem
    from tosc.provenance import git_commit, package_versions

    k, n, m = 512, 1024, 2
    code = LDPC5GCode(k, n, m, num_iter=20)
    link_code = LDPC5GCode(k, n, m, num_iter=NUM_ITER)  # the link's setting: more iterations, early stop
    modem = QamModem(m)
    gen = torch.Generator().manual_seed(args.seed)
    load = os.getloadavg()
    print(f"# 5G LDPC k={k} n={n} QPSK AWGN, 20 iterations, {args.codewords} codewords per point, "
          f"{args.threads} threads; load average {load[0]:.1f} on {os.cpu_count()} CPUs; "
          f"{platform.processor() or platform.machine()}")
    print(f"# {'Eb/N0':>6} {'decoder':<10} {'Mbit/s':>7} {'Mb/cpu-s':>8} {'x sionna':>8} {'BLER':>8} "
          f"{'95% CI':>19} {'flagged':>8} {'undet.':>6} {'iters':>5}  McNemar p vs sionna")
    records = []
    for ebno_db in args.ebno_db:
        snr_db = ebno_db_to_snr_db(ebno_db, m, k / n)
        u = torch.randint(0, 2, (args.codewords, k), generator=gen, dtype=torch.uint8)
        out = FadingChannel("awgn")(modem.map(code.encode(u)), snr_db, gen)
        llr = modem.demap(out.y, 10 ** (-snr_db / 10))

        # Sionna as a Sionna user runs it: the whole batch in one call, one torch thread
        # (CPU time is then clean), and with --threads threads on a subset for the wall clock
        torch.set_num_threads(1)
        t_ref, cpu_ref, ref_bits = timed(lambda: code.sionna_decoder(llr))
        ref_fail = (ref_bits.to(torch.uint8) != u).any(dim=1)
        runs = {"sionna": (t_ref, cpu_ref, ref_fail, None, None, torch.full((len(u),), 20.0))}
        if args.threads > 1:
            torch.set_num_threads(args.threads)
            sub = min(len(u), 500)
            t_multi, cpu_multi, _ = timed(lambda: code.sionna_decoder(llr[:sub]))
            scale = len(u) / sub
            runs[f"sionna-{args.threads}t"] = (t_multi * scale, cpu_multi * scale, ref_fail, None, None,
                                              torch.full((len(u),), 20.0))
            torch.set_num_threads(1)
        for name, early, workers, decoder in (("fast", True, 1, code), ("fast-20it", False, 1, code),
                                              (f"fast-{args.threads}w", True, args.threads, code),
                                              (f"fast-{NUM_ITER}max", True, 1, link_code)):
            if name.endswith("w") and args.threads == 1:
                continue
            t, cpu, res = timed(lambda: decoder.decode(llr, early_stop=early, workers=workers), repeats=2)
            fail = (res.bits != u).any(dim=1)
            undetected = int((res.ok & fail).sum())
            flagged = int((~res.ok).sum())
            runs[name] = (t, cpu, fail, undetected, flagged, res.iterations.float())
        for name, (t, cpu, fail, undetected, flagged, iters) in runs.items():
            rate, cpu_rate = len(u) * k / t / 1e6, len(u) * k / cpu / 1e6
            failures = int(fail.sum())
            lo, hi = wilson(failures, len(u))
            ratio = cpu_ref / cpu
            p = "" if name.startswith("sionna") else \
                f"{mcnemar_p(int((fail & ~ref_fail).sum()), int((ref_fail & ~fail).sum())):.3f}"
            und = "-" if undetected is None else str(undetected)
            flg = "-" if flagged is None else f"{flagged / len(u):.4f}"
            print(f"  {ebno_db:>6.2f} {name:<10} {rate:>7.3f} {cpu_rate:>8.3f} {ratio:>8.1f} {failures / len(u):>8.4f} "
                  f"[{lo:.4f}, {hi:.4f}] {flg:>8} {und:>6} {iters.mean().item():>5.1f}  {p}")
            records.append({"ebno_db": ebno_db, "snr_db": snr_db, "decoder": name, "mbit_per_s_wall": rate,
                            "mbit_per_cpu_s": cpu_rate, "ratio_to_sionna_cpu": ratio,
                            "bler": failures / len(u), "bler_ci95": [lo, hi], "block_errors": failures,
                            "codewords": len(u), "flagged_rate": None if flagged is None else flagged / len(u),
                            "undetected_errors": undetected, "mean_iterations": iters.mean().item()})

    # the whole link on CIFAR-sized images (192 channel uses each) and on large ones
    torch.set_num_threads(1)
    print("# whole digital link (encode, QAM, channel, APP demapping, decoding), payload Mbit/s")
    # the scheme is the one the link picks (rate-matched, CRC included) unless a fixed one is named
    for label, n_uses, mcs, snr in (("28x28 CBR 1/8", 98, None, 5.0), ("28x28 CBR 1/2", 392, None, 20.0),
                                    ("CIFAR 1/16", 192, None, 4.0), ("CIFAR 1/16 fixed", 192, "qpsk-1/2", 4.0),
                                    ("256x256 RGB 1/16", 12288, None, 13.0)):
        n_images = max(4, 40000 // n_uses)
        link = DigitalLink(mcs)
        mcs = mcs or link.choose(snr, n_uses).name
        cap = link.capacity_bits(snr, n_uses)
        payloads = [torch.randint(0, 2, (cap,), generator=gen).numpy() for _ in range(n_images)]
        link.transmit(payloads[:2], snr_db=snr, n_channel_uses=n_uses)  # warm-up: build the codes
        t, cpu, res = timed(lambda: link.transmit(payloads, snr_db=snr, n_channel_uses=n_uses, seed=args.seed))
        print(f"  {label:<18} {mcs:<22} {snr:>5.1f} dB  {n_images * cap / t / 1e6:6.3f} Mbit/s "
              f"({n_images * cap / cpu / 1e6:.3f} per CPU-s), {n_images} images of {cap} bits, "
              f"failed images {res.failure_rate:.3f}")
        records.append({"link": label, "mcs": mcs, "snr_db": snr, "n_images": n_images, "payload_bits": cap,
                        "mbit_per_s_wall": n_images * cap / t / 1e6, "mbit_per_cpu_s": n_images * cap / cpu / 1e6,
                        "failure_rate": res.failure_rate})

    if args.out:
        from tosc.io import atomic_write_json

        atomic_write_json(args.out, {"benchmark": "link_bench", "threads": args.threads, "load_average": load,
                                     "records": records, "versions": package_versions(),
                                     "git_commit": git_commit(), "argv": sys.argv[1:]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
