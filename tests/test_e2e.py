"""End to end over a real gRPC server on loopback with real mutual TLS."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from clients import MatchClient, MatchFailed, TlsFiles
from matcher.certs import TestCA
from matcher.errors import KeySpecMismatch
from matcher.identity.match_keys import DEFAULT_MATCH_KEYS
from matcher.identity.records import load_records
from matcher.protocols import ecdh
from matcher.requester import client_for, run_match
from matcher.v1 import matcher_pb2 as pb
from matcher.v1 import matcher_pb2_grpc as pb_grpc
from tests.conftest import norm_digest, write_cert

EXPECTED_DEMO = {
    "B-101": (("names_dob", "phonetic_dob", "given_dob_nationality", "names_year"), "DE-BKA-2024-0117"),
    "B-102": (("names_dob", "names_year"), "DE-BKA-2023-5521"),
    "B-103": (("names_dob", "phonetic_dob", "given_dob_nationality", "names_year"), "DE-BKA-2025-0042"),
    "B-104": (("document", "names_dob", "phonetic_dob", "given_dob_nationality", "names_year"), "DE-BKA-2022-3310"),
    "B-105": (
        ("document", "names_dob", "phonetic_dob", "given_dob_nationality", "names_year"),
        "DE-BKA-2024-0981",
    ),
}


def peer(running) -> str:
    return f"127.0.0.1:{running.port}"


def test_demo_data_hits_over_mtls(agencies, start):
    running = start()
    out = agencies.workdir / "hits.csv"
    run = run_match(agencies.requester_config(), agencies.workdir / "agency_b_records.csv", peer(running), out=out)
    got = {h.record_id: (h.match_keys, h.case_ref) for h in run.result.hits}
    assert got == EXPECTED_DEMO
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["record_id"] for r in rows] == sorted(EXPECTED_DEMO)
    assert rows[0].keys() == {"record_id", "match_keys", "strength", "case_ref"}
    assert {r["record_id"]: r["strength"] for r in rows} == {k: v[0][0] for k, v in EXPECTED_DEMO.items()}
    assert run.loaded.rows_read == 13 and len(run.loaded.rejected) == 1


def _write_people(path: Path, rows: list[dict[str, str]], id_col: str) -> None:
    cols = [id_col, "first_name", "last_name", "dob", "sex", "nationality", "doc_no", "doc_country", "case_id"]
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({c: r.get(c, "") for c in cols} | {id_col: r["id"]})


def _random_people(rng: random.Random, n: int, prefix: str) -> list[dict[str, str]]:
    given = ["Anna", "Jürgen", "Olga", "Ahmed", "Marie", "Piotr", "Sofia", "Luca", "Chen", "Nadia"]
    family = ["Müller", "Nowak", "Rossi", "Ivanova", "Haddad", "Dubois", "Kovač", "Silva", "Wang", "Berg"]
    out = []
    for i in range(n):
        out.append(
            {
                "id": f"{prefix}-{i}",
                "first_name": rng.choice(given),
                "last_name": rng.choice(family),
                "dob": f"{rng.randint(1, 28):02d}.{rng.randint(1, 12):02d}.{rng.randint(1960, 1965)}",
                "sex": rng.choice("MF"),
                "nationality": rng.choice(["DEU", "POL", "ITA"]),
                "doc_no": f"X{rng.randint(0, 400)}" if rng.random() < 0.5 else "",
                "doc_country": "DEU",
                "case_id": f"CASE-{prefix}-{i}",
            }
        )
    return out


def test_random_sets_give_exactly_the_plaintext_intersection(agencies, start):
    rng = random.Random(7)
    resp_rows = _random_people(rng, 300, "A")
    req_rows = _random_people(rng, 300, "B") + [dict(r, id=f"B-copy-{i}") for i, r in enumerate(resp_rows[:40])]
    _write_people(agencies.workdir / "agency_a_watchlist.csv", resp_rows, "id")
    _write_people(agencies.workdir / "agency_b_records.csv", req_rows, "person_id")
    agencies.edit("requester", 'given_names = "given"', 'given_names = "first_name"')
    agencies.edit("requester", 'family_name = "surname"', 'family_name = "last_name"')
    agencies.edit("requester", 'date_of_birth = "birth_date"', 'date_of_birth = "dob"')
    agencies.edit("requester", 'sex = "gender"', 'sex = "sex"')
    agencies.edit("requester", 'nationality = "citizenship"', 'nationality = "nationality"')
    agencies.edit("requester", 'document_number = "passport"', 'document_number = "doc_no"')
    agencies.edit("requester", 'document_country = "passport_country"', 'document_country = "doc_country"')
    agencies.edit("requester", 'date_order = "MDY"', 'date_order = "DMY"')
    running = start()
    req_cfg, resp_cfg = agencies.requester_config(), agencies.responder_config()
    run = run_match(req_cfg, agencies.workdir / "agency_b_records.csv", peer(running), out=None)

    # Plaintext intersection of the two files' tokens, computed directly.
    resp = load_records(resp_cfg.responder.watchlist, resp_cfg.records.csv_format(), resp_cfg.key_spec(),
                        require_case_ref=True)
    refs: dict[bytes, set[str]] = {}
    for r in resp.records:
        for _k, t in r.tokens:
            refs.setdefault(t, set()).add(r.case_ref)
    # One hit per (record, case reference), with the keys (in spec order) that linked that pair.
    expected = {}
    for r in run.loaded.records:
        for k, t in r.tokens:
            for ref in refs.get(t, ()):
                keys = expected.setdefault((r.record_id, ref), [])
                if k not in keys:
                    keys.append(k)
    got = {(h.record_id, h.case_ref): h.match_keys for h in run.result.hits}
    assert len({rid for rid, _ in expected}) >= 40  # the copies at least
    assert got == {pair: tuple(keys) for pair, keys in expected.items()}


def test_unknown_client_certificate_is_permission_denied(agencies, start):
    running = start()
    ca_dir = agencies.workdir / "certs"
    # A certificate from a CA the responder trusts, for agency-x, which is not in [[peers]].
    other_ca = TestCA("second trusted CA")
    cert, key = write_cert(other_ca, ca_dir, "agency-x")
    trusted = ca_dir / "ca.pem"
    (ca_dir / "demo-ca.pem").write_bytes(trusted.read_bytes())
    trusted.write_bytes(trusted.read_bytes() + other_ca.cert_pem)
    agencies.edit("responder", 'common_name = "agency-b"', 'common_name = "agency-b"\nca = "certs/demo-ca.pem"')
    running.stop(grace=0)
    running = start()
    tls = TlsFiles(cert.read_bytes(), key.read_bytes(), (ca_dir / "ca.pem").read_bytes())
    with MatchClient(peer(running), tls=tls, server_name="agency-a") as client, pytest.raises(MatchFailed) as err:
        client.get_policy()
    assert err.value.code == grpc.StatusCode.PERMISSION_DENIED
    assert "allowlist" in err.value.details


def test_certificate_from_untrusted_ca_cannot_connect(agencies, start):
    running = start()
    rogue = TestCA("rogue CA")
    cert, key = write_cert(rogue, agencies.workdir, "agency-b")  # right name, wrong CA
    tls = TlsFiles(cert.read_bytes(), key.read_bytes(), (agencies.workdir / "certs/ca.pem").read_bytes())
    with (
        MatchClient(peer(running), tls=tls, server_name="agency-a", timeout=5) as client,
        pytest.raises(MatchFailed) as err,
    ):
        client.get_policy()
    assert err.value.code == grpc.StatusCode.UNAVAILABLE


def _raw_session(agencies, running, messages):
    cfg = agencies.requester_config()
    tls = TlsFiles.load(cfg.tls.cert, cfg.tls.key, cfg.tls.ca)
    creds = grpc.ssl_channel_credentials(tls.ca, tls.key, tls.cert)
    with grpc.secure_channel(peer(running), creds, options=[("grpc.ssl_target_name_override", "agency-a")]) as ch:
        stub = pb_grpc.ResponderStub(ch)
        return list(stub.Match(iter(messages), timeout=10))


def _hello(agencies, size=1, **kw):
    fp = agencies.requester_config().key_spec().fingerprint()
    return pb.MatchRequest(hello=pb.Hello(norm_conformance_digest=norm_digest(), protocol="ecdh",
                                          key_spec_fingerprint=fp, request_size=size,
                                          reveal="requester", wire_version=2, **kw))


def test_key_spec_mismatch_is_failed_precondition_with_both_fingerprints(agencies, start):
    running = start()
    theirs = agencies.responder_config().key_spec().fingerprint()
    agencies.edit("requester", 'names_dob = ["folded_soundex(name_tokens)", "date_of_birth_or_swapped"]',
                  'name_dob = ["family_name", "date_of_birth"]')
    cfg = agencies.requester_config()
    mine = cfg.key_spec().fingerprint()
    with client_for(cfg, peer(running)) as client, pytest.raises(KeySpecMismatch) as err:
        client.match([], cfg.key_spec())
    assert mine in str(err.value) and theirs in str(err.value)
    # And the responder itself refuses a Hello carrying the wrong fingerprint.
    with pytest.raises(grpc.RpcError) as rpc:
        _raw_session(agencies, running, [pb.MatchRequest(hello=pb.Hello(norm_conformance_digest=norm_digest(),
            protocol="ecdh", key_spec_fingerprint=mine, request_size=1, reveal="requester"))])
    assert rpc.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert mine in rpc.value.details() and theirs in rpc.value.details()


@pytest.mark.parametrize("bad", [bytes(32), b"\xff" * 32, b"\x01" * 31])
def test_invalid_point_is_invalid_argument_and_server_keeps_serving(agencies, start, bad):
    running = start()
    good = ecdh.blind_tokens(ecdh.new_key(), [b"t"])[0]
    with pytest.raises(grpc.RpcError) as rpc:
        _raw_session(agencies, running, [
            _hello(agencies, size=2),
            pb.MatchRequest(blinded=pb.ElementChunk(offset=0, elements=[good, bad])),
            pb.MatchRequest(finish=pb.Finish(elements_sent=2)),
        ])
    assert rpc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "element 1" in rpc.value.details()
    # The next session works.
    run = run_match(agencies.requester_config(), agencies.workdir / "agency_b_records.csv", peer(running), out=None)
    assert len(run.result.hits) == len(EXPECTED_DEMO)


@pytest.mark.parametrize(
    "messages, code, words",
    [
        (lambda a, g: [pb.MatchRequest(finish=pb.Finish())], grpc.StatusCode.INVALID_ARGUMENT, "Hello"),
        (lambda a, g: [_hello(a, size=1), pb.MatchRequest(blinded=pb.ElementChunk(offset=0, elements=[g, g]))],
         grpc.StatusCode.INVALID_ARGUMENT, "more elements than announced"),
        (lambda a, g: [_hello(a, size=2), pb.MatchRequest(blinded=pb.ElementChunk(offset=5, elements=[g]))],
         grpc.StatusCode.INVALID_ARGUMENT, "out of order"),
        (lambda a, g: [_hello(a, size=2), pb.MatchRequest(blinded=pb.ElementChunk(offset=0, elements=[g])),
                       pb.MatchRequest(finish=pb.Finish(elements_sent=1))],
         grpc.StatusCode.INVALID_ARGUMENT, "announced"),
        (lambda a, g: [_hello(a, size=10**9)], grpc.StatusCode.RESOURCE_EXHAUSTED, "limit"),
        (lambda a, g: [pb.MatchRequest(hello=pb.Hello(norm_conformance_digest=norm_digest(),
                                                      protocol="paillier", request_size=1))],
         grpc.StatusCode.FAILED_PRECONDITION, "not offered"),
        (lambda a, g: [_hello(a, size=1)], grpc.StatusCode.INVALID_ARGUMENT, "ended before Finish"),
    ],
)
def test_protocol_violations_have_precise_status(agencies, start, messages, code, words):
    running = start()
    g = ecdh.blind_tokens(ecdh.new_key(), [b"t"])[0]
    with pytest.raises(grpc.RpcError) as rpc:
        _raw_session(agencies, running, messages(agencies, g))
    assert rpc.value.code() == code
    assert words in rpc.value.details()


def test_health_and_reflection_are_served(agencies, start):
    running = start()
    cfg = agencies.requester_config()
    tls = TlsFiles.load(cfg.tls.cert, cfg.tls.key, cfg.tls.ca)
    creds = grpc.ssl_channel_credentials(tls.ca, tls.key, tls.cert)
    with grpc.secure_channel(peer(running), creds, options=[("grpc.ssl_target_name_override", "agency-a")]) as ch:
        status = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service="matcher.v1.Responder"))
        assert status.status == health_pb2.HealthCheckResponse.SERVING
        replies = reflection_pb2_grpc.ServerReflectionStub(ch).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
        names = {s.name for s in next(iter(replies)).list_services_response.service}
    assert "matcher.v1.Responder" in names and "grpc.health.v1.Health" in names


def test_policy_describes_keys_and_limits(agencies, start):
    running = start()
    cfg = agencies.requester_config()
    with client_for(cfg, peer(running)) as client:
        p = client.get_policy()
    assert list(p.protocols) == ["ecdh"]
    assert [k.name for k in p.match_keys] == list(DEFAULT_MATCH_KEYS)
    assert p.key_spec_fingerprint == cfg.key_spec().fingerprint()
    assert p.norm_version == "n2" and p.max_request_size == 1_000_000 and p.key_epoch


def test_cardinality_mode_returns_only_the_count(agencies, start):
    agencies.edit("responder", 'reveal = "requester"', 'reveal = "cardinality"')
    agencies.edit("requester", 'reveal = "requester"', 'reveal = "cardinality"')
    running = start()
    run = run_match(agencies.requester_config(), agencies.workdir / "agency_b_records.csv", peer(running), out=None)
    assert run.result.hits == []
    assert run.result.hit_count == 25  # hit tokens (the 5 hit records hit with 25 distinct tokens)
    # A requester expecting full hits is refused by a cardinality-only responder.
    agencies.edit("requester", 'reveal = "cardinality"', 'reveal = "requester"')
    with pytest.raises(MatchFailed) as err:
        run_match(agencies.requester_config(), agencies.workdir / "agency_b_records.csv", peer(running), out=None)
    assert err.value.code == grpc.StatusCode.FAILED_PRECONDITION


def test_insecure_mode_needs_the_flag_and_works(agencies, start):
    running = start(insecure=True)
    run = run_match(agencies.requester_config(), agencies.workdir / "agency_b_records.csv", peer(running),
                    out=None, insecure=True)
    assert len(run.result.hits) == 5


def test_a_request_over_the_responders_limit_is_refused_before_any_data_moves(agencies, start):
    from matcher.errors import LimitExceeded

    agencies.edit("responder", "max_request_size = 1000000", "max_request_size = 10")
    running = start()
    with pytest.raises(LimitExceeded, match="at most 10 per session"):
        run_match(agencies.requester_config(), agencies.workdir / "agency_b_records.csv", peer(running), out=None)


def test_n3_over_mtls_finds_the_demo_hits_with_column_proof_keys(agencies, start):
    """Both agencies on norm_version = "n3" (no [match_keys]: n3's default keys) over real mTLS."""
    for path in (agencies.responder_toml, agencies.requester_toml):
        text = path.read_text(encoding="utf-8")
        path.write_text(text.split("[match_keys]")[0].replace('norm_version = "n2"', 'norm_version = "n3"', 1),
                        encoding="utf-8")
    assert agencies.requester_config().key_spec().norm_version == "n3"
    running = start()
    with client_for(agencies.requester_config(), peer(running)) as client:
        policy = client.get_policy()
    assert policy.norm_version == "n3" and [k.name for k in policy.match_keys] == [
        "document", "names_dob", "pair_dob", "initials_dob", "names_year"]
    run = run_match(agencies.requester_config(), agencies.workdir / "agency_b_records.csv", peer(running),
                    out=agencies.workdir / "hits.csv")
    got = {h.record_id: h.case_ref for h in run.result.hits}
    assert got == {rid: case for rid, (_keys, case) in EXPECTED_DEMO.items()}
