"""tosc.diskcache: rows round-trip, a damaged row is detected and dropped, a file that is not
a database is moved aside, and concurrent writers do not corrupt the cache."""

import multiprocessing
import pickle
import sqlite3

import pytest

from tosc.diskcache import BlobCache, shared_cache, source_digest


def test_rows_round_trip_and_count(tmp_path):
    cache = BlobCache("t", tmp_path)
    cache.put_many("kind-a", {b"k1": b"v1", b"k2": b""})
    cache.put("kind-b", b"k1", b"other")
    assert cache.get_many("kind-a", [b"k1", b"k2", b"k3"]) == {b"k1": b"v1", b"k2": b""}
    assert cache.get("kind-b", b"k1") == b"other" and cache.get("kind-b", b"k2") is None
    assert cache.count() == 3 and cache.count("kind-a") == 2
    # a second object on the same file (another run) reads the same rows
    assert BlobCache("t", tmp_path).get("kind-a", b"k1") == b"v1"


def test_many_keys_span_several_queries(tmp_path):
    cache = BlobCache("t", tmp_path)
    items = {i.to_bytes(4, "little"): bytes([i % 256]) * (i % 7) for i in range(1234)}
    cache.put_many("k", items)
    assert cache.get_many("k", list(items)) == items


def test_a_damaged_row_is_detected_dropped_and_not_returned(tmp_path):
    cache = BlobCache("t", tmp_path)
    cache.put_many("k", {b"a": b"good", b"b": b"also good"})
    with sqlite3.connect(cache.path) as db:
        db.execute("UPDATE blobs SET value = ? WHERE key = ?", (b"gooD", b"a"))
    fresh = BlobCache("t", tmp_path)
    assert fresh.get_many("k", [b"a", b"b"]) == {b"b": b"also good"}
    assert fresh.corrupt_rows == 1 and fresh.count("k") == 1  # deleted, so the caller's recompute replaces it
    fresh.put("k", b"a", b"good")
    assert fresh.get("k", b"a") == b"good"


def test_a_file_that_is_not_a_database_is_moved_aside(tmp_path):
    path = tmp_path / "t.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    cache = BlobCache("t", tmp_path)
    with pytest.warns(UserWarning, match="unreadable"):
        cache.put("k", b"a", b"v")
    assert cache.get("k", b"a") == b"v"
    assert any(p.name.startswith("t.sqlite3.corrupt-") for p in tmp_path.iterdir())


def test_pickled_cache_reconnects(tmp_path):
    cache = BlobCache("t", tmp_path)
    cache.put("k", b"a", b"v")
    again = pickle.loads(pickle.dumps(cache))
    assert again.get("k", b"a") == b"v"


def _writer(folder, worker: int, rounds: int) -> None:
    cache = BlobCache("t", folder)
    for r in range(rounds):
        # the same keys from every worker (equal values, as for a pure function) and own keys
        cache.put_many("k", {f"shared{r % 10}".encode(): b"same" * 50,
                             f"w{worker}-{r}".encode(): f"{worker}:{r}".encode() * 20})
        cache.get_many("k", [f"shared{(r + 3) % 10}".encode()])


def test_concurrent_writers_do_not_corrupt_the_cache(tmp_path):
    ctx = multiprocessing.get_context("fork")  # the test module need not be importable by a child
    workers = [ctx.Process(target=_writer, args=(tmp_path, w, 60)) for w in range(3)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(120)
        assert p.exitcode == 0
    cache = BlobCache("t", tmp_path)
    keys = [f"shared{i}".encode() for i in range(10)] + [f"w{w}-{r}".encode() for w in range(3) for r in range(60)]
    found = cache.get_many("k", keys)
    assert len(found) == len(keys) == cache.count("k") and cache.corrupt_rows == 0
    assert found[b"w2-59"] == b"2:59" * 20 and found[b"shared0"] == b"same" * 50


def test_shared_cache_follows_the_cache_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("TOSC_CACHE_DIR", str(tmp_path / "one"))
    one = shared_cache("t")
    assert shared_cache("t") is one
    monkeypatch.setenv("TOSC_CACHE_DIR", str(tmp_path / "two"))
    assert shared_cache("t") is not one and shared_cache("t").path.parent == tmp_path / "two"


def test_source_digest_changes_with_the_source(tmp_path):
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("x = 1\n")
    b.write_text("y = 2\n")
    before = source_digest(a, b)
    assert source_digest(a, b) == before != source_digest(b, a)
    a.write_text("x = 22\n")  # another size: the digest memo is keyed by size and mtime
    assert source_digest(a, b) != before


def _open_together(args):
    folder, rounds, barrier = args
    try:
        for round_ in range(rounds):
            barrier.wait(timeout=60)
            BlobCache(folder / f"race-{round_}.sqlite3").put("kind", b"key", b"value")
    except BaseException:
        barrier.abort()  # the others fail too instead of waiting for this one forever
        raise
    return rounds


def test_processes_creating_one_new_cache_together_all_succeed(tmp_path):
    # A new file is switched to WAL under an exclusive lock; SQLite refuses the second creator
    # at once rather than waiting, which CI once hit as "database is locked".
    context = multiprocessing.get_context("fork")
    workers, rounds = 4, 25
    barrier = context.Manager().Barrier(workers)
    with context.Pool(workers) as pool:
        assert pool.map(_open_together, [(tmp_path, rounds, barrier)] * workers) == [rounds] * workers
    for round_ in range(rounds):
        assert BlobCache(tmp_path / f"race-{round_}.sqlite3").get("kind", b"key") == b"value"
