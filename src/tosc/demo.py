"""``make demo``: the main job a newcomer runs.

It runs each stage of the chain on Fashion-MNIST with the shipped models, prints what
it measured, and says where the outputs are (``runs/demo``, or $TOSC_DEMO_OUT).
Every step is a ``tosc`` command you can rerun by hand.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from .cli import main as cli_main

DEMO_SYSTEMS = ("tosc-sr+ldpc", "mse-only+ldpc", "task-only+ldpc", "jpeg2000-payload+ldpc", "webp-payload+ldpc",
                "vvc-payload+ldpc", "tosc-sr+ideal")
DEMO_POINTS = (("5", "1/8"), ("15", "1/4"))
DEMO_IMAGES = "300"


def _step(title: str, argv: list[str]) -> None:
    print(f"\n== {title}\n$ tosc {' '.join(argv)}", flush=True)
    status = cli_main(argv)
    if status != 0:
        sys.exit(status)


def run(out: Path) -> None:
    _step("data: Fashion-MNIST from Debian's dataset-fashion-mnist", ["data", "info", "fashion-mnist"])
    from .cli import app

    commands = {c.name for c in app.registered_commands} | {g.name for g in app.registered_groups}
    if "theory" in commands:
        _step("theory: semantic rate-distortion of a doubly symmetric binary source",
              ["theory", "--source", "dsbs", "--out", str(out / "theory")])
    _step("channel: the modulation and coding table (simulated once, shipped)", ["channel", "mcs", "--channel", "awgn"])
    _step("codec: the trained models", ["models"])
    from .data import load_dataset
    from .io import save_image_arrays

    sample = load_dataset("fashion-mnist", "test", limit=16)
    save_image_arrays(out / "sample.npz", sample.images.numpy(), sample.labels.numpy(), sample.indices.numpy())
    _step("codec: 16 test images to a .tosc file and back",
          ["encode", str(out / "sample.npz"), "--model", "tosc-sr-r3", "-o", str(out / "sample.tosc")])
    _step("codec: decode (the model is found by the id in the file)",
          ["decode", str(out / "sample.tosc"), "-o", str(out / "sample_decoded.npz")])
    rows = []
    for snr, cbr in DEMO_POINTS:
        for system in DEMO_SYSTEMS:
            folder = out / "transmit" / f"{system}_snr{snr}_cbr{cbr.replace('/', '-')}"
            _step(f"transmit: {system} over AWGN at {snr} dB, CBR {cbr}",
                  ["transmit", "--system", system, "--limit", DEMO_IMAGES, "--snr-db", snr, "--cbr", cbr,
                   "--out", str(folder)])
            rows.append(json.loads((folder / "result.json").read_text()))
    print(f"\n== summary ({DEMO_IMAGES} test images, AWGN)")
    print(f"{'system':<24}{'SNR dB':>7}{'CBR':>7}{'bits/img':>9}{'fail':>6}{'PSNR dB':>9}{'acc':>7}{'acc mlp':>8}"
          f"{'acc resnet':>11}")
    for r in rows:
        m = r["metrics"]
        print(f"{r['system']:<24}{r['channel']['snr_db']:>7g}{r['rate']['cbr']:>7.4g}"
              f"{r['rate']['payload_bits_per_image']:>9.0f}{m['failure_rate']:>6.2f}{m['psnr_db']:>9.2f}"
              f"{m['accuracy']:>7.3f}{m['accuracy_classifier-mlp']:>8.3f}{m['accuracy_classifier-resnet']:>11.3f}")
    print(f"\nDemo outputs are in {out}/", flush=True)


if __name__ == "__main__":
    run(Path(os.environ.get("TOSC_DEMO_OUT", "runs/demo")))
