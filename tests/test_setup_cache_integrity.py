"""The responder's setup cache is authenticated, and a key epoch is bound to its watchlist.

Issue 13, items 10 and 11: an edited cache row was served silently (hits vanished or
carried another case reference), and a changed watchlist kept the old key when the
cache file was gone.
"""

from __future__ import annotations

import logging

import pytest

from matcher.protocols import ecdh
from matcher.requester import run_match
from matcher.storage import session_log
from matcher.storage.secrets_store import load_or_rotate
from matcher.storage.setup_cache import SetupCacheTampered, load_setup, save_setup
from tests.test_e2e import EXPECTED_DEMO


def _hits(agencies, running) -> dict:
    run = run_match(agencies.requester_config(), agencies.workdir / "agency_b_records.csv",
                    f"127.0.0.1:{running.port}", out=None)
    return {h.record_id: (h.match_keys, h.case_ref) for h in run.result.hits}


def _edit_rows(path, how: str) -> None:
    """Change the cached rows, keeping the file's framing (length, header, trailing bytes)."""
    blob = bytearray(path.read_bytes())
    hlen = int.from_bytes(blob[8:12], "big")
    start = 12 + hlen
    import json

    header = json.loads(blob[12:start])
    tag, label = header["tag_length"], header["label_length"]
    row = tag + label
    if how == "tags":  # every tag changed: all hits vanish
        for i in range(start, start + header["count"] * row, row):
            blob[i] ^= 0xFF
    else:  # two rows' labels swapped: a hit would carry another record's case reference
        a, b = start + tag, start + row + tag
        blob[a : a + label], blob[b : b + label] = blob[b : b + label], blob[a : a + label]
    path.write_bytes(bytes(blob))


@pytest.mark.parametrize("how", ["tags", "labels"])
def test_an_edited_cache_is_detected_logged_and_rebuilt(agencies, start, caplog, how):
    state = agencies.workdir / "agency_a_state"
    running = start()
    epoch = running.state.current().key.epoch
    running.stop(grace=0)
    (cache,) = state.glob("setup-*.bin")
    _edit_rows(cache, how)
    with caplog.at_level(logging.WARNING):
        running = start()
    current = running.state.current()
    assert current.key.epoch == epoch and not current.from_cache
    assert any("fails its authentication check" in r.getMessage() for r in caplog.records)
    assert _hits(agencies, running) == EXPECTED_DEMO
    running.stop(grace=0)
    rows = list(session_log.rows(state / "sessions.db"))
    assert [r["event"] for r in rows].count("integrity") == 1
    assert session_log.verify(state / "sessions.db").ok
    # the rebuilt file is authentic again: the next start uses it
    running = start()
    assert running.state.current().from_cache
    running.stop(grace=0)


def test_cache_authentication_unit(tmp_path):
    key = ecdh.new_key()
    setup = ecdh.responder_setup(key, [(b"t%d" % i, b"C%d" % i) for i in range(5)], 8)
    mac, other = b"k" * 32, b"o" * 32
    path = tmp_path / "setup-e.bin"
    save_setup(path, setup, {"digest": "d"}, mac_key=mac)
    meta, loaded = load_setup(path, mac_key=mac)
    assert loaded.tags == setup.tags and loaded.labels == setup.labels and meta == {"digest": "d"}
    with pytest.raises(SetupCacheTampered):
        load_setup(path, mac_key=other)  # another epoch's key
    blob = path.read_bytes()
    path.write_bytes(blob[:-40] + bytes([blob[-40] ^ 1]) + blob[-39:])
    with pytest.raises(SetupCacheTampered):
        load_setup(path, mac_key=mac)
    save_setup(path, setup, {"digest": "d"})  # written without a key: not accepted where one is required
    with pytest.raises(SetupCacheTampered):
        load_setup(path, mac_key=mac)
    path.write_bytes(b"MSETUP1\n" + blob[8:])  # an older format: quietly rebuilt
    assert load_setup(path, mac_key=mac) is None


def _epoch(running) -> str:
    return running.state.current().key.epoch


def test_a_changed_watchlist_gets_a_new_key_even_when_the_cache_file_is_gone(agencies, start):
    state = agencies.workdir / "agency_a_state"
    running = start()
    first = _epoch(running)
    first_tags = set(running.state.current().setup.tags)
    running.stop(grace=0)
    # unchanged watchlist, cache lost: the epoch (bound to the same watchlist) stays
    for f in state.glob("setup-*.bin"):
        f.unlink()
    running = start()
    assert _epoch(running) == first
    running.stop(grace=0)
    # changed watchlist, cache lost: a new key
    for f in state.glob("setup-*.bin"):
        f.unlink()
    watchlist = agencies.workdir / "agency_a_watchlist.csv"
    lines = watchlist.read_text(encoding="utf-8").splitlines(keepends=True)
    watchlist.write_text("".join(lines[:-1]), encoding="utf-8")
    running = start()
    assert _epoch(running) != first
    assert not set(running.state.current().setup.tags) & first_tags
    running.stop(grace=0)


def test_the_epoch_key_file_is_bound_to_a_watchlist_digest(tmp_path):
    key, fresh = load_or_rotate(tmp_path, 30, watchlist_digest="a" * 64)
    assert fresh and key.bound_to("a" * 64) and not key.bound_to("b" * 64)
    assert load_or_rotate(tmp_path, 30, watchlist_digest="a" * 64) == (key, False)
    other, fresh = load_or_rotate(tmp_path, 30, watchlist_digest="b" * 64)
    assert fresh and other.key != key.key and other.epoch != key.epoch
    assert "binding" not in repr(other) and other.key.hex() not in repr(other)


@pytest.mark.parametrize("which", ["tag", "label"])
def test_a_setup_whose_rows_are_not_of_one_length_is_not_written(tmp_path, which):
    setup = ecdh.responder_setup(ecdh.new_key(), [(b"t%d" % i, b"CASE-%d" % i) for i in range(5)], 8)
    if which == "tag":
        setup.tags[3] = setup.tags[3][:7]
    else:
        setup.labels[4] = setup.labels[4] + b"x"
    setup.rows = None
    with pytest.raises(ValueError, match="not of one fixed length"):
        save_setup(tmp_path / "setup.bin", setup, {})
    assert not (tmp_path / "setup.bin").exists()


def test_a_received_setup_is_cached_only_under_the_id_and_size_it_was_announced_with(tmp_path):
    from clients.sessions.ecdh import _CacheSave
    from matcher.storage.setup_cache import RequesterSetupCache, setup_id
    from matcher.v1 import matcher_pb2 as pb

    setup = ecdh.responder_setup(ecdh.new_key(), [(b"t%d" % i, b"CASE-%d" % i) for i in range(5)], 8)
    sid = setup_id(setup)
    cache = RequesterSetupCache(tmp_path / "cache")
    for announced in (pb.Accepted(setup_id="0" * 32, setup_size=5), pb.Accepted(setup_id=sid, setup_size=6)):
        _CacheSave(cache, "agency-a", announced, ecdh.ResponderSetup(8, list(setup.tags), list(setup.labels))).wait()
        assert not list((tmp_path / "cache").glob("*.bin"))
    _CacheSave(cache, "agency-a", pb.Accepted(setup_id=sid, setup_size=5),
               ecdh.ResponderSetup(8, list(setup.tags), list(setup.labels))).wait()
    loaded = cache.load("agency-a", sid)
    assert loaded is not None and b"".join(loaded.parts) == b"".join(
        t + lb for t, lb in zip(setup.tags, setup.labels, strict=True))
