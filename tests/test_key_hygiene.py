"""Keys and points at the edges: canonical encodings only, and no secret in any repr."""

from __future__ import annotations

import pytest

from clients import TlsFiles
from matcher.errors import InvalidElement
from matcher.protocols import ecdh, keyed_hash
from matcher.protocols import paillier as pl
from matcher.protocols import paillier_responder as plr
from matcher.server.service import TlsMaterial
from matcher.storage.secrets_store import EpochKey


def test_check_point_refuses_the_encoding_with_bit_255_set():
    """RFC 9496: bit 255 of a canonical encoding is 0; libsodium 1.0.18 ignores it."""
    p = ecdh.blind_tokens(ecdh.new_key(), [b"x"])[0]
    twin = p[:31] + bytes([p[31] | 0x80])
    ecdh.check_point(p)
    with pytest.raises(InvalidElement, match="not a valid ristretto255 point"):
        ecdh.check_point(twin)
    key = ecdh.new_key()
    for kernel in (ecdh.evaluate, ecdh.unblind, ecdh.unblind_outputs):
        with pytest.raises(InvalidElement, match="element 1"):
            kernel(key, [p, twin])


def _texts(obj) -> str:
    return repr(obj) + str(obj) + f"{obj}" + repr([obj])


def test_no_key_type_shows_secret_material():
    key = pl.generate_key(1024, _allow_small=True)
    secrets_of_key = [str(key.p), str(key.q), str(key.hs), hex(key.p)[2:], str(key.n)]
    query = pl.build_query([b"matcher/v1/n2/document/SECRET-TOKEN"], key)
    rr = plr.Rerandomiser.new(key.n)
    b = ecdh.new_key()
    setup = ecdh.responder_setup(b, [(b"SECRET-TOKEN", b"CASE-REF-1")], 8, keep_points=True)
    index = keyed_hash.responder_index(b"k" * 32, [(b"SECRET-TOKEN", b"CASE-REF-1")])
    pem_key = b"-----BEGIN PRIVATE KEY-----\nSECRETKEYMATERIAL\n-----END PRIVATE KEY-----\n"
    epoch = EpochKey("e1", 0.0, b)
    shown = "".join(_texts(o) for o in (key, query, rr, setup, index, TlsFiles(b"cert", pem_key, b"ca"),
                                         TlsMaterial(b"cert", pem_key, b"ca"), epoch))
    for secret in secrets_of_key + [str(x) for x in rr.xs] + [str(rr.hs)]:
        assert secret not in shown
    for secret in ("SECRET-TOKEN", "CASE-REF-1", "SECRETKEYMATERIAL", b.hex(), repr(b)[2:-1],
                   repr(setup.tags[0])[2:-1], setup.tags[0].hex()):
        assert secret not in shown
    assert "1024-bit" in repr(key) and "1 entries" in repr(setup)


def test_a_tokenised_record_shows_neither_its_ids_nor_its_tokens():
    from matcher.identity.record_types import TokenisedRecord

    rec = TokenisedRecord("PERSON-4711", "CASE-REF-9", (("document", b"matcher/v1/n2/document/SECRET-DOC"),))
    shown = _texts(rec)
    for secret in ("PERSON-4711", "CASE-REF-9", "SECRET-DOC"):
        assert secret not in shown
    assert "1 tokens" in shown  # still says what it is


def test_a_hit_shows_its_keys_but_not_whom_it_names():
    from clients.sessions.base import Hit

    hit = Hit("PERSON-4711", ("document", "names_dob"), "CASE-REF-9")
    shown = _texts(hit)
    assert "PERSON-4711" not in shown and "CASE-REF-9" not in shown
    assert "document" in shown and hit.record_id == "PERSON-4711" and hit.strength == "document"
