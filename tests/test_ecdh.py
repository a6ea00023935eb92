"""The ecdh core, both halves in one process, against a plaintext intersection."""

from __future__ import annotations

import hashlib
import random

import pytest
import rbcl
from hypothesis import given, settings
from hypothesis import strategies as st

from matcher.errors import InvalidElement, ResponderMisbehaved
from matcher.protocols import ecdh, ecdh_index


def run_psi(requester_tokens: list[bytes], responder: list[tuple[bytes, bytes]], chunk: int = 7):
    """Both halves of one session, chunked as over the wire; returns {token: case_ref}."""
    b = ecdh.new_key()
    tag_len = ecdh.tag_length(len(responder), len(requester_tokens))
    setup = ecdh.responder_setup(b, responder, tag_len)
    index = ecdh_index.SetupIndex(tag_len)
    for i in range(0, len(setup), chunk):
        index.add(setup.tags[i : i + chunk], setup.labels[i : i + chunk])
    a = ecdh.new_key()
    a_inv = ecdh.invert_key(a)
    found: dict[bytes, bytes] = {}
    for i in range(0, len(requester_tokens), chunk):
        batch = requester_tokens[i : i + chunk]
        reply = ecdh.evaluate(b, ecdh.blind_tokens(a, batch), offset=i)
        for token, ref in zip(batch, index.lookup(ecdh.unblind(a_inv, reply, offset=i), batch, i), strict=True):
            if ref is not None:
                found[token] = ref
    return found


def expected(requester_tokens, responder):
    refs: dict[bytes, set[bytes]] = {}
    for t, r in responder:
        refs.setdefault(t, set()).add(r)
    return {t: b";".join(sorted(refs[t])) for t in requester_tokens if t in refs}


def test_known_overlap_with_case_refs():
    responder = [(b"tok-%d" % i, b"CASE-%d" % i) for i in range(50)]
    requester = [b"tok-%d" % i for i in range(40, 90)]
    assert run_psi(requester, responder) == {b"tok-%d" % i: b"CASE-%d" % i for i in range(40, 50)}


def test_duplicate_responder_tokens_merge_case_refs():
    responder = [(b"same", b"CASE-B"), (b"same", b"CASE-A"), (b"other", b"CASE-C")]
    assert run_psi([b"same", b"nope"], responder) == {b"same": b"CASE-A;CASE-B"}


def test_empty_sets():
    assert run_psi([], [(b"x", b"1")]) == {}
    assert run_psi([b"x"], []) == {}


@settings(max_examples=40, deadline=None)
@given(
    universe=st.lists(st.binary(min_size=0, max_size=24), min_size=0, max_size=40, unique=True),
    data=st.data(),
)
def test_property_matches_plaintext_intersection(universe, data):
    req = data.draw(st.lists(st.sampled_from(universe), unique=True) if universe else st.just([]))
    resp_tokens = data.draw(st.lists(st.sampled_from(universe)) if universe else st.just([]))
    responder = [(t, b"ref-%d" % data.draw(st.integers(0, 3))) for t in resp_tokens]
    assert run_psi(req, responder, chunk=data.draw(st.integers(1, 9))) == expected(req, responder)


def test_blinding_commutes():
    a, b = ecdh.new_key(), ecdh.new_key()
    t = [b"alpha", b"beta"]
    ab = ecdh.evaluate(b, ecdh.blind_tokens(a, t))
    assert ecdh.unblind(ecdh.invert_key(a), ab) == ecdh.blind_tokens(b, t)
    assert ecdh.blind_tokens(a, t) != ecdh.blind_tokens(b, t)


def test_keys_are_fresh_and_nonzero():
    keys = {ecdh.new_key() for _ in range(64)}
    assert len(keys) == 64 and bytes(32) not in keys


@pytest.mark.parametrize(
    "bad, why",
    [
        (bytes(32), "identity"),
        (b"\x01" * 31, "32-byte"),
        (b"\xff" * 32, "not a valid"),
        (b"", "32-byte"),
    ],
)
def test_bad_points_refused_with_position(bad, why):
    good = ecdh.blind_tokens(ecdh.new_key(), [b"x"])[0]
    with pytest.raises(InvalidElement, match=why) as err:
        ecdh.evaluate(ecdh.new_key(), [good, bad], offset=10)
    assert "element 11" in str(err.value)
    with pytest.raises(InvalidElement):
        ecdh.unblind(ecdh.new_key(), [bad])


def test_random_bytes_are_mostly_not_points():
    rng = random.Random(1)
    bad = 0
    for _ in range(200):
        p = rng.randbytes(32)
        try:
            ecdh.check_point(p)
        except InvalidElement:
            bad += 1
    assert bad > 100  # most 32-byte strings are not canonical ristretto255 encodings


def test_tag_length_bound():
    assert ecdh.tag_length(1, 1) == 8
    # 1M x 1M pairs: 40 + 40 bits -> 10 bytes
    assert ecdh.tag_length(10**6, 10**6) == 10
    for n in (10, 1000, 10**5):
        assert 8 * ecdh.tag_length(n, n) >= 40 + 2 * (n.bit_length() - 1)


def test_labels_hide_length_and_reject_wrong_key():
    p, q = ecdh.blind_tokens(ecdh.new_key(), [b"p", b"q"])
    size = ecdh.label_size([b"short", b"a much longer case reference"])
    l1 = ecdh.seal_label(p, b"short", size, b"p")
    l2 = ecdh.seal_label(q, b"a much longer case reference", size, b"q")
    assert len(l1) == len(l2)
    assert ecdh.open_label(p, l1, b"p") == b"short"
    assert ecdh.open_label(q, l1, b"p") is None
    # the label is bound to its token: the right key with another token's associated data fails
    assert ecdh.open_label(p, l1, b"q") is None


def test_tag_collision_cannot_make_a_false_hit():
    b = ecdh.new_key()
    setup = ecdh.responder_setup(b, [(b"y", b"CASE")], tag_len=8)
    y_point = ecdh.blind_tokens(b, [b"y"])[0]
    other = ecdh.blind_tokens(b, [b"x"])[0]
    index = ecdh_index.SetupIndex(8)
    # Forge a collision: the other element's tag mapped to y's label.
    index.add([hashlib.sha512(b"matcher/v1/out\x00" + other).digest()[:8]], setup.labels)
    with pytest.raises(ResponderMisbehaved, match="reply 0 matches a setup entry"):
        index.lookup([other], [b"x"])
    index2 = ecdh_index.SetupIndex(8)
    index2.add(setup.tags, setup.labels)
    assert index2.lookup([y_point], [b"y"]) == [b"CASE"]


def test_every_entry_with_the_tag_is_tried_before_blaming_the_responder():
    b = ecdh.new_key()
    both = ecdh.responder_setup(b, [(b"x", b"CASE-X"), (b"y", b"CASE-Y")], tag_len=8)
    x_point, y_point = ecdh.blind_tokens(b, [b"x", b"y"])
    x_tag = ecdh.derive_tags([x_point], 8)[0]
    x_label = both.labels[both.tags.index(x_tag)]
    y_label = both.labels[both.tags.index(ecdh.derive_tags([y_point], 8)[0])]
    index = ecdh_index.SetupIndex(8)
    index.add([x_tag, x_tag], [y_label, x_label])  # an honest collision: y's entry shares x's tag
    assert index.lookup([x_point], [b"x"]) == [b"CASE-X"]


def test_hash_to_group_is_rbcl_from_hash_of_domain_separated_sha512():
    t = b"matcher/v1/n1/document/X"
    assert ecdh.hash_to_group(t) == rbcl.crypto_core_ristretto255_from_hash(
        hashlib.sha512(b"matcher/v1/h2g\x00" + t).digest()
    )


def test_setup_out_of_tag_order_is_refused():
    setup = ecdh.responder_setup(ecdh.new_key(), [(b"a", b"1"), (b"b", b"2"), (b"c", b"3")], 8)
    index = ecdh_index.SetupIndex(8)
    with pytest.raises(InvalidElement, match="out of tag order"):
        index.add(list(reversed(setup.tags)), list(reversed(setup.labels)))
    with pytest.raises(InvalidElement, match="bytes, expected 8"):
        ecdh_index.SetupIndex(8).add([b"short"], [b"x"])


def test_setup_index_names_the_first_bad_entry_across_chunks():
    index = ecdh_index.SetupIndex(8)
    index.add([b"aaaaaaaa", b"cccccccc"], [b"l1", b"l2"])
    with pytest.raises(InvalidElement, match="setup entry 2 is out of tag order"):
        index.add([b"bbbbbbbb", b"dddddddd"], [b"l3", b"l4"])  # below the previous chunk's last tag
    with pytest.raises(InvalidElement, match="setup entry 4 is out of tag order"):
        index.add([b"cccccccc", b"zzzzzzzz", b"dddddddd"], [b"l3", b"l4", b"l5"])
    with pytest.raises(InvalidElement, match="setup tag 4 has 7 bytes, expected 8"):
        index.add([b"cccccccc", b"dddddddd", b"eeeeeee"], [b"l3", b"l4", b"l5"])
    assert len(index) == 2  # a refused chunk adds nothing
    index.add([b"cccccccc", b"cccccccc", b"dddddddd"], [b"l3", b"l4", b"l5"])  # equal tags: an honest collision
    assert index.tags == [b"aaaaaaaa", b"cccccccc", b"cccccccc", b"cccccccc", b"dddddddd"]


def test_setup_index_finds_the_same_tags_whether_built_by_chunks_or_whole():
    """The C lookup's concatenated tags come from the chunks as they arrived, or from the list."""
    setup = ecdh.responder_setup(ecdh.new_key(), [(b"t%d" % i, b"CASE-%d" % i) for i in range(300)], 8)
    outputs = [bytes(64)] + [tag + bytes(64 - 8) for tag in setup.tags[::7]]  # 8-byte tags of the setup's entries
    whole = ecdh_index.SetupIndex.from_setup(setup)
    chunked = ecdh_index.SetupIndex(8)
    for lo in range(0, 300, 128):
        chunked.add(setup.tags[lo:lo + 128], setup.labels[lo:lo + 128])
    expected = [(j + 1, 7 * j, 1) for j in range(len(setup.tags[::7]))]
    assert whole._found(outputs) == chunked._found(outputs) == expected
    later = ecdh_index.SetupIndex(8)  # looked up between chunks, then more chunks
    later.add(setup.tags[:100], setup.labels[:100])
    assert later._found(outputs) == [t for t in expected if t[1] < 100]
    later.add(setup.tags[100:], setup.labels[100:])
    assert later._found(outputs) == expected


def test_cardinality_setup_survives_the_cache_round_trip(tmp_path):
    from matcher.storage.setup_cache import load_setup, save_setup, setup_id

    setup = ecdh.responder_setup(ecdh.new_key(), [(b"a", b"1"), (b"b", b"2")], 8, with_labels=False)
    save_setup(tmp_path / "s.bin", setup, {})
    _, loaded = load_setup(tmp_path / "s.bin")
    assert setup_id(loaded) == setup_id(setup)


def test_labels_of_two_setups_in_one_epoch_do_not_share_a_key_stream():
    """A changed watchlist within an epoch keeps b: labels must still not XOR to the plaintexts."""
    b = ecdh.new_key()
    one = ecdh.responder_setup(b, [(b"y", b"CASE-1")], 8)
    two = ecdh.responder_setup(b, [(b"y", b"CASE-1;OPS-GLACIER")], 8)
    assert one.tags == two.tags and len(one.labels[0]) == len(two.labels[0])
    xor = bytes(x ^ y for x, y in zip(one.labels[0], two.labels[0], strict=True))
    assert b"OPS-GLACIER" not in xor and b"GLACIER" not in xor
    assert one.labels[0][: ecdh.NONCE_BYTES] != two.labels[0][: ecdh.NONCE_BYTES]


@pytest.mark.parametrize(
    "accepted, chunk, words",
    [
        ({"tag_length": 0, "setup_size": 1}, None, "tags of 0 bytes"),
        ({"tag_length": 40, "setup_size": 1}, None, "tags of 40 bytes"),
        ({"tag_length": 8, "setup_size": 2**63}, None, "setup of"),
        ({"tag_length": 8, "setup_size": 2},
         {"tags": [b"a" * 8, b"b" * 8], "labels": [b"x" * 60, b"y" * 61]}, "labels"),
        ({"tag_length": 8, "setup_size": 1}, {"tags": [b"a" * 8], "labels": [b"x" * 20]}, "labels"),
    ],
)
def test_requester_checks_what_the_responder_announces(accepted, chunk, words):
    """Review finding: a responder could announce empty tags (every element a hit) or any setup size."""
    from clients.sessions.ecdh import EcdhRequesterSession
    from matcher.errors import ProtocolViolation
    from matcher.identity.match_keys import KeySpec
    from matcher.v1 import matcher_pb2 as pb

    spec = KeySpec.from_mapping("n1", {"document": ["document_number", "document_country"]})
    session = EcdhRequesterSession([], spec, "requester")
    with pytest.raises(ProtocolViolation, match=words):
        session.on_accepted(pb.Accepted(**accepted))
        session.on_setup(pb.SetupChunk(**chunk))


def test_a_setup_cache_of_the_format_before_the_label_binding_is_not_read(tmp_path):
    """Labels sealed without the token's associated data must not be used: such a cache is rebuilt."""
    from matcher.storage.setup_cache import MAGIC, load_setup, save_setup

    setup = ecdh.responder_setup(ecdh.new_key(), [(b"t", b"CASE")], 8)
    path = tmp_path / "setup.bin"
    save_setup(path, setup, {"digest": "d"})
    assert load_setup(path) is not None and MAGIC == b"MSETUP3\n"
    blob = path.read_bytes()
    for older in (b"MSETUP1\n", b"MSETUP2\n"):
        path.write_bytes(older + blob[len(MAGIC):])
        assert load_setup(path) is None
