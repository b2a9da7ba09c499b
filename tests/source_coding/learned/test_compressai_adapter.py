"""The CompressAI adapter: the only module that reads CompressAI's private names."""

from __future__ import annotations

import pathlib
import re

import pytest

from tosc.errors import CorruptFileError, DependencyMissingError
from tosc.source_coding.learned import compressai_adapter as adapter

SRC = pathlib.Path(adapter.__file__).resolve().parents[2]


def test_refuses_an_untested_compressai(monkeypatch):
    import compressai

    assert adapter.check_compressai() == compressai.__version__
    adapter.check_compressai.cache_clear()
    monkeypatch.setattr(compressai, "__version__", "9.0.0")
    try:
        with pytest.raises(DependencyMissingError, match="untested"):
            adapter.check_compressai()
    finally:
        adapter.check_compressai.cache_clear()


def test_tables_round_trip_through_a_state_dict():
    from compressai.entropy_models import EntropyBottleneck

    eb = EntropyBottleneck(3)
    assert not adapter.has_tables(eb)
    adapter.freeze_factorized(eb)
    cdfs, lengths, offsets = adapter.tables_of(eb)
    assert len(cdfs) == len(lengths) == len(offsets) == 3 and adapter.medians(eb).shape == (3,)
    fresh = EntropyBottleneck(3)
    with pytest.raises(CorruptFileError):
        adapter.prepare_tables(fresh, {}, "eb")
    state = {f"eb.{k}": v for k, v in eb.state_dict().items()}
    adapter.prepare_tables(fresh, state, "eb")
    fresh.load_state_dict(eb.state_dict())
    assert adapter.tables_of(fresh) == (cdfs, lengths, offsets)
    assert adapter.is_auxiliary("entropy_bottleneck.quantiles") and not adapter.is_auxiliary("g_a.0.weight")


def test_no_other_module_reads_compressai_private_names():
    private = re.compile(r"\._(quantized_cdf|cdf_length|offset|get_medians|likelihood)\b|likelihood_lower_bound"
                         r"|update_scale_table|\.update\(force")
    offenders = [str(p.relative_to(SRC)) for p in SRC.rglob("*.py")
                 if p.name != "compressai_adapter.py" and private.search(p.read_text())]
    assert not offenders, offenders


def test_both_adapters_share_one_version_rule(monkeypatch):
    import sionna

    from tosc.channel.sionna_adapter import check_sionna
    from tosc.provenance import require_tested

    assert require_tested("sionna", "Sionna", ((2,),)) == check_sionna()
    monkeypatch.setattr(sionna, "__version__", "3.0.1")
    with pytest.raises(DependencyMissingError, match=r"Sionna 3\.0\.1 is untested.*2\.x"):
        require_tested("sionna", "Sionna", ((2,),))
    monkeypatch.setattr(sionna, "__version__", "2.x-dev")
    with pytest.raises(DependencyMissingError):
        require_tested("sionna", "Sionna", ((2,),))


def test_packed_tables_restore_exactly_and_refuse_wrong_lengths():
    import pytest
    import torch

    from tosc.errors import CorruptFileError
    from tosc.source_coding.learned.compressai_adapter import pack_tables, unpack_tables

    table = torch.tensor([[0, 5, 65536, 0, 0], [0, 1, 2, 3, 65536], [0, 65536, 0, 0, 0]], dtype=torch.int32)
    state = {"m._quantized_cdf": table, "m._cdf_length": torch.tensor([3, 5, 2], dtype=torch.int32), "other": 1}
    packed = pack_tables(state, "m")
    assert packed["m._quantized_cdf"].tolist() == [0, 5, 65536, 0, 1, 2, 3, 65536, 0, 65536]
    assert torch.equal(unpack_tables(packed, "m")["m._quantized_cdf"], table)
    assert unpack_tables(state, "m") is state  # padded: as it is
    empty = {"m._quantized_cdf": torch.zeros(0, dtype=torch.int32), "m._cdf_length": torch.zeros(0, dtype=torch.int32)}
    assert unpack_tables(empty, "m") is empty  # a model not frozen yet
    with pytest.raises(CorruptFileError, match="does not match its lengths"):
        unpack_tables({**packed, "m._cdf_length": torch.tensor([3, 5, 3])}, "m")
