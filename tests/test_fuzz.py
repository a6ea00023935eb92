"""Fuzzing (hypothesis) of everything that takes bytes from the wire or from a file.

Contract: any input either works or raises a precise error (a MatcherError subclass:
InvalidElement, ProtocolViolation, InputFileError, ... or, for the one place that reads
a cache it may throw away, returns None). Never another exception, never a hang.

A fixed budget runs in ``make test`` (``MATCHER_FUZZ_EXAMPLES``, default 150 per target);
``make fuzz`` runs the same targets with 20000 examples each.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

import grpc
import pytest
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from matcher.errors import InputFileError, InvalidElement, MatcherError, ResponderMisbehaved
from matcher.identity.records import CsvFormat, load_records
from matcher.protocols import ecdh, ecdh_index, ecdh_reveal, keyed_hash
from matcher.storage.setup_cache import MAGIC, load_setup, save_setup
from matcher.v1 import matcher_pb2 as pb
from tests.conftest import norm_digest

EXAMPLES = int(os.environ.get("MATCHER_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=False)

KEY = ecdh.new_key()
GOOD = ecdh.blind_tokens(KEY, [b"a", b"b", b"c"])
# bytes that are near-valid points: valid ones with a flipped bit, the identity, all-ones, short/long
points = st.one_of(
    st.binary(max_size=40),
    st.sampled_from(GOOD + [bytes(32), b"\xff" * 32, ((1 << 255) - 19).to_bytes(32, "little")]),
    st.tuples(st.sampled_from(GOOD),
              st.integers(0, 255)).map(lambda t: bytes([t[0][0] ^ (1 << (t[1] % 8))]) + t[0][1:]),
)


@FUZZ
@given(st.lists(points, max_size=8), st.integers(0, 10**6))
def test_ecdh_wire_functions(elements, offset):
    for fn in (ecdh.evaluate, ecdh.unblind, ecdh.unblind_outputs):
        try:
            out = fn(KEY, elements, offset)
        except InvalidElement as exc:
            assert str(exc).startswith("element ")
            continue
        assert len(out) == len(elements)
    for i, p in enumerate(elements):
        with contextlib.suppress(InvalidElement):
            ecdh.check_point(p, i)


@FUZZ
@given(st.integers(1, 32), st.lists(st.tuples(st.binary(max_size=34), st.binary(max_size=80)), max_size=8),
       st.booleans(), st.lists(st.binary(min_size=64, max_size=64), max_size=4))
def test_setup_index_add_and_lookup(tag_len, rows, with_labels, outputs):
    index = ecdh_index.SetupIndex(tag_len)
    tags = [t for t, _ in rows]
    labels = [lb for _, lb in rows] if with_labels else []
    try:
        index.add(tags, labels)
    except InvalidElement:
        return
    # ResponderMisbehaved: a tag found whose labels do not open for the element's token
    with contextlib.suppress(ResponderMisbehaved):
        assert len(index.lookup_outputs(outputs, [b"t%d" % i for i in range(len(outputs))])) == len(outputs)


@FUZZ
@given(st.lists(points, max_size=6), st.integers(0, 8))
def test_check_hit_report(reported, limit):
    setup = ecdh.responder_setup(KEY, [(b"a", b"C1"), (b"b", b"C2")], 8, keep_points=True)
    with contextlib.suppress(InvalidElement):
        ecdh_reveal.check_hit_report(setup, reported, limit)


@FUZZ
@given(st.lists(st.binary(max_size=40), max_size=8), st.integers(0, 10**6))
def test_keyed_hash_lookup(received, offset):
    index = keyed_hash.responder_index(b"s" * 32, [(b"tok", b"C1")])
    try:
        out = keyed_hash.lookup(index, received, offset)
    except InvalidElement:
        return
    assert len(out) == len(received)


def _header(draw_header) -> bytes:
    body = json.dumps(draw_header).encode()
    return MAGIC + len(body).to_bytes(4, "big") + body


json_values = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                                     st.floats(allow_nan=True), st.text(max_size=5)),
                           lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=12), c, max_size=3),
                           max_leaves=8)
setup_headers = st.fixed_dictionaries(
    {"count": st.integers(-3, 6) | json_values, "tag_length": st.integers(-3, 40) | json_values,
     "label_length": st.integers(-40, 40) | json_values},
    optional={"meta": json_values},
)


@FUZZ
@example(_header({"count": 0, "tag_length": 5, "label_length": -5}))  # row length 0: range() step 0
@example(_header({"count": 1, "tag_length": 5, "label_length": -10}))
@example(b"MSETUP3\n\x00\x00\x00\x37" + b'{"count": Infinity, "tag_length": 1, "label_length": 0}')
@given(st.one_of(
    st.binary(max_size=200),
    st.tuples(setup_headers, st.binary(max_size=120)).map(lambda t: _header(t[0]) + t[1]),
    st.binary(max_size=60).map(lambda b: MAGIC + b),
))
def test_load_setup_of_arbitrary_bytes(tmp_dir, data):
    path = tmp_dir / "setup.bin"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    found = load_setup(path)
    if found is not None:
        meta, setup = found
        assert all(len(t) == setup.tag_length for t in setup.tags) and len(setup.labels) == len(setup.tags)


def test_load_setup_round_trip(tmp_dir):
    setup = ecdh.responder_setup(KEY, [(b"a", b"C1"), (b"b", b"C2")], 9)
    save_setup(tmp_dir / "s.bin", setup, {"x": 1})
    meta, back = load_setup(tmp_dir / "s.bin")
    assert meta == {"x": 1} and back.tags == setup.tags and back.labels == setup.labels


@FUZZ
@given(st.binary(max_size=300))
def test_proto_parsing_raises_only_decode_error(data):
    for message in (pb.MatchRequest, pb.MatchResponse, pb.Policy, pb.GetPolicyRequest):
        with contextlib.suppress(DecodeError):
            message.FromString(data)


# -- the whole responder session over fuzzed messages (no network: a fake gRPC context) ------

class _Abort(Exception):
    pass


class _Context:
    def __init__(self) -> None:
        self.code: grpc.StatusCode | None = None

    def peer(self) -> str:
        return "ipv4:127.0.0.1:1"

    def time_remaining(self) -> float:
        return 30.0

    def cancel(self) -> None:
        pass

    def is_active(self) -> bool:
        return True

    def abort(self, code, details):
        self.code = code
        raise _Abort(details)


@pytest.fixture(scope="module")
def servicer(tmp_path_factory):
    from matcher.config import ResponderConfig, load_responder_config
    from matcher.identity.records import LoadResult
    from matcher.server.responder import load_watchlist
    from matcher.server.service import ResponderServicer
    from matcher.server.state import ResponderState
    from tests.conftest import write_demo_files

    work = tmp_path_factory.mktemp("fuzz-responder")
    responder_toml, _ = write_demo_files(work)
    cfg = load_responder_config(responder_toml)
    cfg = ResponderConfig.model_validate(
        cfg.model_dump() | {"responder": cfg.responder.model_dump() | {"workers": 1, "session_log": None,
                                                                        "max_chunk_elements": 4}})
    state = ResponderState(cfg, load_watchlist(cfg))
    import matcher.server.service

    settle = matcher.server.service.CANCEL_SETTLE_SECONDS
    matcher.server.service.CANCEL_SETTLE_SECONDS = 0.0  # nothing to cancel here
    yield ResponderServicer(state, insecure=True)
    matcher.server.service.CANCEL_SETTLE_SECONDS = settle
    state.close()
    del LoadResult


def _request_messages(fingerprint: str):
    hello = st.builds(
        lambda proto, size, reveal, fp, cached: pb.MatchRequest(hello=pb.Hello(norm_conformance_digest=norm_digest(),
            protocol=proto, request_size=size, reveal=reveal, key_spec_fingerprint=fp, cached_setup_id=cached,
            wire_version=2)),
        st.sampled_from(["ecdh", "keyed-hash", "paillier", ""]), st.integers(0, 6),
        st.sampled_from(["requester", "cardinality", "both"]), st.sampled_from([fingerprint, "", "00" * 32]),
        st.sampled_from(["", "abc"]),
    )
    chunk = st.builds(lambda off, els: pb.MatchRequest(blinded=pb.ElementChunk(offset=off, elements=els)),
                      st.integers(0, 6), st.lists(points, max_size=5))
    finish = st.builds(lambda n: pb.MatchRequest(finish=pb.Finish(elements_sent=n)), st.integers(0, 6))
    report = st.builds(lambda els: pb.MatchRequest(hit_report=pb.HitReport(elements=els)), st.lists(points, max_size=3))
    raw = st.binary(max_size=40).map(lambda b: b)
    return st.lists(st.one_of(hello, chunk, finish, report, raw, st.just(pb.MatchRequest())), max_size=7)


FINGERPRINT = None


@FUZZ
@given(st.data())
def test_responder_session_over_fuzzed_message_sequences(servicer, data):
    from matcher.server.service import _lenient

    fp = servicer.state.keyspec.fingerprint()
    msgs = data.draw(_request_messages(fp))
    parse = _lenient(pb.MatchRequest)
    wire = [parse(m if isinstance(m, bytes) else m.SerializeToString()) for m in msgs]
    ctx = _Context()
    try:
        replies = list(servicer.Match(iter(wire), ctx))
    except _Abort as exc:
        assert ctx.code not in (None, grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), exc
        return
    assert replies and replies[-1].WhichOneof("kind") == "summary"


# -- the CSV loader over arbitrary bytes -------------------------------------------------------

SPEC = None


def _spec():
    from matcher.identity.match_keys import DEFAULT_MATCH_KEYS, KeySpec

    global SPEC
    if SPEC is None:
        SPEC = KeySpec.from_mapping("n2", dict(DEFAULT_MATCH_KEYS))
    return SPEC


HEADER = b"record_id,given_names,family_name,date_of_birth,sex,nationality,document_number,document_country"
csv_pieces = st.sampled_from([b",", b'"', b"\r\n", b"\n", b"\r", b"\x00", b"\xef\xbb\xbf", b"\xff", b"\xc3\xbc",
                              b"Anna", b"M\xc3\xbcller", b"1980-01-01", b"12.03.1979", b"DEU", b"M", b"X123",
                              b"r1", b"r2", b"\xd0\x98\xd0\xb2", b" ", b"A" * 1100])
csv_files = st.one_of(
    st.binary(max_size=300),
    st.lists(csv_pieces, max_size=40).map(lambda parts: HEADER + b"\n" + b"".join(parts)),
    st.lists(st.lists(csv_pieces, min_size=1, max_size=3).map(b"".join), max_size=12)
      .map(lambda cells: HEADER + b"\n" + b",".join(cells)),
)


@FUZZ
@given(csv_files, st.sampled_from(["utf-8", "latin-1", "utf-16"]), st.sampled_from([",", ";", "\t"]))
def test_load_records_of_arbitrary_bytes(tmp_dir, data, encoding, delimiter):
    path = tmp_dir / "records.csv"
    path.write_bytes(data)
    try:
        result = load_records(path, CsvFormat(date_order="DMY", encoding=encoding, delimiter=delimiter), _spec(),
                              rejects_path=tmp_dir / "rejects.csv")
    except InputFileError:
        return
    assert len(result.records) + len(result.rejected) == result.rows_read
    assert all(r.line >= 2 and r.reason for r in result.rejected)


@pytest.fixture(scope="module")
def tmp_dir():
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


def test_errors_raised_here_are_matcher_errors():
    assert issubclass(InvalidElement, MatcherError) and issubclass(InputFileError, MatcherError)
