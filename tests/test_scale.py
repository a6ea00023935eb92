"""Parallel kernels, Dask backend and the setup caches: same answers, less work."""

from __future__ import annotations

import os
import stat

import pytest

from matcher.errors import ConfigError
from matcher.parallel import Workers
from matcher.protocols import ecdh
from matcher.storage.setup_cache import RequesterSetupCache, load_setup, setup_id
from tests.harness import KEYSPEC, loopback_responder, synthetic_sets


@pytest.fixture(scope="module")
def pool():
    with Workers(processes=2) as w:
        yield w


def _pairs(n):
    return [(b"token-%d" % i, b"CASE-%d" % (i % 7)) for i in range(n)]


def test_setup_is_identical_inline_and_on_a_pool(pool):
    key = ecdh.new_key()
    pairs = _pairs(5000)
    inline = ecdh.responder_setup(key, pairs, 10)
    pooled = ecdh.responder_setup(key, pairs, 10, workers=pool)
    assert inline.tags == pooled.tags
    # labels carry random nonces: compare what they open to
    tokens = [t for t, _ in pairs]
    blinded = ecdh.blind_tokens(key, tokens)
    points = dict(zip(ecdh.derive_tags(blinded, 10), zip(blinded, tokens, strict=True), strict=True))
    # the first 200 entries are enough to compare the two setups' labels
    for tag, a, b in zip(inline.tags[:200], inline.labels[:200], pooled.labels[:200], strict=True):
        point, token = points[tag]
        assert ecdh.open_label(point, a, token) == ecdh.open_label(point, b, token) is not None


def test_kernels_are_identical_inline_and_on_a_pool(pool):
    a, b = ecdh.new_key(), ecdh.new_key()
    tokens = [b"t-%d" % i for i in range(3000)]
    blinded = list(pool.map_ordered(ecdh.blind_tokens, ((a, tokens[i : i + 700]) for i in range(0, 3000, 700))))
    flat = [p for part in blinded for p in part]
    assert flat == ecdh.blind_tokens(a, tokens)
    assert pool.map_split(ecdh.evaluate, (b,), flat, offset=0) == ecdh.evaluate(b, flat)
    inv = ecdh.invert_key(a)
    ev = ecdh.evaluate(b, flat)
    assert pool.map_split(ecdh.unblind_outputs, (inv,), ev, offset=0) == ecdh.unblind_outputs(inv, ev)


def test_a_bad_point_on_a_pool_names_its_position(pool):
    b = ecdh.new_key()
    points = ecdh.blind_tokens(b, [b"x-%d" % i for i in range(2000)])
    points[1500] = b"\xff" * 32
    with pytest.raises(ecdh.InvalidElement, match="element 1500"):
        pool.map_split(ecdh.evaluate, (b,), points, offset=0)


def test_dask_local_cluster_gives_identical_results():
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster,
        Workers(dask_scheduler=cluster.scheduler_address) as dask_workers,
    ):
        key = ecdh.new_key()
        pairs = _pairs(5000)
        on_dask = ecdh.responder_setup(key, pairs, 10, workers=dask_workers)
        assert on_dask.tags == ecdh.responder_setup(key, pairs, 10).tags
        pts = ecdh.blind_tokens(key, [p[0] for p in pairs[:1200]])
        assert dask_workers.map_split(ecdh.evaluate, (key,), pts, offset=0) == ecdh.evaluate(key, pts)


@pytest.mark.parametrize("workers", [1, 2])
def test_session_results_do_not_depend_on_pool_size(workers):
    req, resp = synthetic_sets(3000, 3000, 300, seed=3)
    with loopback_responder(resp, workers=workers) as lb, lb.client(workers=workers) as client:
        result = client.match(req, KEYSPEC)
    resp_tokens = {t: r.case_ref for r in resp for _, t in r.tokens}
    expected = {r.record_id: resp_tokens[t] for r in req for _, t in r.tokens if t in resp_tokens}
    assert {h.record_id: h.case_ref for h in result.hits} == expected
    assert len(expected) == 300


def test_responder_reuses_its_cached_setup_and_rebuilds_when_the_watchlist_changes(tmp_path):
    req, resp = synthetic_sets(200, 600, 50, seed=4)
    state_dir = tmp_path / "state"
    with loopback_responder(resp, workers=1, state_dir=state_dir) as lb:
        first = lb.state.current()
        assert not first.from_cache
    cache_files = list(state_dir.glob("setup-*.bin"))
    assert len(cache_files) == 1 and stat.S_IMODE(cache_files[0].stat().st_mode) == 0o600
    with loopback_responder(resp, workers=1, state_dir=state_dir) as lb:
        again = lb.state.current()
        assert again.from_cache and again.setup_id == first.setup_id
        with lb.client(workers=1) as client:
            assert len(client.match(req, KEYSPEC).hits) == 50
    changed = resp[:-1]
    with loopback_responder(changed, workers=1, state_dir=state_dir) as lb:
        rebuilt = lb.state.current()
        assert not rebuilt.from_cache and rebuilt.setup_id != first.setup_id
        # a changed watchlist starts a new key epoch: old and new tags cannot be linked
        assert rebuilt.key.epoch != first.key.epoch
        assert not set(rebuilt.setup.tags) & set(first.setup.tags)
    assert len(list(state_dir.glob("setup-*.bin"))) == 1


def test_requester_cache_skips_the_setup_download(tmp_path):
    req, resp = synthetic_sets(300, 2000, 40, seed=5)
    with loopback_responder(resp, workers=1) as lb:
        with lb.client(workers=1) as client:
            client.setup_cache = RequesterSetupCache(tmp_path / "cache")
            cold = client.match(req, KEYSPEC)
            warm = client.match(req, KEYSPEC)
        assert {h.record_id for h in cold.hits} == {h.record_id for h in warm.hits}
        assert len(warm.hits) == 40
        assert warm.bytes_received < cold.bytes_received / 3
        # A damaged cache is ignored: the setup is downloaded again.
        (path,) = (tmp_path / "cache").glob("setup-*.bin")
        path.write_bytes(path.read_bytes()[:-5])
        with lb.client(workers=1) as client:
            client.setup_cache = RequesterSetupCache(tmp_path / "cache")
            again = client.match(req, KEYSPEC)
        assert len(again.hits) == 40 and again.bytes_received > warm.bytes_received


def test_cache_files_refused_when_readable_by_others(tmp_path):
    setup = ecdh.responder_setup(ecdh.new_key(), _pairs(10), 8)
    from matcher.storage.setup_cache import save_setup

    path = tmp_path / "s.bin"
    save_setup(path, setup, {"x": 1})
    meta, loaded = load_setup(path)
    assert meta == {"x": 1} and loaded.tags == setup.tags and setup_id(loaded) == setup_id(setup)
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_setup(path)


def test_setup_reports_progress_on_a_pool(pool):
    seen = []
    ecdh.responder_setup(ecdh.new_key(), _pairs(6000), 10, workers=pool, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (6000, 6000) and [d for d, _ in seen] == sorted(d for d, _ in seen) and len(seen) >= 2


def test_sessions_keep_the_old_epoch_while_a_new_setup_is_built(tmp_path, monkeypatch):
    """Review finding: the rotation held the lock every session takes for the whole setup."""
    import threading
    import time as _time

    from matcher.server import state as responder_state

    _, resp = synthetic_sets(10, 300, 5, seed=8)
    with loopback_responder(resp, workers=1, state_dir=tmp_path / "s") as lb:
        state = lb.state
        old = state.current()
        started, release = threading.Event(), threading.Event()
        real_setup_for = state._setup_for

        def slow_setup_for(key):
            started.set()
            release.wait(10)
            return real_setup_for(key)

        monkeypatch.setattr(state, "_setup_for", slow_setup_for)
        monkeypatch.setattr(state, "_due", lambda epoch: epoch is old)  # the old epoch has expired
        real_rotate = responder_state.load_or_rotate
        monkeypatch.setattr(responder_state, "load_or_rotate",
                            lambda d, days, **kw: real_rotate(d, days, force=True, **kw))
        rotation = threading.Thread(target=state.current)
        rotation.start()
        assert started.wait(10)
        t0 = _time.monotonic()
        assert state.current() is old  # served at once while the new setup is built
        assert _time.monotonic() - t0 < 1
        release.set()
        rotation.join(10)
        assert state.current().key.epoch != old.key.epoch


def test_a_setup_cache_that_cannot_be_written_fails_the_match_and_one_that_can_is_there_when_it_returns(
        tmp_path, monkeypatch):
    """The cache is saved on a thread while the hits are put together; match() waits for it."""
    req, resp = synthetic_sets(300, 2000, 40, seed=6)
    with loopback_responder(resp, workers=1) as lb, lb.client(workers=1) as client:
        client.setup_cache = RequesterSetupCache(tmp_path / "cache")
        client.match(req, KEYSPEC)
        assert len(list((tmp_path / "cache").glob("setup-*.bin"))) == 1  # written before match returned

        def disk_full(*args, **kwargs):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(RequesterSetupCache, "save", disk_full)
        client.setup_cache = RequesterSetupCache(tmp_path / "other")
        with pytest.raises(OSError, match="No space left"):
            client.match(req, KEYSPEC)


def test_the_setup_cache_is_saved_while_the_session_goes_on_not_after_it(tmp_path, monkeypatch):
    """The save starts once the whole setup is in, before the first evaluated chunk (it was
    most of a 1M match's serial tail when it started at the Summary)."""
    from clients.sessions import ecdh as ecdh_sessions

    started_before_replies = []
    on_evaluated = ecdh_sessions.EcdhRequesterSession.on_evaluated

    def spy(self, chunk):
        if self._done == 0:
            started_before_replies.append(self._cache_save is not None)
        return on_evaluated(self, chunk)

    monkeypatch.setattr(ecdh_sessions.EcdhRequesterSession, "on_evaluated", spy)
    req, resp = synthetic_sets(300, 2000, 40, seed=7)
    with loopback_responder(resp, workers=1) as lb, lb.client(workers=1) as client:
        client.setup_cache = RequesterSetupCache(tmp_path / "cache")
        client.match(req, KEYSPEC)
    assert started_before_replies == [True]
    (path,) = (tmp_path / "cache").glob("setup-*.bin")
    meta, setup = load_setup(path)
    assert setup_id(setup) == meta["setup_id"] and len(setup) == 2000
