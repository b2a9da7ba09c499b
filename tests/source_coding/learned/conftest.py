"""Helpers shared by the learned codecs' tests."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch


@pytest.fixture()
def decodes_alike_elsewhere(tmp_path):
    """``check(codec, streams, image_hw)``: a fresh process loading ``codec`` (zoo name or path)
    decodes ``streams`` to exactly this process's images, with 1 and then with 2 threads (one
    process for both: starting one costs seconds of imports)."""

    def check(codec: str, streams: list[bytes], image_hw: tuple[int, int]) -> None:
        from tosc.source_coding.learned.conv_codec import ConvLearnedCodec

        (tmp_path / "s.bin").write_bytes(b"".join(len(s).to_bytes(4, "little") + s for s in streams))
        torch.save(ConvLearnedCodec.load(codec).decode(streams, image_hw), tmp_path / "here.pt")
        script = textwrap.dedent(f"""
            import torch
            from tosc.source_coding.learned.conv_codec import ConvLearnedCodec
            codec = ConvLearnedCodec.load(r"{codec}")
            data = open(r"{tmp_path / 's.bin'}", "rb").read()
            streams, pos = [], 0
            while pos < len(data):
                n = int.from_bytes(data[pos:pos + 4], "little"); streams.append(data[pos + 4:pos + 4 + n]); pos += 4 + n
            here = torch.load(r"{tmp_path / 'here.pt'}")
            for threads in (1, 2):
                torch.set_num_threads(threads)
                print(threads, torch.get_num_threads(), int(torch.equal(codec.decode(streams, {tuple(image_hw)}), here)))
        """)
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
        assert result.stdout.split()[-6:] == ["1", "1", "1", "2", "2", "1"], (result.stdout, result.stderr[-2000:])

    return check
