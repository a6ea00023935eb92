"""Both session machines against each other in one process, without gRPC.

The responder machine (matcher.sessions.responder) runs on a real ResponderState over
the demo watchlist; the requester machine (matcher.sessions.requester) drives the real
requester halves (clients.sessions) over the demo records. Messages go from one to the
other by hand: what the gRPC servicer and client do, minus the transport. The
end-to-end suite (tests/test_e2e.py and friends) covers the same sessions over mTLS.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator

import pytest

from clients.sessions import REQUESTER_SESSIONS
from matcher.config import ResponderConfig
from matcher.errors import ProtocolViolation, ResponderMisbehaved
from matcher.identity.conformance import conformance
from matcher.identity.records import load_records
from matcher.requester import session_options
from matcher.server.responder import load_watchlist
from matcher.server.state import ResponderState
from matcher.sessions.limits import WIRE_VERSION
from matcher.sessions.requester import RequesterMachine
from matcher.sessions.responder import ResponderMachine, policy
from matcher.v1 import matcher_pb2 as pb
from tests.conftest import demo_token_overlap
from tests.test_e2e import EXPECTED_DEMO

SECRET = b"0123456789abcdef" * 4
CHUNK = 3  # small chunks: every session crosses several chunk boundaries
PAILLIER_CHUNK = 48  # whole bins of the paillier query (degree 12 on the demo data) per chunk


def _configure(agencies, protocol: str, reveal: str) -> None:
    agencies.edit("responder", 'protocols = ["ecdh"]', f'protocols = ["{protocol}"]')
    agencies.edit("responder", 'reveal = "requester"', f'reveal = "{reveal}"')
    agencies.edit("requester", 'protocol = "ecdh"', f'protocol = "{protocol}"')
    agencies.edit("requester", 'reveal = "requester"', f'reveal = "{reveal}"')
    if protocol == "keyed-hash":
        secret = agencies.workdir / "kh.secret"
        secret.write_bytes(SECRET + b"\n")
        secret.chmod(0o600)
        for path in (agencies.responder_toml, agencies.requester_toml):
            with path.open("a", encoding="utf-8") as fh:
                fh.write('\n[keyed_hash]\nallow_keyed_hash = true  # outsiders only\nsecret_file = "kh.secret"\n')


@pytest.fixture
def pair(agencies):
    """(responder state, requester machine factory) for one protocol and reveal mode; the state is closed after."""
    made: list[ResponderState] = []

    def make(protocol: str, reveal: str) -> tuple[ResponderState, RequesterMachine]:
        _configure(agencies, protocol, reveal)
        cfg = agencies.responder_config()
        cfg = ResponderConfig.model_validate(
            cfg.model_dump() | {"responder": cfg.responder.model_dump() | {"workers": 1, "session_log": None}})
        state = ResponderState(cfg, load_watchlist(cfg))
        made.append(state)
        req = agencies.requester_config()
        keyspec = req.key_spec()
        records = load_records(agencies.workdir / "agency_b_records.csv", req.records.csv_format(), keyspec).records
        options = session_options(req) | ({"key_bits": 2048} if protocol == "paillier" else {})
        half = REQUESTER_SESSIONS[protocol](records, keyspec, reveal, **options)
        half.use_policy(policy(state), "responder")
        norm = conformance(keyspec.norm_version)
        hello = pb.Hello(protocol=protocol, key_spec_fingerprint=keyspec.fingerprint(), reveal=reveal,
                         wire_version=WIRE_VERSION, norm_conformance_digest=norm.digest,
                         norm_libraries=norm.libraries)
        return state, RequesterMachine(half, hello, PAILLIER_CHUNK if protocol == "paillier" else CHUNK)

    yield make
    for state in made:
        state.close()


def _deliver(responses: Iterator[pb.MatchResponse], requester: RequesterMachine) -> None:
    for response in responses:
        requester.receive(response)


def _converse(responder: ResponderMachine, requester: RequesterMachine) -> None:
    """One whole session: the requester's stream in order, every answer handed back at once."""
    requests = requester.requests()
    responder.on_hello(next(requests))
    _deliver(responder.accept("s-1", "agency-b"), requester)
    for request in [*requests]:
        _deliver(responder.receive(request), requester)
    if requester.wants_tail:
        tail = requester.take_tail()
        assert tail, "the requester's tail is ready once every reply has arrived"
        for request in tail:
            _deliver(responder.receive(request), requester)
    responder.stream_ended()  # a complete session ends quietly
    assert responder.done and requester.done


SESSIONS = [("ecdh", "requester"), ("ecdh", "cardinality"), ("ecdh", "both"),
            ("keyed-hash", "requester"), ("keyed-hash", "cardinality"), ("keyed-hash", "both"),
            ("paillier", "requester"), ("paillier", "cardinality")]


@pytest.mark.parametrize(("protocol", "reveal"), SESSIONS, ids=[f"{p}-{r}" for p, r in SESSIONS])
def test_the_two_machines_complete_a_session_without_a_transport(pair, agencies, protocol, reveal):
    state, requester = pair(protocol, reveal)
    responder = ResponderMachine(state)
    _converse(responder, requester)
    result = requester.result()
    assert responder.received == requester.half.request_size
    if reveal == "cardinality":
        assert result.hit_count == demo_token_overlap(agencies)[0]
        assert result.hits == []
    else:
        assert {h.record_id: (h.match_keys, h.case_ref) for h in result.hits} == EXPECTED_DEMO
    if reveal == "both":  # the responder learnt its own hits and wrote them to its hits file
        with state.hits_file.open(encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        assert rows and {r["session_id"] for r in rows} == {"s-1"}
        assert responder.hit_count == demo_token_overlap(agencies)[0]  # the tokens it learnt


def _accepted(pair, protocol: str = "ecdh", reveal: str = "requester"):
    state, requester = pair(protocol, reveal)
    responder = ResponderMachine(state)
    requests = requester.requests()
    responder.on_hello(next(requests))
    _deliver(responder.accept("s-1", "agency-b"), requester)
    return responder, requester, list(requests)


@pytest.mark.parametrize("reveal", ["requester", "cardinality"])
def test_the_messages_filled_in_place_are_those_the_constructors_make(pair, reveal):
    # The setup chunks, the replies and the requester's chunks are filled with extend()
    # rather than passed to the constructors: the same bytes on the wire.
    state, requester = pair("ecdh", reveal)
    responder = ResponderMachine(state)
    requests = requester.requests()
    responder.on_hello(next(requests))
    opening = list(responder.accept("s-1", "agency-b"))
    setup = state.current().setup
    chunks = [m.setup for m in opening if m.WhichOneof("kind") == "setup"]
    assert chunks and sum(len(c.tags) for c in chunks) == len(setup)
    at = 0
    for m in opening[1:]:
        n = len(m.setup.tags)
        labels = [] if reveal == "cardinality" else setup.labels[at : at + n]
        plain = pb.MatchResponse(setup=pb.SetupChunk(tags=setup.tags[at : at + n], labels=labels))
        assert m.SerializeToString() == plain.SerializeToString()
        at += n
    offset = 0
    for request in requests:
        if request.WhichOneof("kind") != "blinded":
            continue
        elements = list(request.blinded.elements)
        plain_request = pb.MatchRequest(blinded=pb.ElementChunk(offset=offset, elements=elements))
        assert request.SerializeToString() == plain_request.SerializeToString()
        offset += len(elements)
        for reply in responder.receive(request):
            got = reply.evaluated
            plain_reply = pb.MatchResponse(evaluated=pb.ElementChunk(offset=got.offset, elements=list(got.elements)))
            assert reply.WhichOneof("kind") == "evaluated" and got.elements
            assert reply.SerializeToString() == plain_reply.SerializeToString()


def test_a_chunk_out_of_order_is_refused(pair):
    responder, _, requests = _accepted(pair)
    first = requests[0].blinded
    skipped = pb.MatchRequest(blinded=pb.ElementChunk(offset=1, elements=first.elements))
    with pytest.raises(ProtocolViolation, match="chunk offset 1 out of order; expected 0"):
        list(responder.receive(skipped))


def test_more_elements_than_announced_are_refused(pair):
    responder, _, requests = _accepted(pair)
    chunks = [r for r in requests if r.WhichOneof("kind") == "blinded"]
    for request in chunks:
        list(responder.receive(request))
    repeat = [chunks[0].blinded.elements[0]]
    extra = pb.MatchRequest(blinded=pb.ElementChunk(offset=responder.received, elements=repeat))
    with pytest.raises(ProtocolViolation, match="more elements than announced in Hello"):
        list(responder.receive(extra))


def test_a_repeated_element_is_refused(pair):
    responder, _, requests = _accepted(pair)
    first = requests[0].blinded
    list(responder.receive(requests[0]))
    again = pb.MatchRequest(blinded=pb.ElementChunk(offset=len(first.elements), elements=[first.elements[0]]))
    with pytest.raises(ProtocolViolation, match=f"element {len(first.elements)} repeats an earlier element"):
        list(responder.receive(again))


def test_a_stream_without_finish_is_refused(pair):
    responder, _, requests = _accepted(pair)
    for request in requests[:-1]:  # every chunk, no Finish
        list(responder.receive(request))
    with pytest.raises(ProtocolViolation, match="the stream ended before Finish"):
        responder.stream_ended()


def test_finish_before_the_announced_elements_is_refused(pair):
    responder, _, requests = _accepted(pair)
    list(responder.receive(requests[0]))
    with pytest.raises(ProtocolViolation, match=r"Finish after \d+ elements, but \d+ were announced"):
        list(responder.receive(pb.MatchRequest(finish=pb.Finish(elements_sent=responder.received))))


def test_a_session_must_start_with_a_hello(pair):
    state, requester = pair("ecdh", "requester")
    requests = requester.requests()
    next(requests)
    with pytest.raises(ProtocolViolation, match="must start with a Hello"):
        ResponderMachine(state).on_hello(next(requests))


def test_reveal_both_without_the_hit_report_is_refused(pair):
    responder, requester, requests = _accepted(pair, "ecdh", "both")
    for request in requests:
        _deliver(responder.receive(request), requester)
    assert responder.awaiting_tail and not responder.done
    with pytest.raises(ProtocolViolation, match="a HitReport must follow Finish"):
        responder.stream_ended()


def test_the_requester_needs_accepted_first(pair):
    _, requester = pair("ecdh", "requester")
    with pytest.raises(ProtocolViolation, match="did not accept the session"):
        requester.receive(pb.MatchResponse(summary=pb.Summary()))


def test_the_requester_needs_a_summary_last(pair):
    responder, requester, requests = _accepted(pair)
    for request in requests[:-1]:  # the replies to every chunk, but no Finish and so no Summary
        _deliver(responder.receive(request), requester)
    with pytest.raises(ProtocolViolation, match="closed the session before its summary"):
        requester.stream_ended()
    with pytest.raises(ProtocolViolation, match="no result before the responder's summary"):
        requester.result()


def test_the_requester_refuses_replies_out_of_order(pair):
    responder, requester, requests = _accepted(pair)
    replies = [r for r in responder.receive(requests[0]) if r.WhichOneof("kind") == "evaluated"]
    assert replies
    shifted = pb.MatchResponse(evaluated=pb.ElementChunk(offset=1, elements=replies[0].evaluated.elements))
    with pytest.raises(ProtocolViolation, match="reply chunk offset 1 out of order; expected 0"):
        requester.receive(shifted)


class _RecordingWorkers:
    """The requester's kernel pool, recording when each reply chunk's unblinding is started and when it is taken."""

    def __init__(self, workers, events: list[tuple[str, int]]) -> None:
        self._workers, self.events, self.size = workers, events, workers.size

    def submit_split(self, fn, head, items, offset=None, **kw):
        self.events.append(("start", offset))
        events = self.events

        class _Later:
            def result(self):
                events.append(("take", offset))
                return fn(*head, items, offset)

        return _Later()

    def __getattr__(self, name):
        return getattr(self._workers, name)


def test_a_reply_chunk_is_unblinded_while_the_next_one_is_read(pair, agencies):
    # The requester starts a reply chunk's unblinding and looks up the chunk before it meanwhile:
    # chunk i's result is taken only after chunk i+1's unblinding has started (the kernel threads
    # are never idle while this thread does a chunk's Python), and the last chunk at once, so the
    # hits are complete when the Summary comes.
    responder, requester, requests = _accepted(pair)
    events: list[tuple[str, int]] = []
    requester.half._workers = _RecordingWorkers(requester.half._workers, events)
    for request in requests:
        _deliver(responder.receive(request), requester)
    assert requester.done
    starts = [off for what, off in events if what == "start"]
    assert len(starts) > 3 and starts == sorted(starts)
    for i, off in enumerate(starts[:-1]):
        taken = events.index(("take", off))
        assert taken > events.index(("start", starts[i + 1])), f"chunk at {off} taken before the next was started"
    assert events[-2:] == [("take", starts[-2]), ("take", starts[-1])], "the last chunks are taken with the last reply"
    assert {h.record_id: (h.match_keys, h.case_ref) for h in requester.result().hits} == EXPECTED_DEMO


def test_an_invalid_reply_point_fails_the_session_before_its_summary_naming_the_element(pair):
    # The unblinding of a chunk is finished while the next one is read: a reply that is not a
    # point is still reported with its position in the session (also behind a check element of
    # its chunk, which the kernel does not count), and the Summary is never taken.
    for behind_a_check in (True, False):
        responder, requester, requests = _accepted(pair)
        checks = set(requester.half._canary_at)
        targets = [q for q in range(requester.half.request_size) if q not in checks
                   and any(c in checks for c in range(q - q % CHUNK, q)) == behind_a_check]
        assert targets, "the demo session has elements both behind a check element of their chunk and not"
        target = targets[0]
        tampered = False
        with pytest.raises(ResponderMisbehaved, match=rf"not a valid point \(element {target} is not a valid"):
            for request in requests:
                for response in responder.receive(request):
                    chunk = response.evaluated
                    if response.WhichOneof("kind") == "evaluated" and chunk.offset <= target < chunk.offset + len(
                            chunk.elements):
                        chunk.elements[target - chunk.offset] = b"\xff" * 32
                        tampered = True
                    requester.receive(response)
        assert tampered and not requester.done
