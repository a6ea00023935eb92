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
import re

import pytest
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clients.sessions.ecdh import EcdhRequesterSession
from matcher.errors import ProtocolViolation, ResponderMisbehaved
from matcher.parallel import ThreadWorkers, Workers, inline, kernel_threads
from matcher.protocols import ecdh, ecdh_index, group_backend, label_backend
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


# -- the fast paths against their plain definitions, on random input ----------------------------

_POOL = [b"", b"a", b"ab", bytes(32), bytes(31) + b"\x01", b"\x01" + bytes(31), bytes(8) + b"\x02" + bytes(23),
         bytes(64)]


def _first_repeat(elements: list[bytes]) -> int | None:
    """The plain definition: the index of the first element equal to an earlier one."""
    seen: set[bytes] = set()
    for i, e in enumerate(elements):
        if e in seen:
            return i
        seen.add(e)
    return None


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.one_of(st.sampled_from(_POOL), st.binary(max_size=33)), max_size=9), max_size=6))
def test_the_responder_refuses_exactly_the_first_repeat_of_the_session(chunks):
    # Elements that differ in one byte anywhere (not only in the first 8) are distinct;
    # equal ones are refused, in the chunk that brings the first of them, naming it.
    seen: set[int] = set()
    flat: list[bytes] = []
    named = None
    for chunk in chunks:
        try:
            refuse_repeats(seen, chunk, len(flat))
        except ProtocolViolation as exc:
            named = int(re.search(r"element (\d+) repeats", str(exc))[1])
            assert len(flat) <= named < len(flat) + len(chunk)  # in the chunk that brought it
            break
        flat.extend(chunk)
    expected = _first_repeat([e for chunk in chunks for e in chunk])
    assert named == expected


def _sealed(output: bytes, ref: bytes, token: bytes, nonce: bytes, size: int = 32) -> bytes:
    plain = len(ref).to_bytes(2, "big") + ref + bytes(size - 2 - len(ref))
    return nonce + ChaCha20Poly1305(output[32:]).encrypt(nonce, plain, ecdh.label_ad(token))


def _plain_hits(tags: list[bytes], labels: list[bytes], outputs, tokens, offset: int):
    """The plain definition of a lookup: each output's entries with its tag in setup order, the first
    label that opens (b"" when the first entry has no label); a tag whose labels all fail: the error."""
    out = []
    for j, o in enumerate(outputs):
        entries = [i for i, tag in enumerate(tags) if tag == o[: len(tag)]]
        if not entries:
            continue
        if not labels[entries[0]]:
            out.append((j, b""))
            continue
        for i in entries:
            ref = ecdh._open_with(o[32:], labels[i], ecdh.label_ad(tokens[j]))
            if ref is not None:
                out.append((j, ref))
                break
        else:
            return f"reply {offset + j} matches a setup entry"
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), hits=st.integers(0, 12), misses=st.integers(0, 12),
       collisions=st.integers(0, 3), swapped=st.booleans(), unlabelled=st.booleans(), c_opener=st.booleans(),
       skip=st.integers(0, 5))
def test_a_chunk_s_hits_are_those_of_the_plain_lookup(seed, hits, misses, collisions, swapped, unlabelled,
                                                     c_opener, skip):
    rng = random.Random(seed)
    tag_len = 3  # short tags: the same tag on several entries (an honest collision) is common
    held = [(rng.randbytes(64), b"tok-%d" % i, b"CASE-%d" % i) for i in range(hits + 4)]
    rows = [(o[:tag_len], b"" if unlabelled else _sealed(o, ref, tok, rng.randbytes(12))) for o, tok, ref in held]
    for _ in range(collisions):  # another entry with a held output's tag, sealed for something else
        o = rng.choice(held)[0]
        rows.append((o[:tag_len], b"" if unlabelled else _sealed(rng.randbytes(64), b"OTHER", b"x", rng.randbytes(12))))
    rng.shuffle(rows)
    rows.sort(key=lambda r: r[0])
    index = ecdh_index.SetupIndex.from_setup(ecdh.ResponderSetup(tag_len, [t for t, _ in rows], [lb for _, lb in rows]))
    mine = held[:hits] + [(rng.randbytes(64), b"mine-%d" % i, b"") for i in range(misses)]
    rng.shuffle(mine)
    outputs, tokens = [o for o, _, _ in mine], [t for _, t, _ in mine]
    if swapped and hits >= 2:  # two hits' tokens swapped: their labels do not open (a misbehaving reply)
        a, b = rng.sample([j for j, m in enumerate(mine) if m[2]], 2)
        tokens[a], tokens[b] = tokens[b], tokens[a]
    expected = _plain_hits(index.tags, index.labels, outputs, tokens, 100)
    whole = [b"other"] * skip + tokens  # the session's token list: this chunk's tokens from `skip` on
    with pytest.MonkeyPatch.context() as m:
        m.setattr(label_backend, "OPEN", label_backend.OPEN if c_opener else None)  # (None where not built)
        for lookup in (lambda: index.hits(outputs, whole, 100, first_token=skip),
                       lambda: [(j, r) for j, r in enumerate(index.lookup_outputs(outputs, tokens, 100))
                                if r is not None]):
            if isinstance(expected, str):
                with pytest.raises(ResponderMisbehaved, match=expected):
                    lookup()
            else:
                assert lookup() == expected
