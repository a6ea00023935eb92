"""A dishonest responder, over real mutual TLS, against the unmodified requester (`run_match`).

The responder's service is the real one with its replies rewritten on the way out:
permuted within a chunk, repeated, substituted, or replayed from an earlier session.
Whatever it does, no reply is ever a hit: the session fails with ResponderMisbehaved,
no hits file is written, and the requester's session log records RESPONDER_MISBEHAVED.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import pytest

from matcher.errors import ResponderMisbehaved
from matcher.protocols import ecdh, label_backend
from matcher.requester import run_match
from matcher.server.responder import load_watchlist, read_tls
from matcher.server.service import ResponderServicer, build_server
from matcher.server.state import ResponderState
from matcher.storage import session_log
from matcher.v1 import matcher_pb2 as pb
from tests.test_e2e import EXPECTED_DEMO

Tamper = Callable[[list[bytes], int], list[bytes]]


class TamperingServicer(ResponderServicer):
    """The real service, with every chunk of replies passed through ``tamper(replies, session_number)``."""

    def __init__(self, state: ResponderState, tamper: Tamper, summary=None) -> None:
        super().__init__(state)
        self.tamper = tamper
        self.summary = summary
        self.sessions = 0

    def Match(self, request_iterator, context):  # noqa: N802 - the gRPC method's name
        self.sessions += 1
        number = self.sessions
        for resp in super().Match(request_iterator, context):
            if resp.WhichOneof("kind") == "evaluated":
                chunk = resp.evaluated
                resp = pb.MatchResponse(evaluated=pb.ElementChunk(
                    offset=chunk.offset, elements=self.tamper(list(chunk.elements), number)))
            elif resp.WhichOneof("kind") == "summary" and self.summary is not None:
                resp = pb.MatchResponse(summary=self.summary(resp.summary))
            yield resp


@pytest.fixture(autouse=True, params=["c-opener", "python-opener"])
def opener(request, monkeypatch):
    """Every case with the requester's labels opened in C (when built) and in Python: the same verdicts.

    Yields the number of C opener calls so far (a list), to show the C path was the one taken."""
    calls: list[int] = []
    if request.param == "python-opener":
        monkeypatch.setattr(label_backend, "OPEN", None)
    elif label_backend.OPEN is None:
        pytest.skip(f"C label opener not in use here: {label_backend.DETAIL}")
    else:
        real = label_backend.OPEN
        monkeypatch.setattr(label_backend, "OPEN", SimpleNamespace(
            open_labels=lambda *a: calls.append(1) or real.open_labels(*a)))
    yield calls


@pytest.fixture
def hostile(agencies):
    """Start a responder whose replies go through a tamper function; the requester logs its sessions."""
    agencies.edit("requester", 'reveal = "requester"', 'reveal = "requester"\nsession_log = "agency_b_sessions.db"')
    servers = []

    def _start(tamper: Tamper, summary=None):
        config = agencies.responder_config()
        state = ResponderState(config, load_watchlist(config))
        servicer = TamperingServicer(state, tamper, summary)
        server, port, _ = build_server(servicer, "127.0.0.1:0", read_tls(config))
        server.start()
        servers.append((server, state))
        return port

    yield _start
    for server, state in servers:
        server.stop(0).wait()
        state.close()


def _match(agencies, port, out):
    return run_match(agencies.requester_config(), agencies.workdir / "agency_b_records.csv",
                     f"127.0.0.1:{port}", out=out)


def _requester_ends(agencies) -> list[dict]:
    return [r for r in session_log.rows(agencies.workdir / "agency_b_sessions.db") if r["event"] == "end"]


def _rotate(replies: list[bytes], _n: int) -> list[bytes]:
    return replies[1:] + replies[:1]


def _repeat(replies: list[bytes], _n: int) -> list[bytes]:
    return [replies[0]] * len(replies)


def _random_points(replies: list[bytes], _n: int) -> list[bytes]:
    return ecdh.blind_tokens(ecdh.new_key(), [b"substitute-%d" % i for i in range(len(replies))])


def _own_evaluation(replies: list[bytes], _n: int) -> list[bytes]:
    # b·(b·a·H(x)): the responder's key applied twice, a point derived from the right one
    return ecdh.evaluate(ecdh.new_key(), replies)


def _swap_pairs(replies: list[bytes], _n: int) -> list[bytes]:
    out = list(replies)
    for i in range(0, len(out) - 1, 2):
        out[i], out[i + 1] = out[i + 1], out[i]
    return out


CASES = {
    "permuted within the chunk": _rotate,
    "neighbours swapped": _swap_pairs,
    "one reply repeated for all": _repeat,
    "substituted by random points": _random_points,
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_responder_that_rewrites_replies_makes_no_hit_and_is_blamed(agencies, hostile, case):
    port = hostile(CASES[case])
    out = agencies.workdir / "hits.csv"
    with pytest.raises(ResponderMisbehaved, match="responder"):
        _match(agencies, port, out)
    assert not out.exists()
    (end,) = _requester_ends(agencies)
    assert end["outcome"] == "RESPONDER_MISBEHAVED" and "responder" in end["detail"]
    assert end["hit_count"] is None


def test_a_responder_evaluating_under_another_key_can_only_withhold_hits(agencies, hostile):
    """Every reply under one other key is a consistent evaluation, just not of the setup's key:
    like a responder that holds nobody. No hit, and nothing false (the security model says so)."""
    port = hostile(_own_evaluation)
    out = agencies.workdir / "hits.csv"
    run = _match(agencies, port, out)
    assert run.result.hits == [] and out.read_text(encoding="utf-8").count("\n") == 1


def test_replies_replayed_from_an_earlier_session_make_no_hit_and_are_blamed(agencies, hostile):
    recorded: list[list[bytes]] = []

    def replay(replies: list[bytes], session: int) -> list[bytes]:
        if session == 1:
            recorded.append(replies)
            return replies
        return recorded[len(recorded) - 1]  # the demo's request is one chunk

    port = hostile(replay)
    honest = _match(agencies, port, None)
    assert {h.record_id for h in honest.result.hits} == set(EXPECTED_DEMO)
    out = agencies.workdir / "hits.csv"
    with pytest.raises(ResponderMisbehaved, match="another session"):
        _match(agencies, port, out)
    assert not out.exists()
    ends = _requester_ends(agencies)
    assert [e["outcome"] for e in ends] == ["OK", "RESPONDER_MISBEHAVED"]


def test_an_honest_responder_passes_every_check(agencies, hostile, opener, request):
    port = hostile(lambda replies, _n: replies)
    run = _match(agencies, port, agencies.workdir / "hits.csv")
    assert {h.record_id: (h.match_keys, h.case_ref) for h in run.result.hits} == EXPECTED_DEMO
    assert bool(opener) == ("c-opener" in request.node.name)
    assert [e["outcome"] for e in _requester_ends(agencies)] == ["OK"]


def test_in_both_mode_a_summary_that_does_not_confirm_the_reported_hits_fails(agencies, hostile):
    agencies.edit("responder", 'reveal = "requester"', 'reveal = "both"')
    agencies.edit("requester", 'reveal = "requester"', 'reveal = "both"')

    def understate(summary: pb.Summary) -> pb.Summary:
        return pb.Summary(elements_evaluated=summary.elements_evaluated, hit_count=summary.hit_count - 1)

    port = hostile(lambda replies, _n: replies, understate)
    out = agencies.workdir / "hits.csv"
    with pytest.raises(ResponderMisbehaved, match="confirmed 24 of the 25 reported hits"):
        _match(agencies, port, out)
    assert not out.exists()
    assert [e["outcome"] for e in _requester_ends(agencies)] == ["RESPONDER_MISBEHAVED"]
