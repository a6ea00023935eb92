"""The ecdh session's fast paths give the answers of the straightforward ones.

The requester's tag lookup runs in C when the IFMA extension is loaded (one binary
search per element over the tags concatenated) and with :mod:`bisect` otherwise; the
repeat checks of both sides take one set operation per chunk and fall back to the
element loop only to name a repeat; GIL-free kernels run on threads, and a process
pool starts only when something is submitted to it.
"""

from __future__ import annotations

import itertools
import random

import pytest

from clients.sessions.ecdh import EcdhRequesterSession
from matcher.errors import ProtocolViolation, ResponderMisbehaved
from matcher.parallel import ThreadWorkers, Workers, inline, kernel_threads
from matcher.protocols import ecdh, ecdh_index, group_backend
from matcher.sessions.responder import refuse_repeats
from tests.harness import KEYSPEC, synthetic_sets

needs_fast = pytest.mark.skipif(group_backend.FAST is None, reason="IFMA extension not in use here")


def _index_and_outputs(seed: int, tag_len: int) -> tuple[ecdh_index.SetupIndex, list[bytes]]:
    """A sorted setup with repeated tags, and outputs that hit first, last, middle and repeated tags or miss."""
    rng = random.Random(seed)
    tags = sorted(rng.randbytes(tag_len) for _ in range(rng.randrange(0, 300)))
    tags += tags[: rng.randrange(0, 4)]  # honest collisions: the same tag twice
    tags.sort()
    index = ecdh_index.SetupIndex(tag_len)
    index.add(tags, [b""] * len(tags))
    outputs = [rng.randbytes(64) for _ in range(200)]  # misses (all but surely)
    outputs += [t + rng.randbytes(64 - tag_len) for t in rng.sample(tags, min(len(tags), 50))]
    outputs += [t + bytes(64 - tag_len) for t in tags[:1] + tags[-1:]]
    outputs += [bytes(64), b"\xff" * 64]  # below the first tag, above the last
    rng.shuffle(outputs)
    return index, outputs


@needs_fast
@pytest.mark.parametrize("seed", range(6))
def test_the_c_tag_lookup_finds_what_bisect_finds(seed, monkeypatch):
    index, outputs = _index_and_outputs(seed, tag_len=8 + seed)
    fast = index._found(outputs)
    with monkeypatch.context() as m:
        m.setattr(group_backend, "FAST", None)
        slow = index._found(outputs)
    assert fast == slow
    tag_len = index.tag_length
    assert all(index.tags[i : i + count] == [outputs[j][:tag_len]] * count for j, i, count in fast)
    assert all(i == 0 or index.tags[i - 1] != index.tags[i] for _, i, _ in fast)  # the first entry with the tag
    assert all(i + count == len(index.tags) or index.tags[i + count] != index.tags[i] for _, i, count in fast)
    assert any(count > 1 for _, _, count in fast) == any(a == b for a, b in itertools.pairwise(index.tags))


@needs_fast
def test_the_c_tag_lookup_sees_tags_added_after_a_lookup():
    index = ecdh_index.SetupIndex(8)
    index.add([b"a" * 8], [b""])
    assert index._found([b"b" * 64]) == []
    index.add([b"b" * 8], [b""])
    assert index._found([b"b" * 64]) == [(0, 1, 1)]


@needs_fast
def test_the_c_tag_lookup_refuses_malformed_input():
    fast = group_backend.FAST
    table = fast.tag_buckets(b"x" * 8, 8)
    with pytest.raises(ValueError):
        fast.tag_buckets(b"x" * 9, 8)  # not a whole number of tags
    with pytest.raises(ValueError):
        fast.find_tags(b"x" * 16, table, 8, [b"y" * 64])  # a table of another tag list
    with pytest.raises(ValueError):
        fast.find_tags(b"x" * 8, table[:-4], 8, [b"y" * 64])
    bad = bytearray(table)
    bad[4 * ord("x") * 256 : 4 * ord("x") * 256 + 4] = (7).to_bytes(4, "little")  # not ascending
    with pytest.raises(ValueError):
        fast.find_tags(b"x" * 8, bytes(bad), 8, [b"y" * 64])
    with pytest.raises(ValueError):
        fast.find_tags(b"x" * 8, table, 8, [b"short"])
    with pytest.raises(TypeError):
        fast.find_tags(b"x" * 8, table, 8, (b"y" * 64,))


def test_the_requester_refuses_a_reply_repeated_from_an_earlier_chunk():
    req, _ = synthetic_sets(40, 1, 0, seed=3)
    session = EcdhRequesterSession(req, KEYSPEC, "requester")
    replies = ecdh.blind_tokens(ecdh.new_key(), [b"t%d" % i for i in range(20)])
    session._check_distinct(replies[:10])
    with pytest.raises(ResponderMisbehaved, match="reply 3 repeats an earlier reply"):
        session._check_distinct(replies[10:13] + replies[4:5] + replies[13:])
    with pytest.raises(ResponderMisbehaved, match="reply 2 repeats an earlier reply"):
        session._check_distinct(replies[15:17] + replies[15:16])


def test_the_responder_names_the_first_repeat_within_and_across_chunks():
    seen: set[int] = set()
    refuse_repeats(seen, [b"a", b"b"], 0)
    refuse_repeats(seen, [b"c"], 2)
    with pytest.raises(ProtocolViolation, match="element 4 repeats"):
        refuse_repeats(seen, [b"d", b"b", b"e"], 3)
    with pytest.raises(ProtocolViolation, match="element 11 repeats"):
        refuse_repeats(set(), [b"x", b"y", b"x"], 9)


def test_the_requester_session_keeps_tokens_distinct_in_first_seen_order():
    req, _ = synthetic_sets(30, 1, 0, seed=4)
    session = EcdhRequesterSession(req + req[:5], KEYSPEC, "requester")
    expected = list(dict.fromkeys(t for r in req for _, t in r.tokens))
    assert session.tokens == expected
    owners = session.owners({expected[0]})
    assert owners == {expected[0]: [(i, k) for i, r in enumerate(req + req[:5]) for k, t in r.tokens
                                    if t == expected[0]]}


def test_gil_free_kernels_run_on_threads_and_a_process_pool_starts_only_when_used():
    pool = Workers(2)
    try:
        assert pool._pool is None  # nothing submitted: no process spawned
        threads = kernel_threads(pool)
        assert isinstance(threads, ThreadWorkers) and threads.size == 2
        assert kernel_threads(pool) is threads  # shared
        assert threads.map_split(ecdh.blind_tokens, (ecdh.new_key(),), [b"t%d" % i for i in range(600)])
        assert pool._pool is None
        assert kernel_threads(inline()) is inline()
    finally:
        pool.close()


def test_hits_records_from_the_blind_ahead_map_are_those_a_pass_over_the_records_finds():
    # Tokens yielded by one record are looked up in it (BlindAhead's first-record map); a
    # token that several records (or keys) yield goes through the pass over all records.
    from clients.sessions.base import RequesterSession
    from clients.sessions.ecdh import BlindAhead
    from matcher.identity.record_types import TokenisedRecord

    rng = random.Random(3)
    pool = [b"tok-%d" % i for i in range(400)]
    records = []
    for i in range(900):
        picks = rng.sample(pool, rng.choice([1, 1, 1, 2, 3]))  # most records one token; some shared
        records.append(TokenisedRecord(f"R-{i}", "", tuple((rng.choice(["document", "names_dob"]), t) for t in picks)))
    ahead = BlindAhead(inline())
    ahead.feed(records[:500])
    ahead.feed(records[500:])
    session = EcdhRequesterSession(records, KEYSPEC, "requester", ahead=ahead)
    every = list(range(len(session.tokens)))
    fast = session.hit_owners(every)
    assert fast == RequesterSession.hit_owners(session, every)
    assert ahead.repeated and len(ahead.repeated) < len(session.tokens)  # both paths were taken
    assert len(ahead.first_record) == len(session.tokens)


def test_hits_folded_chunk_by_chunk_give_the_result_a_fold_at_the_end_gives():
    # With BlindAhead, each reply chunk's hits on one-record tokens are folded into pairs
    # during the session; hits on tokens several records yield wait for result().
    from clients.sessions.ecdh import BlindAhead
    from matcher.identity.match_keys import KeySpec
    from matcher.identity.record_types import TokenisedRecord

    spec = KeySpec.from_mapping("n1", {"document": ["document_number", "document_country"],
                                       "names_dob": ["given_names", "family_name", "date_of_birth"]})
    rng = random.Random(7)
    pool = [b"tok-%d" % i for i in range(300)]
    records = [
        TokenisedRecord(f"R-{i}", "", tuple((rng.choice(["document", "names_dob"]), t)
                                            for t in rng.sample(pool, rng.choice([1, 1, 2, 3]))))
        for i in range(600)
    ]
    ahead = BlindAhead(inline())
    ahead.feed(records)
    early = EcdhRequesterSession(records, spec, "requester", ahead=ahead)
    at_end = EcdhRequesterSession(records, spec, "requester")
    assert early.tokens == at_end.tokens
    refs = [b"", b"CASE-1", b"CASE-1;CASE-2", b";CASE-3;", "CÄSE-ü".encode()]
    hits = [(t, rng.choice(refs)) for t in rng.sample(range(len(early.tokens)), 200)]
    for lo in range(0, len(hits), 37):  # reply chunks
        for t, ref in hits[lo:lo + 37]:
            early.add_hit(t, ref)
            at_end.add_hit(t, ref)
        early._fold_early()
    assert early._hits_later and early._keys_by_pair  # both ways were taken
    expected = at_end.result()
    assert len(expected.hits) > 150
    assert early.result().hits == expected.hits
