"""``make demo``: the main job a newcomer runs.

It runs every stage of the chain that exists, prints what it measured and where
the outputs are. Output goes to ``runs/demo`` (override with $TOSC_DEMO_OUT).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .cli import main as cli_main


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
        _step("theory: semantic rate-distortion surface", ["theory", "--source", "doubly-symmetric-binary",
                                                            "--out", str(out / "theory")])
    print(f"\nDemo outputs are in {out}/", flush=True)


if __name__ == "__main__":
    run(Path(os.environ.get("TOSC_DEMO_OUT", "runs/demo")))
