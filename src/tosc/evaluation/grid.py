"""Evaluation grids: every system at every (channel, SNR, CBR), resumable and shardable.

Results go to ``OUT/results.jsonl``, one record per finished point, appended atomically
as each point finishes; a rerun skips the points already there. ``shard=(i, n)`` runs
every n-th point starting at i, so n processes (or a job array) split a grid; each
point's noise depends only on its coordinates, so merged shards equal one run.
Under torchrun, :func:`run_grid_on_ranks` runs shard r/W on rank r into
``OUT/shards/rank<r>-of-<W>`` and hands its records and examples to rank 0, which merges
them into OUT (no shared disk needed between nodes).
"""

from __future__ import annotations

import concurrent.futures as cf
import itertools
import json
import multiprocessing
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .. import registry
from ..channel import parse_cbr
from ..channel.conventions import check_channel_kind, check_snr_db
from ..errors import ConfigError
from ..io import atomic_write_bytes, atomic_write_text, save_image_arrays
from ..results import ResultRecord, append_result, read_results
from .compat import check_codes, data_kind
from .point import OperatingPoint, run_point

__all__ = ["GridSpec", "grid_points", "run_grid", "model_fingerprint", "prepare_systems", "build_for", "check_systems_code", "run_grid_on_ranks", "merge_results", "record_key",
           "parse_shard"]

EXAMPLES_PER_POINT = 8


@dataclass(frozen=True)
class GridSpec:
    systems: tuple[str, ...]
    channels: tuple[str, ...]
    snrs_db: tuple[float, ...]
    cbrs: tuple[Fraction, ...]
    dataset: str = "fashion-mnist"
    split: str = "test"
    limit: int | None = None
    seed: int = 0
    residual_ber: float = 0.0  # bit flips after channel decoding (digital systems; tosc.channel.residual)
    root: str | None = None  # the data set's directory where it needs one (folder, cifar10); not part of a result's key

    def __post_init__(self) -> None:
        if not self.systems:
            raise ConfigError("no systems to evaluate")
        for name in self.systems:  # an unknown name fails here, not after the grid has started
            registry.get("system", name)
        if not 0.0 <= self.residual_ber <= 0.5:  # also false for NaN
            raise ConfigError(f"residual_ber must lie in [0, 0.5], got {self.residual_ber}")
        for c in self.channels:
            check_channel_kind(c)
        for s in self.snrs_db:
            check_snr_db(s)
        if not self.cbrs or not self.snrs_db or not self.channels:
            raise ConfigError("the grid needs at least one channel, SNR and CBR")


def grid_points(spec: GridSpec) -> list[tuple[str, OperatingPoint]]:
    """(system, point) in a fixed order: channel, CBR, SNR, system."""
    return [(system, OperatingPoint(channel, float(snr), Fraction(cbr)))
            for channel, cbr, snr, system in itertools.product(spec.channels, spec.cbrs, spec.snrs_db, spec.systems)]


def parse_shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise ConfigError(f"--shard must look like I/N (e.g. 0/4), got {text!r}") from None
    if n < 1 or not 0 <= i < n:
        raise ConfigError(f"--shard {text}: need 0 <= I < N")
    return i, n


def record_key(record: ResultRecord | dict) -> tuple:
    r = record.to_dict() if isinstance(record, ResultRecord) else record
    return (r["system"], r["channel"]["kind"], float(r["channel"]["snr_db"]), float(r["rate"]["cbr"]),
            r["dataset"], r["split"], r["n_images"], r["seed"], float(r["config"].get("residual_ber", 0.0)))


_WORKER_CACHE: dict = {}


def _encoder_key(path: Path) -> str:
    """:func:`~tosc.source_coding.learned.refine.encoder_key` of a codec v3 checkpoint with the
    default refining encoder, from the zoo's cached checkpoint index (no checkpoint is loaded)."""
    from ..checkpoint import checkpoint_index
    from ..source_coding.learned.refine import EncoderObjective, Refinement, encoder_key

    # (an unreadable checkpoint fails where the system loads it, with its own message)
    train = ((checkpoint_index(path.parent).get(path.name) or {}).get("config") or {}).get("train")
    return encoder_key(EncoderObjective.from_train_config(train), Refinement())


def model_fingerprint(system_name: str) -> str | None:
    """SHA-256 (hex, 16 digits) of the files a system's results depend on besides the code and
    the packages (which every record names): its model checkpoints (a codec v3 checkpoint names
    the digest of its predictive tables) and, over a coded link, the link's shipped BLER model
    and scheme tables. None for a system with no such files. Records carry it as
    ``config["model_files"]``, so a resumed grid can tell a point computed with other weights."""
    import hashlib

    from ..diskcache import file_digest

    meta = registry.meta_of("system", system_name)
    family, source = meta.get("family"), meta.get("source")
    files: list[Path] = []
    if family == "learned-v3":
        from ..zoo import codec_path

        files.append(codec_path(source))
    elif family == "learned":
        from ..source_coding.learned.zoo import family_codecs

        files += sorted(Path(e.path) for e in family_codecs(source))
    elif family == "jscc":
        from ..jscc.zoo import jscc_path

        files.append(jscc_path(source))
    if meta.get("link") == "ldpc":
        from .. import channel

        files += sorted((Path(channel.__file__).parent / "data").glob("*.json"))
    files = [f for f in files if f.exists()]
    if not files:
        return None
    digest = hashlib.sha256()
    if family == "learned-v3":  # the refining encoder's defaults shape the streams too
        from ..zoo import codec_path

        digest.update(_encoder_key(codec_path(source)).encode())
    for f in files:
        digest.update(f.name.encode() + b"\0" + bytes.fromhex(file_digest(f)))
    return digest.hexdigest()[:16]


def _set_aside_stale(results_path: Path, fingerprints: dict[str, str | None]) -> tuple[int, int]:
    """Drop from ``results_path`` the records of these systems computed with other model files
    than ``fingerprints`` says they have now; the file as it was is kept beside it as
    ``results.stale-<n>.jsonl``. Returns (records dropped, records of systems with model files
    that carry no fingerprint: written by an older tosc, kept, since nothing tells them stale)."""
    from ..io import locked, read_jsonl

    with locked(results_path):
        if not results_path.exists():
            return 0, 0
        raw = read_jsonl(results_path)
        keep, stale, unknown = [], 0, 0
        for r in raw:
            now, then = fingerprints.get(r.get("system")), r.get("config", {}).get("model_files")
            unknown += bool(now) and then is None
            if now and then is not None and then != now:
                stale += 1
            else:
                keep.append(r)
        if not stale:
            return 0, unknown
        n = next(i for i in itertools.count(1) if not (results_path.parent / f"results.stale-{i}.jsonl").exists())
        atomic_write_bytes(results_path.parent / f"results.stale-{n}.jsonl", results_path.read_bytes())
        atomic_write_text(results_path, "".join(json.dumps(r) + "\n" for r in keep))
        return stale, unknown


def build_for(system_name: str, dataset: str, *, device: str = "cpu", residual_ber: float = 0.0,
              root: str | None = None):
    """The system ``system_name`` for images of ``dataset`` (in directory ``root``, where the data
    set needs one): a digital system's failed images get that data set's fallback (its
    training-set mean image); ``residual_ber`` flips delivered bits (digital and ideal-link
    systems only: analog systems deliver no bits to flip)."""
    from ..systems import build_system

    if registry.meta_of("system", system_name).get("mode") == "analog":
        return build_system(system_name, device=device)
    return build_system(system_name, device=device, dataset=dataset, dataset_root=root,
                        **({"residual_ber": residual_ber} if residual_ber else {}))


def check_systems_code(spec: "GridSpec", data) -> None:
    """Raise IncompatibleSystemError (naming the system and the image shape) for the first system
    of ``spec`` that cannot code the images of ``data`` (see :mod:`tosc.evaluation.compat`)."""
    shape = tuple(data.images.shape[1:])
    for name in spec.systems:
        check_codes(name, shape, spec.dataset)


def _run_one(args: tuple) -> tuple[dict, dict]:
    system_name, point, spec, device, fingerprint = args
    import torch

    torch.set_num_threads(1)
    from ..data import load_dataset

    # keyed by the data it holds: a process may run grids of different datasets or limits
    data_key = ("data", spec.dataset, spec.split, spec.limit, spec.root)
    if data_key not in _WORKER_CACHE:
        _WORKER_CACHE[data_key] = load_dataset(spec.dataset, spec.split, root=spec.root, limit=spec.limit)
    system_key = (system_name, spec.residual_ber, device, spec.dataset, spec.root)
    if system_key not in _WORKER_CACHE:
        _WORKER_CACHE[system_key] = build_for(system_name, spec.dataset, device=device, residual_ber=spec.residual_ber,
                                              root=spec.root)
    data = _WORKER_CACHE[data_key]
    config = {"limit": spec.limit, **({"residual_ber": spec.residual_ber} if spec.residual_ber else {}),
              **({"model_files": fingerprint} if fingerprint else {}),
              # where this system's networks ran (a CPU-only system says "cpu" in a CUDA grid)
              **({"device": _WORKER_CACHE[system_key].device} if device != "cpu" else {})}
    tx, record = run_point(_WORKER_CACHE[system_key], data.images, data.labels, point, dataset=spec.dataset,
                           split=spec.split, seed=spec.seed, config=config,
                           scenes=data if data_kind(data) == "scenes" else None)
    k = EXAMPLES_PER_POINT
    example = {"images": tx.received[:k].numpy(), "labels": data.labels[:k].numpy(),
               "indices": data.indices[:k].numpy(), "ok": tx.ok[:k]}
    return record.to_dict(), example


def prepare_systems(spec: GridSpec, todo: list[tuple[str, OperatingPoint]], *, jobs: int = 1,
                    progress: bool = True) -> None:
    """Before the points run: each system does the work its points share and that does not
    depend on the noise (a classic codec rate-matches every image at every budget of the
    grid once, into its on-disk rate table), with all ``jobs`` processes on one system at a
    time instead of one process per point. Systems without a ``prepare`` step skip this."""
    from ..channel import channel_uses
    from ..data import load_dataset
    from ..systems import build_system

    by_system: dict[str, list[OperatingPoint]] = {}
    for system, point in todo:
        by_system.setdefault(system, []).append(point)
    data = None
    for name, points in by_system.items():
        system = build_system(name)
        if not hasattr(system, "prepare"):
            continue
        if data is None:
            data = load_dataset(spec.dataset, spec.split, root=spec.root, limit=spec.limit)
        shape = tuple(data.images.shape[1:])
        system.prepare(data.images, [(p.channel, p.snr_db, channel_uses(p.cbr, shape)) for p in points], jobs=jobs)


def _example_path(out: Path, record: dict) -> Path:
    cbr = Fraction(record["rate"]["cbr"]).limit_denominator(4096)
    return (out / "examples" / f"{record['system']}_{record['channel']['kind']}_snr{record['channel']['snr_db']:g}"
            f"_cbr{cbr.numerator}-{cbr.denominator}.npz")


def run_grid(spec: GridSpec, out: str | Path, *, jobs: int = 1, shard: tuple[int, int] = (0, 1),
             progress: bool = True, device: str = "cpu") -> list[ResultRecord]:
    """Run the (shard of the) grid not yet in OUT/results.jsonl; return all records of the shard.

    ``device`` (cpu, cuda, cuda:N, auto) places the systems' neural networks; entropy coding,
    channel simulation and scoring stay on the CPU.
    """
    from ..distributed import resolve_device

    device = str(resolve_device(device))
    out = Path(out)
    results_path = out / "results.jsonl"
    # a point computed with other weights (a retrained or updated model) is computed again
    fingerprints = {name: model_fingerprint(name) for name in spec.systems}
    stale, unknown = _set_aside_stale(results_path, fingerprints)
    if stale and progress:
        tqdm.write(f"{out}: {stale} result(s) were computed with other model files than the installed ones; "
                   "they are computed again (the file as it was is kept as results.stale-N.jsonl)", file=sys.stderr)
    if unknown and progress:
        tqdm.write(f"{out}: {unknown} result(s) were written by an older tosc that did not record its model files; "
                   "they are kept as they are (remove the folder to compute them with the installed models)",
                   file=sys.stderr)
    done = {record_key(r) for r in read_results(results_path, key=record_key)} if results_path.exists() else set()
    points = grid_points(spec)[shard[0]::shard[1]]
    from ..data import load_dataset

    data = load_dataset(spec.dataset, spec.split, root=spec.root, limit=spec.limit)
    n_images = len(data)
    check_systems_code(spec, data)  # before any work: one clear error, not a failure deep in a worker
    todo = [(system, point, spec, device, fingerprints[system]) for system, point in points
            if (system, point.channel, point.snr_db, float(point.cbr), spec.dataset, spec.split, n_images,
                spec.seed, float(spec.residual_ber)) not in done]
    prepare_systems(spec, [(system, point) for system, point, *_ in todo], jobs=jobs, progress=progress)
    if todo and any(registry.meta_of("system", system).get("mode") != "analog" for system, *_ in todo):
        from ..systems import fallback_image

        # the fallback image once here, so that forked workers inherit it instead of each
        # computing it (the mean of 20,000 generated training scenes takes seconds)
        fallback_image(tuple(data.images.shape[1:]), spec.dataset, spec.root)
    bar = tqdm(total=len(todo), desc="operating points", disable=not progress)

    def finish(result: tuple[dict, dict]) -> None:
        record, example = result
        # under a lock and once per point: concurrent runs into one OUT lose and double nothing
        append_result(results_path, ResultRecord.from_dict(record), key=record_key)
        save_image_arrays(_example_path(out, record), **example)
        bar.update(1)
        bar.set_postfix_str(f"{record['system']} {record['channel']['snr_db']:g} dB")

    if jobs <= 1:
        for task in todo:
            finish(_run_one(task))
    else:
        # each worker caches the systems it has built; results are appended as they come
        # CUDA cannot be used in a forked child
        context = multiprocessing.get_context("spawn") if device != "cpu" else None
        with cf.ProcessPoolExecutor(jobs, mp_context=context) as pool:
            for future in cf.as_completed([pool.submit(_run_one, t) for t in todo]):
                finish(future.result())
    bar.close()
    wanted = {(s, p.channel, p.snr_db, float(p.cbr)) for s, p in points}
    records = [r for r in read_results(results_path, key=record_key)
               if record_key(r)[:4] in wanted] if results_path.exists() else []
    order = {(s, p.channel, p.snr_db, float(p.cbr)): i for i, (s, p) in enumerate(grid_points(spec))}
    return sorted(records, key=lambda r: order.get(record_key(r)[:4], 1 << 30))


def _merge_into(out: Path, sources, *, replace_examples: bool = False) -> list[ResultRecord]:
    """Write OUT/results.jsonl from ``sources``: (records, {example file name: Path or bytes}),
    the first record of each point kept; examples already in OUT are left as they are, unless
    ``replace_examples`` (then the first source's example of a point wins, as its record does)."""
    merged: dict[tuple, ResultRecord] = {}
    written: set[str] = set()
    for records, examples in sources:
        for record in records:
            merged.setdefault(record_key(record), record)
        for name, data in examples.items():
            target = out / "examples" / name
            if name not in written and (replace_examples or not target.exists()):
                atomic_write_bytes(target, data if isinstance(data, bytes) else data.read_bytes())
                written.add(name)
    records = sorted(merged.values(), key=lambda r: record_key(r))
    atomic_write_text(out / "results.jsonl", "".join(json.dumps(r.to_dict(), sort_keys=True) + "\n" for r in records))
    return records


def merge_results(folders: list[str | Path], out: str | Path) -> list[ResultRecord]:
    """Join shard folders into OUT (records de-duplicated by point, examples copied)."""
    out = Path(out)

    def sources():
        for folder in map(Path, folders):
            path = folder / "results.jsonl"
            if not path.exists():
                raise ConfigError(f"{folder} has no results.jsonl to merge")
            examples = {} if folder.resolve() == out.resolve() else \
                {p.name: p for p in sorted((folder / "examples").glob("*.npz"))}
            yield read_results(path), examples

    return _merge_into(out, sources())


def run_grid_on_ranks(spec: GridSpec, out: str | Path, ctx, *, jobs: int = 1,
                      progress: bool = True) -> list[ResultRecord] | None:
    """Rank r of W runs shard r/W into ``OUT/shards/rank<r>-of-<W>`` (resumable there), then
    rank 0 gathers every rank's records and examples and merges them, with any records
    already in OUT, into OUT/results.jsonl. Returns the merged records on rank 0, None on
    the others. ``ctx``: a :class:`tosc.distributed.DistContext`; its device places the
    systems' networks.
    """
    out = Path(out)
    shard_dir = out / "shards" / f"rank{ctx.rank}-of-{ctx.world_size}"
    records = run_grid(spec, shard_dir, jobs=jobs, shard=(ctx.rank, ctx.world_size),
                       progress=progress and ctx.is_main, device=str(ctx.device))
    examples = {}
    for record in records:
        path = _example_path(shard_dir, record.to_dict())
        if path.exists():
            examples[path.name] = path.read_bytes()
    gathered = ctx.gather_to_main(([r.to_dict() for r in records], examples))
    if not ctx.is_main:
        return None
    # the ranks' fresh records first: they win over any in OUT (those of other model files are set aside)
    _set_aside_stale(out / "results.jsonl", {name: model_fingerprint(name) for name in spec.systems})
    existing = read_results(out / "results.jsonl") if (out / "results.jsonl").exists() else []
    return _merge_into(out, [([ResultRecord.from_dict(r) for r in rs], ex) for rs, ex in gathered] + [(existing, {})],
                       replace_examples=True)
