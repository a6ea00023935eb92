"""The requester holds a received setup as per-chunk buffers; the answers are those of the plain lists.

:class:`SetupIndex` keeps each chunk's tags joined and its rows ``tag ‖ label`` joined, and
slices a hit's labels from its chunk's rows; the setup cache hashes and writes those row
buffers in order. Compared here with the plain definition over the setup as two lists (what
the index held before): the same hits (and the same error), the same tags and labels, the
same setup id and the same cache file, byte for byte, whatever the chunking.
"""

from __future__ import annotations

import hashlib
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matcher.errors import ResponderMisbehaved
from matcher.protocols import ecdh, ecdh_index, group_backend, label_backend
from matcher.storage.setup_cache import RequesterSetupCache, load_setup, save_setup, setup_id
from tests.test_session_fast_paths import _plain_hits, _sealed


def _setup(rng: random.Random, size: int, collisions: int, unlabelled: bool, tag_len: int = 3):
    """A sorted setup over random outputs (short tags: collisions common), and the outputs it holds."""
    held = [(rng.randbytes(64), b"tok-%d" % i, b"CASE-%d" % i) for i in range(size)]
    rows = [(o[:tag_len], b"" if unlabelled else _sealed(o, ref, tok, rng.randbytes(12))) for o, tok, ref in held]
    for _ in range(collisions if held else 0):  # another entry with a held output's tag, sealed for something else
        o = rng.choice(held)[0]
        rows.append((o[:tag_len], b"" if unlabelled else _sealed(rng.randbytes(64), b"OTHER", b"x", rng.randbytes(12))))
    rng.shuffle(rows)
    rows.sort(key=lambda r: r[0])
    return [t for t, _ in rows], [lb for _, lb in rows], held


def _chunked(tags: list[bytes], labels: list[bytes], cuts: list[int], tag_len: int = 3) -> ecdh_index.SetupIndex:
    """An index fed the setup in chunks ending at ``cuts`` (as the session feeds it; no labels: [])."""
    index = ecdh_index.SetupIndex(tag_len)
    bounds = [0, *sorted(c % (len(tags) + 1) for c in cuts), len(tags)]
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        index.add(tags[lo:hi], [] if not any(labels) else labels[lo:hi])
    return index


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), size=st.integers(0, 30), collisions=st.integers(0, 4),
       cuts=st.lists(st.integers(0, 40), max_size=6), unlabelled=st.booleans(), swapped=st.booleans(),
       c_lookup=st.booleans(), c_opener=st.booleans())
def test_the_chunked_buffers_find_the_hits_of_the_plain_lists(seed, size, collisions, cuts, unlabelled, swapped,
                                                            c_lookup, c_opener):
    rng = random.Random(seed)
    tags, labels, held = _setup(rng, size, collisions, unlabelled)
    index = _chunked(tags, labels, cuts)
    assert len(index) == len(tags)
    assert index.tags == tags and index.labels == labels
    mine = held[: size // 2] + [(rng.randbytes(64), b"mine-%d" % i, b"") for i in range(5)]
    rng.shuffle(mine)
    outputs, tokens = [o for o, _, _ in mine], [t for _, t, _ in mine]
    hit_rows = [j for j, m in enumerate(mine) if m[2]]
    if swapped and len(hit_rows) >= 2:  # two hits' tokens swapped: their labels do not open
        a, b = rng.sample(hit_rows, 2)
        tokens[a], tokens[b] = tokens[b], tokens[a]
    expected = _plain_hits(tags, labels, outputs, tokens, 100)
    # the same setup read back as the cache gives it: its rows in one buffer (SetupIndex.from_rows)
    received = index.received_rows()
    reread = ecdh_index.SetupIndex.from_rows(ecdh_index.ReceivedRows(
        received.tag_length, received.label_length, len(received), (b"".join(received.parts),) if tags else ()))
    assert len(reread) == len(tags) and reread.tags == tags and reread.labels == labels
    with pytest.MonkeyPatch.context() as m:
        m.setattr(label_backend, "OPEN", label_backend.OPEN if c_opener else None)
        m.setattr(group_backend, "FAST", group_backend.FAST if c_lookup else None)  # bisect over the joined tags
        for one in (index, reread):
            if isinstance(expected, str):
                with pytest.raises(ResponderMisbehaved, match=expected):
                    one.hits(outputs, tokens, 100)
            else:
                assert one.hits(outputs, tokens, 100) == expected


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), size=st.integers(0, 30), cuts=st.lists(st.integers(0, 40), max_size=6),
       unlabelled=st.booleans())
def test_the_chunk_buffers_make_the_setup_id_and_cache_file_of_the_plain_rows(tmp_path_factory, seed, size, cuts,
                                                                            unlabelled):
    tags, labels, _ = _setup(random.Random(seed), size, 2, unlabelled)
    plain = ecdh.ResponderSetup(3, tags, labels if not unlabelled else [])
    received = _chunked(tags, labels, cuts).received_rows()
    # the definition: SHA-256 over the rows tag ‖ label interleaved, in setup order
    rows = b"".join(t + lb for t, lb in zip(tags, labels, strict=True))
    defined = hashlib.sha256(b"matcher/v1/setup\x003\x00" + rows).hexdigest()[:32]
    assert setup_id(received) == setup_id(plain) == defined
    folder = tmp_path_factory.mktemp("cache")
    assert save_setup(folder / "received.bin", received, {"setup_id": defined}) == defined
    save_setup(folder / "plain.bin", plain, {"setup_id": defined})
    assert (folder / "received.bin").read_bytes() == (folder / "plain.bin").read_bytes()
    key = b"k" * 32  # the responder's authenticated form too
    save_setup(folder / "received-mac.bin", received, {}, mac_key=key)
    save_setup(folder / "plain-mac.bin", ecdh.ResponderSetup(3, tags, plain.labels), {}, mac_key=key)
    assert (folder / "received-mac.bin").read_bytes() == (folder / "plain-mac.bin").read_bytes()
    _, loaded = load_setup(folder / "received.bin", expected_id=defined)
    assert loaded.tags == tags and (loaded.labels == labels or unlabelled)


def test_the_chunks_rows_are_written_in_the_order_they_arrived(tmp_path):
    """Chunks stitched in another order (or one left out) would give another setup id, which the cache refuses."""
    tags, labels, held = _setup(random.Random(3), 40, 0, unlabelled=False)
    index = _chunked(tags, labels, [7, 19, 33])
    received = index.received_rows()
    assert len(received.parts) == 4
    assert b"".join(received.parts) == b"".join(t + lb for t, lb in zip(tags, labels, strict=True))
    sid = setup_id(ecdh.ResponderSetup(3, tags, labels))
    cache = RequesterSetupCache(tmp_path / "cache")
    assert cache.save("b", sid, received)
    loaded = cache.load("b", sid)
    assert loaded is not None
    assert (loaded.tag_length, loaded.label_length, len(loaded)) == (3, len(labels[0]), len(tags))
    assert b"".join(loaded.parts) == b"".join(received.parts)
    stitched = ecdh_index.ReceivedRows(3, received.label_length, len(tags), received.parts[::-1])
    assert setup_id(stitched) != sid and not cache.save("c", sid, stitched)
    # the labels at the chunks' edges are sliced from the right chunk and offset
    for i in (0, 6, 7, 18, 19, 32, 33, 39):
        assert index._label(i) == labels[i]
    outputs = [o for o, _, _ in held]
    assert index.hits(outputs, [t for _, t, _ in held]) == [(j, b"CASE-%d" % j) for j in range(40)]


def test_rows_of_several_widths_are_not_saved_as_one_setup():
    index = ecdh_index.SetupIndex(3)
    index.add([b"aaa"], [b"x" * 30])
    index.add([b"bbb"], [b"y" * 31])
    with pytest.raises(ValueError, match="not of one fixed length"):
        index.received_rows()
    assert index.labels == [b"x" * 30, b"y" * 31]


@pytest.mark.parametrize("count", [0, 1, 4095, 4096, 4097, 8193])
@pytest.mark.parametrize(("tag_length", "width"), [(3, 3), (3, 63), (16, 75)])
def test_the_tags_unpacked_from_rows_are_the_tags_sliced_one_by_one(count, tag_length, width):
    # A cached setup's tags are copied out of its rows by a struct, blocks of 4,096 rows at a time.
    rows = random.Random(count * width).randbytes(count * width)
    plain = b"".join(rows[i : i + tag_length] for i in range(0, len(rows), width))
    assert ecdh_index._tags_of_rows(rows, tag_length, width) == plain
