"""The responder's first setup is computed while its watchlist is read, with the same result.

`matcher serve` starts the setup's group operations (one hash-to-group and one scalar
multiplication per token) on the worker pool as the loader hands on records, under the
key the start will most likely settle on; the labels follow once every case reference
is known. These tests check that the work done ahead is used when the key is the one in
force, dropped when it is not, and that the rows are those of the setup computed after
loading (same tags, labels that open to the same case references).
"""

from __future__ import annotations

import pytest

from matcher.protocols import ecdh
from matcher.protocols import group_backend as _backend
from matcher.requester import run_match
from tests.test_e2e import EXPECTED_DEMO


def _hits(agencies, running) -> dict:
    run = run_match(agencies.requester_config(), agencies.workdir / "agency_b_records.csv",
                    f"127.0.0.1:{running.port}", out=None)
    return {h.record_id: (h.match_keys, h.case_ref) for h in run.result.hits}


def _forbid_setup_after_loading(monkeypatch) -> None:
    """Computing the setup's points after loading (the old path) fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("the setup's group operations were computed after loading")

    monkeypatch.setattr(ecdh, "setup_rows", refuse)


def test_a_cold_start_uses_the_group_operations_computed_while_loading(agencies, start, monkeypatch):
    _forbid_setup_after_loading(monkeypatch)
    running = start()
    epoch = running.state.current()
    assert not epoch.from_cache and len(epoch.setup) > 0
    assert _hits(agencies, running) == EXPECTED_DEMO


def _first_epoch_then_cache_removed(agencies, start):
    """Start once, stop, and delete the setup cache: the next start has its key but not its setup."""
    running = start()
    first = running.state.current()
    running.stop(grace=0)
    for cache in (agencies.workdir / "agency_a_state").glob("setup-*.bin"):
        cache.unlink()
    return first


def test_a_restart_without_the_setup_cache_reuses_the_epoch_key_ahead(agencies, start, monkeypatch):
    first = _first_epoch_then_cache_removed(agencies, start)
    _forbid_setup_after_loading(monkeypatch)
    running = start()
    again = running.state.current()
    assert again.key.epoch == first.key.epoch and not again.from_cache
    assert again.setup.tags == first.setup.tags  # same key, same watchlist: the same tags
    assert _hits(agencies, running) == EXPECTED_DEMO


def test_work_ahead_under_a_key_that_is_not_kept_is_dropped(agencies, start):
    """The cache is gone and the watchlist changed: the guessed key (the old epoch's) loses its binding,
    a new epoch starts, and its setup is computed under the new key."""
    first = _first_epoch_then_cache_removed(agencies, start)
    watchlist = agencies.workdir / "agency_a_watchlist.csv"
    text = watchlist.read_text(encoding="utf-8")
    watchlist.write_text(text.replace("DE-BKA-2023-5521", "DE-BKA-2023-5599"), encoding="utf-8")
    running = start()
    again = running.state.current()
    assert again.key.epoch != first.key.epoch
    expected = dict(EXPECTED_DEMO, **{"B-102": (EXPECTED_DEMO["B-102"][0], "DE-BKA-2023-5599")})
    assert _hits(agencies, running) == expected


@pytest.fixture(params=["backend in use", "portable"])
def backend(request, monkeypatch):
    if request.param == "portable":
        monkeypatch.setattr(_backend, "FAST", None)
    return request.param


def test_setup_from_outputs_equals_the_setup_computed_at_once(backend):
    """Same tags; every label opens to the same case references (duplicate tokens merged)."""
    key = ecdh.new_key()
    entries = [(b"tok-%d" % (i % 900), b"CASE-%d" % i) for i in range(1000)]  # 100 tokens twice
    tokens = [t for t, _ in entries]
    outputs = ecdh.setup_outputs(key, tokens[:300]) + ecdh.setup_outputs(key, tokens[300:])
    ahead = ecdh.responder_setup(key, entries, 10, outputs=outputs)
    at_once = ecdh.responder_setup(key, entries, 10)
    assert ahead.tags == at_once.tags and len(ahead.labels) == len(at_once.labels) == 900
    points = {ecdh._derive(p)[:10]: p for p in
              (ecdh.evaluate(key, [ecdh.hash_to_group(t)])[0] for t in dict.fromkeys(tokens))}
    by_tag = {ecdh._derive(points[tag])[:10]: t for t, tag in
              ((t, ecdh._derive(ecdh.evaluate(key, [ecdh.hash_to_group(t)])[0])[:10]) for t in dict.fromkeys(tokens))}
    for tag, a, b in zip(ahead.tags, ahead.labels, at_once.labels, strict=True):
        token = by_tag[tag]
        assert a != b  # fresh nonces
        opened = ecdh.open_label(points[tag], a, token)
        assert opened is not None and opened == ecdh.open_label(points[tag], b, token)
    assert ecdh.open_label(points[ahead.tags[0]], ahead.labels[0], b"another token") is None


def test_outputs_of_another_length_are_refused():
    key = ecdh.new_key()
    entries = [(b"tok-%d" % i, b"C") for i in range(5)]
    with pytest.raises(ValueError):
        ecdh.responder_setup(key, entries, 10, outputs=ecdh.setup_outputs(key, [t for t, _ in entries[:4]]))


def test_setup_ahead_on_a_worker_pool_gives_every_output_in_order():
    """Batches fed faster than one worker computes them wait and go together; nothing is lost or reordered."""
    from matcher.identity.records import TokenisedRecord
    from matcher.parallel import Workers
    from matcher.server.state import SETUP_AHEAD_MIN, SetupAhead

    key = ecdh.new_key()
    records = [TokenisedRecord(f"r{i}", "C", (("k", b"tok-%d" % i),)) for i in range(3 * SETUP_AHEAD_MIN + 5)]
    with Workers(2) as workers:
        ahead = SetupAhead(workers, key, new_epoch=True)
        for i in range(0, len(records), 1000):
            ahead.feed(records[i : i + 1000])
        assert ahead.fed == len(records)
        outputs = ahead.outputs()
    assert outputs == ecdh.setup_outputs(key, [r.tokens[0][1] for r in records])
    assert "tok-" not in repr(ahead) and key.hex() not in repr(ahead)


def test_a_setup_from_records_already_loaded_runs_on_threads_without_a_worker_process(tmp_path):
    """Reload and the embedded responder hand over loaded records: with GIL-free kernels and the C
    sealer their setup runs on threads of the process, so no worker process is spawned for it."""
    from matcher.identity.records import LoadResult
    from matcher.parallel import Workers
    from matcher.protocols import label_backend
    from matcher.server.state import ResponderState
    from tests.harness import _responder_config, synthetic_sets

    if not (ecdh.KERNELS_RELEASE_GIL and label_backend.ROWS):
        pytest.skip("needs the IFMA kernels and the C sealer (built by make where available)")
    _, watchlist = synthetic_sets(10, 9000, 5, seed=3)  # above the 4,096 entries done in one piece
    workers = Workers(2)
    try:
        state = ResponderState(_responder_config(str(tmp_path), tmp_path / "state", 2, 2_000_000),
                               LoadResult(watchlist, [], len(watchlist)), workers=workers)
        try:
            assert len(state.current().setup) == len({t for r in watchlist for _, t in r.tokens})
            assert workers._pool is None  # the process pool never started
        finally:
            state.close()
    finally:
        workers.close()


def test_the_watchlist_is_read_with_a_short_gil_switch_interval_restored_after(agencies, start, monkeypatch):
    """The process pool's threads move batches through pipes in 64 KB pieces, one GIL hand-over
    each: with CPython's default 5 ms interval they waited on the parsing thread at every piece
    (the worker sat idle for most of a 1M-record load)."""
    import sys

    from matcher import parallel
    from matcher.server import responder

    seen: list[float] = []
    real = responder.load_watchlist

    def load(*args, **kwargs):
        seen.append(sys.getswitchinterval())
        return real(*args, **kwargs)

    monkeypatch.setattr(responder, "load_watchlist", load)
    before = sys.getswitchinterval()
    running = start()
    assert seen and seen[0] <= parallel.SHORT_SWITCH_INTERVAL < before
    assert sys.getswitchinterval() == before
    assert _hits(agencies, running) == EXPECTED_DEMO
