"""reveal = "cardinality" against a requester that deviates: it learns a count, never which tokens hit.

The attack of the review: blind element i with ``a·(i+1)⁻¹`` instead of ``a``; every
reply the responder sends back can then be attributed to its element by trying the
small multiples against the setup. With the responder doing the counting no reply is
ever sent back, so there is nothing to attribute.
"""

from __future__ import annotations

import queue

import grpc
import pytest
import rbcl

from clients import TlsFiles
from matcher.errors import InvalidElement
from matcher.identity.records import load_records
from matcher.protocols import ecdh, ecdh_reveal
from matcher.requester import run_match
from matcher.storage import session_log
from matcher.v1 import matcher_pb2 as pb
from matcher.v1 import matcher_pb2_grpc as pb_grpc
from tests.conftest import norm_digest

NEW_WIRE = "wire_version" in pb.Hello.DESCRIPTOR.fields_by_name


def _cardinality(agencies):
    agencies.edit("responder", 'reveal = "requester"', 'reveal = "cardinality"')
    agencies.edit("requester", 'reveal = "requester"', 'reveal = "cardinality"')


def _requester_tokens(agencies) -> list[bytes]:
    cfg = agencies.requester_config()
    recs = load_records(agencies.workdir / "agency_b_records.csv", cfg.records.csv_format(), cfg.key_spec()).records
    return list(dict.fromkeys(t for r in recs for _, t in r.tokens))


def _scalar(i: int) -> bytes:
    return i.to_bytes(32, "little")


def _attack(agencies, running, tokens: list[bytes]) -> tuple[set[bytes], int | None, list[str]]:
    """Blind token i with a·(i+1)⁻¹, play the session to its end, attribute every reply received."""
    a = ecdh.new_key()
    keys = [rbcl.crypto_core_ristretto255_scalar_mul(a, ecdh.invert_key(_scalar(i + 1))) for i in range(len(tokens))]
    blinded = [ecdh.blind_tokens(k, [t])[0] for k, t in zip(keys, tokens, strict=True)]
    setup_ready: queue.Queue = queue.Queue()
    fp = agencies.requester_config().key_spec().fingerprint()
    hello = pb.Hello(protocol="ecdh", key_spec_fingerprint=fp, request_size=len(tokens), reveal="cardinality",
                     norm_conformance_digest=norm_digest())
    if NEW_WIRE:
        hello.wire_version = 2

    def requests():
        yield pb.MatchRequest(hello=hello)
        yield pb.MatchRequest(blinded=pb.ElementChunk(offset=0, elements=blinded))
        yield pb.MatchRequest(finish=pb.Finish(elements_sent=len(tokens)))
        if NEW_WIRE:  # play the rest of the session honestly, to get the count
            setup = setup_ready.get(timeout=10)
            again = sorted(ecdh.evaluate(a, setup))
            yield pb.MatchRequest(reblinded=pb.ElementChunk(offset=0, elements=again))

    cfg = agencies.requester_config()
    tls = TlsFiles.load(cfg.tls.cert, cfg.tls.key, cfg.tls.ca)
    creds = grpc.ssl_channel_credentials(tls.ca, tls.key, tls.cert)
    tags: list[bytes] = []
    replies: list[bytes] = []
    kinds: list[str] = []
    count = None
    size = None
    with grpc.secure_channel(f"127.0.0.1:{running.port}", creds,
                             options=[("grpc.ssl_target_name_override", "agency-a")]) as ch:
        for resp in pb_grpc.ResponderStub(ch).Match(requests(), timeout=20):
            kind = resp.WhichOneof("kind")
            kinds.append(kind)
            if kind == "accepted":
                size, tag_len = resp.accepted.setup_size, resp.accepted.tag_length
            elif kind == "setup":
                tags.extend(resp.setup.tags)
                if len(tags) == size:
                    setup_ready.put(tags)
            elif kind == "evaluated":
                replies.extend(resp.evaluated.elements)
            elif kind == "summary":
                count = resp.summary.hit_count
    # Attribution: unblind each reply with every element's key inverse, look the result up.
    known = set(tags)
    found: set[bytes] = set()
    inverses = [ecdh.invert_key(k) for k in keys]
    for z in replies:
        for i, inv in enumerate(inverses):
            p = ecdh.unblind(inv, [z])[0]
            if p in known or ecdh.derive_tags([p], tag_len)[0] in known:
                found.add(tokens[i])
    return found, count, kinds


def test_a_requester_blinding_each_element_differently_learns_no_hitting_token(agencies, start):
    _cardinality(agencies)
    running = start()
    tokens = _requester_tokens(agencies)
    found, count, kinds = _attack(agencies, running, tokens)
    assert found == set()  # on the old protocol: exactly the 25 hitting tokens
    assert "evaluated" not in kinds
    # only element 0 was blinded with a itself: the count says nothing about the others
    assert count in (0, 1)


def test_cardinality_counts_the_hits_and_the_responder_logs_the_count(agencies, start):
    _cardinality(agencies)
    running = start()
    run = run_match(agencies.requester_config(), agencies.workdir / "agency_b_records.csv",
                    f"127.0.0.1:{running.port}", out=None)
    assert run.result.hits == [] and run.result.hit_count == 25
    running.stop(grace=0)
    end = [r for r in session_log.rows(agencies.workdir / "agency_a_state" / "sessions.db") if r["event"] == "end"]
    assert end[-1]["hit_count"] == 25 and end[-1]["outcome"] == "OK"


def test_the_session_needs_the_whole_reblinded_setup(agencies, start):
    _cardinality(agencies)
    running = start()
    tokens = _requester_tokens(agencies)[:3]
    fp = agencies.requester_config().key_spec().fingerprint()
    a = ecdh.new_key()
    msgs = [
        pb.MatchRequest(hello=pb.Hello(norm_conformance_digest=norm_digest(), protocol="ecdh",
                                       key_spec_fingerprint=fp, request_size=3,
                                       reveal="cardinality", wire_version=2)),
        pb.MatchRequest(blinded=pb.ElementChunk(offset=0, elements=ecdh.blind_tokens(a, tokens))),
        pb.MatchRequest(finish=pb.Finish(elements_sent=3)),
        pb.MatchRequest(reblinded=pb.ElementChunk(offset=0, elements=ecdh.blind_tokens(a, [b"one"]))),
    ]
    from tests.test_e2e import _raw_session

    with pytest.raises(grpc.RpcError) as rpc:
        _raw_session(agencies, running, msgs)
    assert rpc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "re-blinded setup must follow Finish" in rpc.value.details()


def test_count_matches_counts_each_evaluated_point_once():
    b, a = ecdh.new_key(), ecdh.new_key()
    evaluated = set(ecdh.evaluate(b, ecdh.blind_tokens(a, [b"x", b"y", b"z"])))
    returned = ecdh.evaluate(a, ecdh.blind_tokens(b, [b"y", b"w"]))
    assert ecdh_reveal.count_matches(evaluated, returned + returned[:1]) == 1  # a repeat is not counted again
    with pytest.raises(InvalidElement, match="32-byte"):
        ecdh_reveal.count_matches(evaluated, [b"short"])
