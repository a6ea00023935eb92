"""reveal = "both": the responder learns exactly its own hit records, and only ones it can verify."""

from __future__ import annotations

import csv
import queue
import stat

import grpc
import pytest

from clients import TlsFiles
from matcher.errors import InvalidElement
from matcher.protocols import ecdh, ecdh_reveal
from matcher.requester import run_match
from matcher.storage import session_log
from matcher.v1 import matcher_pb2 as pb
from matcher.v1 import matcher_pb2_grpc as pb_grpc
from tests.conftest import demo_token_overlap
from tests.test_e2e import EXPECTED_DEMO, _hello, _raw_session


def _both(agencies):
    agencies.edit("responder", 'reveal = "requester"', 'reveal = "both"')
    agencies.edit("requester", 'reveal = "requester"', 'reveal = "both"')


def _match(agencies, running, out=None):
    return run_match(agencies.requester_config(), agencies.workdir / "agency_b_records.csv",
                     f"127.0.0.1:{running.port}", out=out)


def test_both_gives_the_requester_its_hits_and_the_responder_exactly_its_hit_records(agencies, start):
    _both(agencies)
    running = start()
    run = _match(agencies, running, out=agencies.workdir / "hits.csv")
    assert {h.record_id: (h.match_keys, h.case_ref) for h in run.result.hits} == EXPECTED_DEMO
    running.stop(grace=0)
    hits_file = agencies.workdir / "agency_a_state" / "responder_hits.csv"
    assert stat.S_IMODE(hits_file.stat().st_mode) == 0o600
    rows = list(csv.DictReader(hits_file.open(encoding="utf-8")))
    assert {r["case_ref"] for r in rows} == {ref for _, ref in EXPECTED_DEMO.values()}
    assert {(r["case_ref"], r["match_key"]) for r in rows} == {
        (ref, k) for keys, ref in EXPECTED_DEMO.values() for k in keys
    }
    assert {r["session_id"] for r in rows} == {run.result.session_id} and {r["peer"] for r in rows} == {"agency-b"}
    end = [r for r in session_log.rows(agencies.workdir / "agency_a_state" / "sessions.db") if r["event"] == "end"]
    assert end[-1]["hit_count"] == demo_token_overlap(agencies)[0]
    assert end[-1]["reveal"] == "both" and end[-1]["outcome"] == "OK"
    assert (agencies.workdir / "hits.csv").exists()


def test_in_requester_mode_the_responder_learns_no_hits(agencies, start):
    running = start()
    _match(agencies, running)
    running.stop(grace=0)
    assert not (agencies.workdir / "agency_a_state" / "responder_hits.csv").exists()
    end = [r for r in session_log.rows(agencies.workdir / "agency_a_state" / "sessions.db") if r["event"] == "end"]
    assert end[-1]["hit_count"] is None


def _both_hello(agencies, size):
    msg = _hello(agencies, size=size)
    msg.hello.reveal = "both"
    return msg


def test_a_report_of_a_point_the_responder_does_not_hold_is_refused(agencies, start):
    _both(agencies)
    running = start()
    x = ecdh.blind_tokens(ecdh.new_key(), [b"t"])[0]
    forged = ecdh.blind_tokens(ecdh.new_key(), [b"someone"])[0]
    with pytest.raises(grpc.RpcError) as rpc:
        _raw_session(agencies, running, [
            _both_hello(agencies, 1),
            pb.MatchRequest(blinded=pb.ElementChunk(offset=0, elements=[x])),
            pb.MatchRequest(finish=pb.Finish(elements_sent=1)),
            pb.MatchRequest(hit_report=pb.HitReport(elements=[forged], indices=[0])),
        ])
    assert rpc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not one of this responder's entries" in rpc.value.details()
    with pytest.raises(grpc.RpcError) as rpc:
        _raw_session(agencies, running, [
            _both_hello(agencies, 1),
            pb.MatchRequest(blinded=pb.ElementChunk(offset=0, elements=[x])),
            pb.MatchRequest(finish=pb.Finish(elements_sent=1)),
        ])
    assert rpc.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "HitReport" in rpc.value.details()
    running.stop(grace=0)
    assert not (agencies.workdir / "agency_a_state" / "responder_hits.csv").exists()


def _evaluated_in_a_session(b, a, tokens):
    """(P = b·H(t), Z = b·a·H(t)) of each token, as one session gives them to a requester with key a."""
    evaluated = ecdh.evaluate(b, ecdh.blind_tokens(a, tokens))
    return [(ecdh.blind_tokens(b, [t])[0], z) for t, z in zip(tokens, evaluated, strict=True)]


def test_check_hit_report_accepts_only_own_points_evaluated_in_this_session():
    b, a = ecdh.new_key(), ecdh.new_key()
    setup = ecdh.responder_setup(b, [(b"t1", b"R1"), (b"t2", b"R2")], 8, keep_points=True)
    pairs = _evaluated_in_a_session(b, a, [b"t2", b"t3"])
    replies = [z for _, z in pairs]
    ctx = b"session-1"

    def check(points, indices, key=a, context=ctx, limit=2, reps=replies):
        proof = ecdh_reveal.prove_hits(key, [(p, reps[i]) for p, i in zip(points, indices, strict=True)], context)
        return ecdh_reveal.check_hit_report(setup, points, limit, indices, proof, reps, ctx)

    own = pairs[0][0]
    assert check([own], [0]) == [b"t2"]
    assert check([], []) == []
    with pytest.raises(InvalidElement, match="not one of"):
        check([pairs[1][0]], [1])  # evaluated, but not held
    with pytest.raises(InvalidElement, match="repeated"):
        check([own, own], [0, 1])
    with pytest.raises(InvalidElement, match="more than"):
        check([own, pairs[1][0]], [0, 1], limit=1)
    with pytest.raises(InvalidElement, match="identity"):
        ecdh_reveal.check_hit_report(setup, [bytes(32)], 2, [0], b"", replies, ctx)
    with pytest.raises(InvalidElement, match="did not send"):
        ecdh_reveal.check_hit_report(setup, [own], 2, [2], b"", replies, ctx)
    # bound to the session: another context, another key, another element's reply
    for bad in (dict(context=b"session-2"), dict(key=ecdh.new_key())):
        with pytest.raises(InvalidElement, match="not evaluated in this session"):
            check([own], [0], **bad)
    with pytest.raises(InvalidElement, match="not evaluated in this session"):
        check([own], [1])
    # a point learnt in an earlier session (other key a'), reported against this session's reply
    earlier = _evaluated_in_a_session(b, ecdh.new_key(), [b"t2"])[0][0]
    assert earlier == own  # b·H(t2) is the same in every session: only the proof tells them apart
    proof = ecdh_reveal.prove_hits(a, [(own, replies[1])], ctx)
    with pytest.raises(InvalidElement, match="not evaluated in this session"):
        ecdh_reveal.check_hit_report(setup, [own], 2, [1], proof, replies, ctx)
    with pytest.raises(InvalidElement, match="not evaluated in this session"):
        ecdh_reveal.check_hit_report(setup, [own], 2, [0], b"", replies, ctx)


def test_a_hit_report_of_points_from_another_session_is_refused(agencies, start):
    """A requester that learnt b·H(y) in one session cannot report it in a later one."""
    _both(agencies)
    running = start()
    cfg = agencies.responder_config()
    from matcher.identity.records import load_records

    held = load_records(cfg.responder.watchlist, cfg.records.csv_format(), cfg.key_spec(),
                        require_case_ref=True).records[0].tokens[0][1]
    a1, a2 = ecdh.new_key(), ecdh.new_key()

    def session(a, token, report):
        replies: queue.Queue = queue.Queue()

        def requests():
            yield _both_hello(agencies, 1)
            yield pb.MatchRequest(blinded=pb.ElementChunk(offset=0, elements=ecdh.blind_tokens(a, [token])))
            yield pb.MatchRequest(finish=pb.Finish(elements_sent=1))
            yield pb.MatchRequest(hit_report=report(*replies.get(timeout=10)))

        cfg_r = agencies.requester_config()
        tls = TlsFiles.load(cfg_r.tls.cert, cfg_r.tls.key, cfg_r.tls.ca)
        creds = grpc.ssl_channel_credentials(tls.ca, tls.key, tls.cert)
        with grpc.secure_channel(f"127.0.0.1:{running.port}", creds,
                                 options=[("grpc.ssl_target_name_override", "agency-a")]) as ch:
            sid = None
            out = []
            for resp in pb_grpc.ResponderStub(ch).Match(requests(), timeout=10):
                kind = resp.WhichOneof("kind")
                if kind == "accepted":
                    sid = resp.accepted.session_id
                elif kind == "evaluated":
                    replies.put((sid, resp.evaluated.elements[0]))
                out.append(resp)
            return out

    learnt = []

    def honest(sid, z):
        p = ecdh.unblind(ecdh.invert_key(a1), [z])[0]
        learnt.append(p)
        return pb.HitReport(elements=[p], indices=[0], proof=ecdh_reveal.prove_hits(
            a1, [(p, z)], ecdh_reveal.hit_proof_context(sid)))

    assert session(a1, held, honest)[-1].summary.hit_count == 1

    def replayed(sid, z):  # session 2 asks about someone else, then reports the earlier hit
        return pb.HitReport(elements=learnt, indices=[0], proof=ecdh_reveal.prove_hits(
            a2, [(learnt[0], z)], ecdh_reveal.hit_proof_context(sid)))

    with pytest.raises(grpc.RpcError) as rpc:
        session(a2, b"matcher/v1/n1/document/NOBODY", replayed)
    assert rpc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not evaluated in this session" in rpc.value.details()
    running.stop(grace=0)
    rows = list(csv.DictReader((agencies.workdir / "agency_a_state" / "responder_hits.csv").open(encoding="utf-8")))
    assert len({r["session_id"] for r in rows}) == 1  # only the first session's hit is on file
