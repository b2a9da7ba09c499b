#!/usr/bin/env python
"""Which entropy model for 28x28 images: measured, in real bytes.

    .venv/bin/python benchmarks/prior_bench.py [--lambda-p 40] [--epochs 1] [--images 20000]

Trains, with the same loss (bpp + lambda_p MSE), data, order and epochs:
  A. tosc's codec: vector latent, factorized prior (one EntropyBottleneck channel per
     latent), our arithmetic coder: one stream per image, no side information.
  B. CompressAI's mean-scale hyperprior (Minnen et al. 2018, ``MeanScaleHyperprior``,
     N=64, M=96, one-channel input/output, one stride-2 step in h_a/h_s so that y is
     96 x 2 x 2 and z 64 x 1 x 1) on images padded to 32x32, compressed with its stock ``compress()``:
     two rANS strings per image (y and z).
  C. B's symbols re-coded in ONE stream with our arithmetic coder (z then y), to separate
     the cost of side information from the cost of the rANS flush.
Prints real bytes per image, bpp, PSNR and the likelihood estimate for each.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F


def train_hyperprior(images: torch.Tensor, lambda_p: float, epochs: int, batch: int, seed: int):
    from compressai.models import MeanScaleHyperprior

    from compressai.models.utils import conv, deconv

    torch.manual_seed(seed)
    net = MeanScaleHyperprior(N=64, M=96)
    net.g_a[0] = conv(1, 64)  # grayscale in and out
    net.g_s[-1] = deconv(64, 1)
    # 32x32 -> y 2x2: one stride-2 step in the hyper transforms (not two) so z is 1x1
    net.h_a[4] = conv(64, 64, kernel_size=5, stride=1)
    net.h_s[0] = conv(64, 96, kernel_size=5, stride=1)
    params = [p for n, p in net.named_parameters() if not n.endswith("quantiles")]
    aux = [p for n, p in net.named_parameters() if n.endswith("quantiles")]
    opt, aux_opt = torch.optim.Adam(params, 1e-3), torch.optim.Adam(aux, 1e-3)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(len(images), generator=gen)
        for i in range(0, len(images), batch):
            x = F.pad(images[order[i:i + batch]], (2, 2, 2, 2))
            out = net(x)
            bpp = sum(-l.log2().sum() for l in out["likelihoods"].values()) / (len(x) * 28 * 28)
            loss = bpp + lambda_p * F.mse_loss(out["x_hat"][..., 2:30, 2:30], x[..., 2:30, 2:30])
            opt.zero_grad()
            loss.backward()
            opt.step()
            aux_opt.zero_grad()
            net.aux_loss().backward()
            aux_opt.step()
    net.update(force=True)
    return net.eval()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lambda-p", type=float, default=40.0)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--test", type=int, default=1000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    from tosc.data import load_dataset
    from tosc.metrics import psnr_db
    from tosc.source_coding.learned import LearnedCodec, arithmetic
    from tosc.source_coding.learned.train import TrainConfig, train_codec

    train = load_dataset("fashion-mnist", "train").subset(args.images)
    test = load_dataset("fashion-mnist", "test", limit=args.test).images
    n = len(test)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "a.pt"
        train_codec(TrainConfig(lambda_p=args.lambda_p, epochs=args.epochs, train_images=args.images, eval_images=200),
                    path, progress=False)
        codec = LearnedCodec.load(path)
        streams = codec.encode(test)
        with torch.no_grad():
            est = -codec.model(test)["likelihoods"].log2().sum().item() / 8 / n
        rows.append(("A factorized vector, 1 stream", sum(map(len, streams)) / n, est,
                     psnr_db(codec.decode(streams), test).mean().item()))

    net = train_hyperprior(train.images, args.lambda_p, args.epochs, 64, 0)
    x = F.pad(test, (2, 2, 2, 2))
    with torch.no_grad():
        out = net(x)
        est = sum(-l.log2().sum() for l in out["likelihoods"].values()).item() / 8 / n
        comp = net.compress(x)
        dec = net.decompress(comp["strings"], comp["shape"])["x_hat"][..., 2:30, 2:30].clamp(0, 1)
    stock = sum(len(s) for strings in comp["strings"] for s in strings) / n
    z_bytes = sum(len(s) for s in comp["strings"][1]) / n
    rows.append((f"B hyperprior, stock 2 rANS strings (z: {z_bytes:.1f} B)", stock, est, psnr_db(dec, test).mean().item()))

    # C: the same symbols in one stream with the arithmetic coder
    with torch.no_grad():
        y = net.g_a(x)
        z = net.h_a(y)
        z_sym = net.entropy_bottleneck.quantize(z, "symbols", net.entropy_bottleneck._get_medians())
        z_hat = net.entropy_bottleneck.dequantize(z_sym, net.entropy_bottleneck._get_medians())
        scales, means = net.h_s(z_hat).chunk(2, 1)
        idx = net.gaussian_conditional.build_indexes(scales)
        y_sym = net.gaussian_conditional.quantize(y, "symbols", means)
    eb, gc = net.entropy_bottleneck, net.gaussian_conditional
    cdfs = eb._quantized_cdf.tolist() + gc._quantized_cdf.tolist()
    lengths = eb._cdf_length.reshape(-1).tolist() + gc._cdf_length.reshape(-1).tolist()
    offsets = eb._offset.reshape(-1).tolist() + gc._offset.reshape(-1).tolist()
    n_eb = len(eb._cdf_length)
    total = 0
    for i in range(n):
        z_idx = [c for c in range(z.shape[1]) for _ in range(z.shape[2] * z.shape[3])]
        syms = z_sym[i].reshape(-1).tolist() + y_sym[i].reshape(-1).tolist()
        indexes = z_idx + [n_eb + j for j in idx[i].reshape(-1).tolist()]
        stream = arithmetic.encode(syms, indexes, cdfs, lengths, offsets)
        assert arithmetic.decode(stream, indexes, cdfs, lengths, offsets) == syms
        total += len(stream)
    rows.append(("C hyperprior symbols, 1 arithmetic stream", total / n, est, rows[-1][3]))

    print(f"lambda_p {args.lambda_p}, {args.epochs} epoch(s) on {args.images} images, {n} test images")
    print(f"{'model':<48}{'B/image':>9}{'bpp':>8}{'estimate B':>12}{'PSNR dB':>9}")
    for name, b, e, p in rows:
        print(f"{name:<48}{b:>9.2f}{8 * b / 784:>8.3f}{e:>12.2f}{p:>9.2f}")


if __name__ == "__main__":
    main()
