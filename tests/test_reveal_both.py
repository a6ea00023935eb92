"""reveal = "both": the responder learns exactly its own hit records, and only ones it can verify."""

from __future__ import annotations

import csv
import stat

import grpc
import pytest

from matcher.storage import session_log
from matcher.errors import InvalidElement
from matcher.protocols import ecdh
from matcher.requester import run_match
from matcher.v1 import matcher_pb2 as pb
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
    assert end[-1]["hit_count"] == demo_token_overlap(agencies)[0] and end[-1]["reveal"] == "both" and end[-1]["outcome"] == "OK"
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
            pb.MatchRequest(hit_report=pb.HitReport(elements=[forged])),
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


def test_check_hit_report_accepts_only_own_evaluated_points():
    b = ecdh.new_key()
    setup = ecdh.responder_setup(b, [(b"t1", b"R1"), (b"t2", b"R2")], 8, keep_points=True)
    own = ecdh.blind_tokens(b, [b"t2"])
    assert ecdh.check_hit_report(setup, own, limit=1) == [b"t2"]
    with pytest.raises(InvalidElement, match="not one of"):
        ecdh.check_hit_report(setup, ecdh.blind_tokens(b, [b"t3"]), limit=5)  # evaluated, but not held
    with pytest.raises(InvalidElement, match="repeated"):
        ecdh.check_hit_report(setup, own + own, limit=5)
    with pytest.raises(InvalidElement, match="more than"):
        ecdh.check_hit_report(setup, ecdh.blind_tokens(b, [b"t1", b"t2"]), limit=1)
    with pytest.raises(InvalidElement, match="identity"):
        ecdh.check_hit_report(setup, [bytes(32)], limit=1)
