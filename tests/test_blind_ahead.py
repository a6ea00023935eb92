"""Blinding the requester's tokens while its records are read (clients.sessions.ecdh.BlindAhead).

Against a real mTLS responder: with the overlap on, the requester sends exactly the
bytes it sends with the overlap off (same session key, same check elements) and
finds the same hits; a records file that fails half-way sends nothing at all.
"""

from __future__ import annotations

import csv
import gc
import hashlib
import random
from pathlib import Path

import pytest

import clients.sessions.ecdh as ecdh_session
from matcher.errors import InputFileError
from matcher.protocols import ecdh
from matcher.requester import run_match
from matcher.sessions.requester import RequesterMachine
from tests.harness import shared_documents

pytestmark = pytest.mark.skipif(not ecdh.KERNELS_RELEASE_GIL, reason="blinding ahead needs the GIL-free kernels")

N = 6000  # more than one BlindAhead.BATCH of tokens: batches go to the kernel threads during the load
OVERLAP = 600
GROUP_ORDER = 2**252 + 27742317777372353535851937790883648493


def _write_sets(workdir: Path, encoding: str = "utf-8") -> Path:
    """The demo's layouts with N records each side sharing OVERLAP document numbers."""
    mine, theirs = shared_documents(N, N, OVERLAP, seed=5)
    with (workdir / "agency_a_watchlist.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "first_name", "last_name", "dob", "sex", "nationality", "doc_no", "doc_country", "case_id"])
        w.writerows([f"A-{i}", "", "", "", "", "", d, "DEU", f"CASE-{i}"] for i, d in enumerate(theirs))
    path = workdir / "records_6k.csv"
    with path.open("w", newline="", encoding=encoding) as fh:
        w = csv.writer(fh)
        w.writerow(["person_id", "given", "surname", "birth_date", "gender", "citizenship", "passport",
                    "passport_country"])
        w.writerows([f"B-{i}", "", "", "", "", "", d, "DEU"] for i, d in enumerate(mine))
    return path


def _deterministic_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Session key, check-element keys and positions from a fixed seed (for both runs alike)."""
    counter = iter(range(10**6))

    def new_key() -> bytes:
        wide = hashlib.sha512(b"test key %d" % next(counter)).digest()
        return (int.from_bytes(wide, "little") % GROUP_ORDER).to_bytes(32, "little")

    monkeypatch.setattr(ecdh, "new_key", new_key)
    monkeypatch.setattr(ecdh_session.random, "SystemRandom", lambda: random.Random(11))


def _spy_requests(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    sent: list[bytes] = []
    original = RequesterMachine.requests

    def requests(self):
        for msg in original(self):
            sent.append(msg.SerializeToString(deterministic=True))
            yield msg

    monkeypatch.setattr(RequesterMachine, "requests", requests)
    return sent


def _fed(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Records handed to BlindAhead.feed, one entry per call."""
    calls: list[int] = []
    original = ecdh_session.BlindAhead.feed

    def feed(self, records):
        calls.append(len(records))
        return original(self, records)

    monkeypatch.setattr(ecdh_session.BlindAhead, "feed", feed)
    return calls


@pytest.mark.parametrize("reveal", ["requester", "cardinality"])
def test_blinding_during_the_load_sends_the_same_bytes_and_finds_the_same_hits(agencies, start, monkeypatch,
                                                                               reveal):
    records = _write_sets(agencies.workdir)
    if reveal == "cardinality":
        agencies.edit("responder", 'reveal = "requester"', 'reveal = "cardinality"')
        agencies.edit("requester", 'reveal = "requester"', 'reveal = "cardinality"')
    agencies.edit("requester", "[requester]\n", "[requester]\nworkers = 2\n")
    running = start()
    peer = f"127.0.0.1:{running.port}"
    sent = _spy_requests(monkeypatch)
    fed = _fed(monkeypatch)
    runs = {}
    for ahead in ("0", "1"):
        monkeypatch.setenv(ecdh_session.BLIND_AHEAD_ENV, ahead)
        _deterministic_keys(monkeypatch)
        sent.clear()
        out = agencies.workdir / f"hits_{ahead}.csv"
        run = run_match(agencies.requester_config(), records, peer, out=out if reveal == "requester" else None)
        runs[ahead] = (list(sent), run.result.hit_count, out.read_bytes() if reveal == "requester" else b"")
        assert gc.isenabled() and gc.get_freeze_count() == 0  # the records were frozen only for the session
    assert len(fed) >= 2, "the overlapped run fed the records in batches while reading them"
    assert fed.count(0) == 0 and sum(fed) == N
    old, new = runs["0"], runs["1"]
    assert len(new[0]) == len(old[0]) > 2  # Hello, the chunks, Finish
    assert new[0] == old[0]
    # requester mode counts hit records, cardinality mode hit tokens (a document may give two)
    assert new[1] == old[1] and (new[1] == OVERLAP if reveal == "requester" else new[1] >= OVERLAP)
    assert new[2] == old[2]


def test_a_records_file_that_fails_half_way_sends_nothing(agencies, start, monkeypatch):
    records = _write_sets(agencies.workdir, encoding="utf-16")
    with records.open("ab") as fh:  # an unpaired surrogate after N good rows: UTF-16 cannot decode it
        fh.write(b"\x00\xd8A\x00\n\x00")
    agencies.edit("requester", 'date_order = "MDY"', 'date_order = "MDY"\nencoding = "utf-16"')
    agencies.edit("requester", "[requester]\n", "[requester]\nworkers = 2\n")
    running = start()
    sent = _spy_requests(monkeypatch)
    fed = _fed(monkeypatch)
    cancelled: list[int] = []
    original_cancel = ecdh_session.BlindAhead.cancel

    def cancel(self):
        cancelled.append(len(self.tokens))
        original_cancel(self)

    monkeypatch.setattr(ecdh_session.BlindAhead, "cancel", cancel)
    with pytest.raises(InputFileError, match="cannot be decoded as utf-16"):
        run_match(agencies.requester_config(), records, f"127.0.0.1:{running.port}",
                  out=agencies.workdir / "hits.csv")
    assert sum(fed) >= 4096  # blinding had started on the rows before the bad one
    assert cancelled and cancelled[0] >= 4096
    assert sent == []  # not even the Hello
    assert not (agencies.workdir / "hits.csv").exists()
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_the_cyclic_gc_makes_no_pass_from_the_load_to_the_hits_file(agencies, start, monkeypatch):
    """The records and the session's objects have no cycles: a collection over them finds nothing.

    The first young pass after the session walked what it still held (0.14 s of a 1M match's
    serial tail); run_match keeps the collector paused until the hits file is written.
    """
    import matcher.requester as requester

    records = _write_sets(agencies.workdir)
    agencies.edit("requester", "[requester]\n", "[requester]\nworkers = 2\n")
    running = start()
    events: list[str] = []

    def count(phase: str, info: dict) -> None:
        if phase == "start":
            events.append(f"pass over generation {info['generation']}")

    def write_hits(*args, **kwargs):
        original(*args, **kwargs)
        events.append("hits written")

    original = requester.write_hits
    monkeypatch.setattr(requester, "write_hits", write_hits)
    gc.collect()
    gc.callbacks.append(count)
    try:
        run = run_match(agencies.requester_config(), records, f"127.0.0.1:{running.port}",
                        out=agencies.workdir / "hits.csv")
    finally:
        gc.callbacks.remove(count)
    assert run.result.hit_count == OVERLAP
    assert events[0] == "hits written"
    assert gc.isenabled() and gc.get_freeze_count() == 0
