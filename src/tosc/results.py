"""The results record every evaluator writes (docs/interfaces.md, "Results record").

Units live in the key names: ``snr_db``, ``bpp`` (bits per pixel from actual bytes,
pixels = H*W of the original image), ``payload_bits_per_image``,
``channel_uses_per_image`` (complex symbols), ``cbr`` (channel uses per real source
value, k / (C*H*W)), ``psnr_db``, ``timings_s``. Extend by adding keys, never by
changing what a key means.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import CorruptFileError
from .io import append_jsonl, atomic_write_json, check_input_file, read_jsonl
from .provenance import git_commit, package_versions

__all__ = ["ChannelSpec", "RateSpec", "ResultRecord", "write_result", "read_result", "append_result", "read_results"]

SCHEMA_VERSION = 1


@dataclass
class ChannelSpec:
    kind: str  # "awgn", "rayleigh-block", "rayleigh-fast", "none"
    snr_db: float | None = None
    csi: str = "perfect"  # "perfect" (equalised) or "none"


@dataclass
class RateSpec:
    bpp: float  # whole transmitted bytes * 8 / (H*W), per image, averaged
    payload_bits_per_image: float
    channel_uses_per_image: float | None = None
    cbr: float | None = None
    payload_bpp: float | None = None  # entropy-coded part only (classic codecs: without container)


@dataclass
class ResultRecord:
    system: str
    dataset: str
    split: str
    n_images: int
    channel: ChannelSpec
    rate: RateSpec
    metrics: dict[str, float | None] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    versions: dict[str, str] = field(default_factory=package_versions)
    git_commit: str = field(default_factory=git_commit)
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return _json_safe(asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ResultRecord":
        try:
            data = dict(data)
            data["channel"] = ChannelSpec(**data["channel"])
            data["rate"] = RateSpec(**data["rate"])
            known = set(cls.__dataclass_fields__)
            return cls(**{k: v for k, v in data.items() if k in known})
        except KeyError as exc:
            raise CorruptFileError(f"not a tosc results record (no {exc} field)") from None
        except (TypeError, AttributeError) as exc:
            raise CorruptFileError(f"not a tosc results record ({exc})") from None


def _json_safe(value: Any) -> Any:
    """NaN/inf are not JSON: store them as null so any JSON reader can load the file."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return _json_safe(value.item())
    return value


def write_result(path: str | Path, record: ResultRecord) -> None:
    atomic_write_json(path, record.to_dict())


def read_result(path: str | Path) -> ResultRecord:
    try:
        return ResultRecord.from_dict(json.loads(check_input_file(path).read_text()))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CorruptFileError(f"{path}: not valid JSON ({getattr(exc, 'msg', exc)})") from None
    except CorruptFileError as exc:
        raise CorruptFileError(f"{path}: {exc}") from None


def append_result(path: str | Path, record: ResultRecord, *, key=None) -> bool:
    """Append ``record`` to a results file under a lock (concurrent runs into one folder lose
    nothing); with ``key`` (a function of a record dict, e.g. the operating point), a record
    whose key is already in the file is not added twice. Returns whether it was appended."""
    return append_jsonl(path, record.to_dict(), unique_key=key)


def read_results(path: str | Path, *, key=None) -> list[ResultRecord]:
    """Records of a results file; a line that is not a results record is a CorruptFileError
    naming the file and line. With ``key``, only the first record of each key is kept (files
    written by older versions, or by hand, may hold a point twice)."""
    records, seen = [], set()
    for number, raw in read_jsonl(path, numbered=True):
        try:
            record = ResultRecord.from_dict(raw)
        except CorruptFileError as exc:
            raise CorruptFileError(f"{path}:{number}: {exc}") from None
        if key is not None:
            k = key(raw)
            if k in seen:
                continue
            seen.add(k)
        records.append(record)
    return records
