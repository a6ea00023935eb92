"""Hostile and broken peers over real mutual TLS: every misbehaviour ends with a precise
status code and message, is written to the session log with that outcome, and the
server keeps serving other peers meanwhile.

(tests/test_e2e.py covers the basic cases: Finish first, more elements than announced,
offset out of order, Finish short, request over the limit, unknown protocol, a stream
ended before Finish, three kinds of bad point. This file covers the rest.)
"""

from __future__ import annotations

import threading
import time

import grpc
import pytest

from clients import TlsFiles
from matcher.protocols import ecdh
from matcher.requester import run_match
from matcher.storage import session_log
from matcher.v1 import matcher_pb2 as pb
from matcher.v1 import matcher_pb2_grpc as pb_grpc
from tests.conftest import norm_digest
from tests.test_e2e import EXPECTED_DEMO, _hello

P = ecdh.POINT_BYTES


def _channel(agencies, running, *options):
    cfg = agencies.requester_config()
    tls = TlsFiles.load(cfg.tls.cert, cfg.tls.key, cfg.tls.ca)
    creds = grpc.ssl_channel_credentials(tls.ca, tls.key, tls.cert)
    return grpc.secure_channel(f"127.0.0.1:{running.port}", creds,
                               options=[("grpc.ssl_target_name_override", "agency-a"),
                                        ("grpc.max_send_message_length", 64 << 20), *options])


def _session(agencies, running, messages, timeout: float | None = 20):
    with _channel(agencies, running) as ch:
        return list(pb_grpc.ResponderStub(ch).Match(iter(messages), timeout=timeout))


def _refused(agencies, running, messages, timeout: float | None = 20) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as rpc:
        _session(agencies, running, messages, timeout)
    return rpc.value


def _points(n: int) -> list[bytes]:
    return ecdh.blind_tokens(ecdh.new_key(), [b"tok-%d" % i for i in range(n)])


def _chunk(elements, offset=0):
    return pb.MatchRequest(blinded=pb.ElementChunk(offset=offset, elements=elements))


def _finish(n):
    return pb.MatchRequest(finish=pb.Finish(elements_sent=n))


def _end_rows(agencies, wait: float = 10.0, count: int = 1) -> list[dict]:
    """The session log's `end` rows once at least ``count`` are there (the server writes them as the call ends)."""
    db = agencies.workdir / "agency_a_state" / "sessions.db"
    deadline = time.monotonic() + wait
    while True:
        ends = [r for r in session_log.rows(db) if r["event"] == "end"] if db.exists() else []
        if len(ends) >= count or time.monotonic() > deadline:
            return ends
        time.sleep(0.05)


def _demo_match_works(agencies, running) -> None:
    run = run_match(agencies.requester_config(), agencies.workdir / "agency_b_records.csv",
                    f"127.0.0.1:{running.port}", out=None)
    assert {h.record_id for h in run.result.hits} == set(EXPECTED_DEMO)


def _valid_noncanonical() -> bytes:
    # p = 2^255 - 19 encoded little-endian: a field element >= p, never canonical
    return ((1 << 255) - 19).to_bytes(32, "little")


CASES = {
    "hello twice": (lambda a, g: [_hello(a, 2), _hello(a, 2)], grpc.StatusCode.INVALID_ARGUMENT,
                    "unexpected hello"),
    "chunk before hello": (lambda a, g: [_chunk(g[:1])], grpc.StatusCode.INVALID_ARGUMENT, "must start with a Hello"),
    "empty message": (lambda a, g: [_hello(a, 1), pb.MatchRequest()], grpc.StatusCode.INVALID_ARGUMENT,
                      "unexpected empty"),
    "hit report without reveal both": (
        lambda a, g: [_hello(a, 1), _chunk(g[:1]), pb.MatchRequest(hit_report=pb.HitReport())],
        grpc.StatusCode.INVALID_ARGUMENT, "unexpected hit_report"),
    "unknown protocol": (
        lambda a, g: [pb.MatchRequest(hello=pb.Hello(norm_conformance_digest=norm_digest(), protocol="rot13",
                                                     request_size=1, reveal="requester"))],
        grpc.StatusCode.FAILED_PRECONDITION, "'rot13' is not offered"),
    "other reveal mode": (
        lambda a, g: [pb.MatchRequest(hello=pb.Hello(norm_conformance_digest=norm_digest(),
            protocol="ecdh", request_size=1, reveal="cardinality",
            key_spec_fingerprint=a.requester_config().key_spec().fingerprint()))],
        grpc.StatusCode.FAILED_PRECONDITION, "reveal mode"),
    "over the peer's max_set_size": (lambda a, g: [_hello(a, 50_001)], grpc.StatusCode.RESOURCE_EXHAUSTED,
                                     "per session for peer agency-b"),
    "empty chunk": (lambda a, g: [_hello(a, 1), _chunk([])], grpc.StatusCode.INVALID_ARGUMENT, "chunk of 0 elements"),
    "chunk over max_chunk_elements": (lambda a, g: [_hello(a, 4097), _chunk(g * 4097)],
                                      grpc.StatusCode.INVALID_ARGUMENT, "allowed 1 to 4096"),
    "Finish lies about the count": (lambda a, g: [_hello(a, 1), _chunk(g[:1]), _finish(7)],
                                    grpc.StatusCode.INVALID_ARGUMENT, "announced"),
    "hello announces more than sent": (lambda a, g: [_hello(a, 3), _chunk(g[:2]), _finish(2)],
                                       grpc.StatusCode.INVALID_ARGUMENT, "but 3 were announced"),
    "empty element": (lambda a, g: [_hello(a, 2), _chunk([g[0], b""]), _finish(2)],
                      grpc.StatusCode.INVALID_ARGUMENT, "element 1 is not a 32-byte"),
    "element too long": (lambda a, g: [_hello(a, 1), _chunk([g[0] + b"\x00"]), _finish(1)],
                         grpc.StatusCode.INVALID_ARGUMENT, "element 0 is not a 32-byte"),
    "identity point": (lambda a, g: [_hello(a, 2), _chunk([g[0]]), _chunk([bytes(P)], 1), _finish(2)],
                       grpc.StatusCode.INVALID_ARGUMENT, "element 1"),
    "non-canonical encoding": (lambda a, g: [_hello(a, 1), _chunk([_valid_noncanonical()]), _finish(1)],
                               grpc.StatusCode.INVALID_ARGUMENT, "element 0 is not a valid ristretto255"),
    "encoding with bit 255 set": (lambda a, g: [_hello(a, 1), _chunk([g[0][:31] + bytes([g[0][31] | 0x80])]),
                                               _finish(1)],
                                  grpc.StatusCode.INVALID_ARGUMENT, "element 0 is not a valid ristretto255"),
    "same point twice in a chunk": (lambda a, g: [_hello(a, 2), _chunk([g[0], g[0]]), _finish(2)],
                                    grpc.StatusCode.INVALID_ARGUMENT, "element 1 repeats an earlier element"),
    "same point in two chunks": (lambda a, g: [_hello(a, 3), _chunk(g[:2]), _chunk([g[1]], 2), _finish(3)],
                                 grpc.StatusCode.INVALID_ARGUMENT, "element 2 repeats an earlier element"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_messages_get_a_precise_status_and_are_logged(agencies, start, case):
    build, code, words = CASES[case]
    running = start()
    err = _refused(agencies, running, build(agencies, _points(2)))
    assert err.code() == code, err.details()
    assert words in err.details()
    (end,) = _end_rows(agencies)
    assert end["outcome"] == code.name and end["status_code"] == code.value[0]
    assert words in end["detail"] and end["peer"] == "agency-b"
    assert session_log.verify(agencies.workdir / "agency_a_state" / "sessions.db").ok


# Paillier ciphertexts out of range (0, >= n², sharing a factor with n): tests/test_paillier.py
# test_bad_ciphertext_is_invalid_argument_and_server_keeps_serving.


def test_message_larger_than_the_limit_is_refused_and_logged(agencies, start):
    running = start()
    huge = pb.MatchRequest(blinded=pb.ElementChunk(offset=0, elements=[b"\x01" * (4 << 20)]))
    err = _refused(agencies, running, [_hello(agencies, 1), huge])
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "larger than max" in err.details()
    (end,) = _end_rows(agencies)
    assert end["outcome"] in ("CANCELLED", "RESOURCE_EXHAUSTED")  # gRPC drops the call before the service sees it
    _demo_match_works(agencies, running)


def test_truncated_stream_and_cancel_mid_session_are_logged_as_cancelled(agencies, start):
    running = start()
    gate = threading.Event()

    def requests():
        yield _hello(agencies, 10)
        yield _chunk(_points(2))
        gate.wait(10)  # keep the stream open; the client cancels meanwhile

    with _channel(agencies, running) as ch:
        call = pb_grpc.ResponderStub(ch).Match(requests(), timeout=20)
        kinds = [next(call).WhichOneof("kind")]
        call.cancel()
        gate.set()
    assert kinds == ["accepted"]
    (end,) = _end_rows(agencies)
    assert end["outcome"] == "CANCELLED" and "cancelled the session or disconnected" in end["detail"]
    _demo_match_works(agencies, running)


def test_a_peer_that_sends_nothing_is_cut_off_by_the_server_cap(agencies, start):
    agencies.edit("responder", "max_chunk_elements = 4096", "max_chunk_elements = 4096\nsession_timeout_seconds = 1.5")
    running = start()
    gate = threading.Event()

    def silent():
        yield _hello(agencies, 5)
        gate.wait(30)

    t0 = time.monotonic()
    err = _refused(agencies, running, silent(), timeout=None)  # no client deadline at all
    gate.set()
    assert 1.4 < time.monotonic() - t0 < 6
    assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "session_timeout_seconds" in err.details()
    (end,) = _end_rows(agencies)
    assert end["outcome"] == "DEADLINE_EXCEEDED"


def test_a_slow_sender_is_cut_off_while_others_are_served(agencies, start):
    agencies.edit("responder", "max_chunk_elements = 4096", "max_chunk_elements = 4096\nsession_timeout_seconds = 3")
    running = start()
    points = _points(40)
    outcome: list[grpc.RpcError] = []

    def slow():
        yield _hello(agencies, 40)
        for i, p in enumerate(points):
            yield _chunk([p], i)
            time.sleep(0.25)  # one element every 250 ms: 10 s in all, over the 3 s cap

    def run_slow():
        try:
            _session(agencies, running, slow(), timeout=60)
        except grpc.RpcError as exc:
            outcome.append(exc)

    t = threading.Thread(target=run_slow)
    t.start()
    time.sleep(0.3)
    _demo_match_works(agencies, running)  # served while the slow peer is connected
    t.join(15)
    assert not t.is_alive()
    assert outcome and outcome[0].code() == grpc.StatusCode.DEADLINE_EXCEEDED
    ends = _end_rows(agencies, count=2)
    assert sorted(r["outcome"] for r in ends) == ["DEADLINE_EXCEEDED", "OK"]


def test_a_peer_that_never_reads_is_cancelled_and_its_thread_freed(agencies, start):
    agencies.edit("responder", "max_chunk_elements = 4096", "max_chunk_elements = 4096\nsession_timeout_seconds = 2")
    running = start()
    n = 4096 * 4  # replies of 512 KiB: more than the HTTP/2 windows hold unread
    points = _points(n)

    def flood():
        yield _hello(agencies, n)
        for off in range(0, n, 4096):
            yield _chunk(points[off:off + 4096], off)
        yield _finish(n)

    # No BDP probing: the flow-control windows stay at 64 KiB, as a peer that wants to stall the server sets them.
    with _channel(agencies, running, ("grpc.http2.bdp_probe", 0)) as ch:
        call = pb_grpc.ResponderStub(ch).Match(flood(), timeout=60)  # never iterated: never reads
        t0 = time.monotonic()
        (end,) = _end_rows(agencies, wait=15)
        assert time.monotonic() - t0 < 10
        assert end["outcome"] == "DEADLINE_EXCEEDED"
        _demo_match_works(agencies, running)
        call.cancel()


def test_sessions_over_max_sessions_are_refused_with_resource_exhausted(agencies, start):
    agencies.edit("responder", "max_chunk_elements = 4096", "max_chunk_elements = 4096\nmax_sessions = 1")
    running = start()
    gate = threading.Event()

    def holding():
        yield _hello(agencies, 1)
        gate.wait(20)

    with _channel(agencies, running) as ch:
        call = pb_grpc.ResponderStub(ch).Match(holding(), timeout=30)
        assert next(call).WhichOneof("kind") == "accepted"
        err = _refused(agencies, running, [_hello(agencies, 1)])
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "maximum of 1 concurrent sessions" in err.details()
        gate.set()
        call.cancel()
    ends = _end_rows(agencies, count=2)
    assert sorted(r["outcome"] for r in ends) == ["CANCELLED", "RESOURCE_EXHAUSTED"]
    _demo_match_works(agencies, running)  # the slot was given back


def test_hostile_sessions_in_parallel_do_not_disturb_an_honest_one(agencies, start):
    running = start()
    errors: list[grpc.StatusCode] = []

    def attack(build):
        try:
            _session(agencies, running, build(agencies, _points(2)))
        except grpc.RpcError as exc:
            errors.append(exc.code())

    threads = [threading.Thread(target=attack, args=(CASES[c][0],)) for c in list(CASES)[:8]]
    for t in threads:
        t.start()
    _demo_match_works(agencies, running)
    for t in threads:
        t.join(20)
    assert len(errors) == 8 and grpc.StatusCode.OK not in errors


@pytest.mark.parametrize("method", ["Match", "GetPolicy"])
def test_bytes_that_are_not_protobuf_are_invalid_argument(agencies, start, method):
    running = start()
    garbage = b"\xff\xff\xff\xff\x0f"  # a varint that never ends
    with _channel(agencies, running) as ch:
        path = f"/matcher.v1.Responder/{method}"
        with pytest.raises(grpc.RpcError) as rpc:
            if method == "Match":
                list(ch.stream_stream(path)(iter([garbage]), timeout=10))
            else:
                ch.unary_unary(path)(garbage, timeout=10)
    assert rpc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "protobuf decoding failed" in rpc.value.details()
    if method == "Match":
        (end,) = _end_rows(agencies)
        assert end["outcome"] == "INVALID_ARGUMENT"
    _demo_match_works(agencies, running)


def test_hello_values_are_bounded_before_they_reach_the_log(agencies, start):
    """Review finding: a 2^63 request size crashed the log write; peer strings went to the log verbatim."""
    running = start()
    fp = agencies.requester_config().key_spec().fingerprint()
    huge = pb.MatchRequest(hello=pb.Hello(norm_conformance_digest=norm_digest(), protocol="ecdh",
                                          key_spec_fingerprint=fp, request_size=2**63,
                                          reveal="requester"))
    err = _refused(agencies, running, [huge])
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    injected = "x\n2099-01-01 INFO session 00 outcome=OK"
    err = _refused(agencies, running, [pb.MatchRequest(hello=pb.Hello(norm_conformance_digest=norm_digest(),
        protocol="p" * 100000, key_spec_fingerprint=injected, request_size=1, reveal="requester"))])
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "p" * 100 not in err.details()
    err = _refused(agencies, running, [pb.MatchRequest(hello=pb.Hello(norm_conformance_digest=norm_digest(),
        protocol="ecdh", key_spec_fingerprint=injected, request_size=1, reveal="requester"))])
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "\n" not in err.details()
    rows = list(session_log.rows(agencies.workdir / "agency_a_state" / "sessions.db"))
    assert [r["event"] for r in rows].count("end") == 3
    assert all(len(str(v)) < 1000 for r in rows for v in r.values())
    assert session_log.verify(agencies.workdir / "agency_a_state" / "sessions.db").ok
    _demo_match_works(agencies, running)


def test_a_session_announcing_no_elements_is_refused(agencies, start):
    """Review finding: size 0 downloaded the whole setup at no budget cost."""
    running = start()
    err = _refused(agencies, running, [_hello(agencies, 0), pb.MatchRequest(finish=pb.Finish(elements_sent=0))])
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "at least one element" in err.details()
