"""The server's edge against other agencies and certificate holders, over real mTLS on loopback:
strangers are refused before they hold a thread, one peer cannot hold every session
slot, identity is a certificate bound to its CA or a key pin (not a CN), and the
requester can pin the responder.
"""

from __future__ import annotations

import logging
import threading
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from clients import MatchClient, MatchFailed, TlsFiles
from matcher import peer_auth
from matcher.certs import TestCA
from matcher.errors import ConfigError, PinMismatch
from matcher.requester import run_match
from matcher.storage import session_log
from matcher.v1 import matcher_pb2_grpc as pb_grpc
from tests.conftest import write_cert
from tests.test_e2e import EXPECTED_DEMO


def _target(running) -> str:
    return f"127.0.0.1:{running.port}"


def _tls_for(agencies, cert, key) -> TlsFiles:
    return TlsFiles(cert.read_bytes(), key.read_bytes(), (agencies.workdir / "certs/ca.pem").read_bytes())


def _channel(agencies, running, tls: TlsFiles) -> grpc.Channel:
    creds = grpc.ssl_channel_credentials(tls.ca, tls.key, tls.cert)
    return grpc.secure_channel(_target(running), creds, options=[("grpc.ssl_target_name_override", "agency-a")])


def _demo_match(agencies, running) -> None:
    run = run_match(agencies.requester_config(), agencies.workdir / "agency_b_records.csv", _target(running),
                    out=None)
    assert {h.record_id for h in run.result.hits} == set(EXPECTED_DEMO)


def _demo_ca(agencies) -> TestCA:
    """A CA object that signs with the demo CA's key is not available: issue from a CA we keep instead."""
    ca = TestCA("matcher test CA")
    certs = agencies.workdir / "certs"
    (certs / "ca.pem").write_bytes(ca.cert_pem)
    for name in ("agency-a", "agency-b"):
        write_cert(ca, certs, name)
    return ca


# -- item 3: strangers are refused before a handler holds a thread ---------------------------


def test_stranger_with_idle_reflection_streams_cannot_lock_out_an_agency(agencies, start, caplog):
    ca = _demo_ca(agencies)
    agencies.edit("responder", "max_chunk_elements = 4096", "max_chunk_elements = 4096\nmax_sessions = 4")
    running = start()  # a pool of 4 + 8 threads
    cert, key = write_cert(ca, agencies.workdir / "certs", "agency-x")  # chains to the CA, not in [[peers]]
    stranger = _tls_for(agencies, cert, key)
    gate = threading.Event()

    def idle():
        gate.wait(30)
        return
        yield  # a request stream that never sends

    caplog.set_level(logging.INFO, logger="matcher.server.responder")
    codes = []
    with _channel(agencies, running, stranger) as ch:
        stub = reflection_pb2_grpc.ServerReflectionStub(ch)
        streams = [stub.ServerReflectionInfo(idle(), timeout=30) for _ in range(40)]
        try:
            time.sleep(0.5)
            _demo_match(agencies, running)  # an allowlisted agency is served meanwhile
            for s in streams:
                with pytest.raises(grpc.RpcError) as err:
                    next(s)
                codes.append(err.value.code())
            # health checks stay open to any certificate of the CA; the Responder service does not
            status = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
            assert status.status == health_pb2.HealthCheckResponse.SERVING
        finally:
            gate.set()
    # refused by the allowlist, or (when the burst arrives faster than refusals) by the server's RPC cap
    assert set(codes) <= {grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.RESOURCE_EXHAUSTED}
    denied = codes.count(grpc.StatusCode.PERMISSION_DENIED)
    refusals = [r.getMessage() for r in caplog.records if "refused /grpc.reflection" in r.getMessage()]
    assert denied >= 10 and len(refusals) == denied and all("CN=agency-x" in m for m in refusals)


def test_get_policy_of_a_stranger_is_refused_and_logged_with_its_subject(agencies, start, caplog):
    ca = _demo_ca(agencies)
    running = start()
    cert, key = write_cert(ca, agencies.workdir / "certs", "agency-x")
    caplog.set_level(logging.INFO, logger="matcher.server.responder")
    with (
        MatchClient(_target(running), tls=_tls_for(agencies, cert, key), server_name="agency-a") as client,
        pytest.raises(MatchFailed) as err,
    ):
        client.get_policy()
    assert err.value.code == grpc.StatusCode.PERMISSION_DENIED
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("GetPolicy" in m and "CN=agency-x" in m for m in lines), lines


def test_refusal_lines_are_bounded_and_the_suppressed_ones_counted(monkeypatch):
    from matcher.server import service

    clock = [100.0]
    monkeypatch.setattr(service.time, "monotonic", lambda: clock[0])
    budget = service._LogBudget(burst=3, per_second=1.0)
    assert [budget.take() for _ in range(5)] == [(True, 0)] * 3 + [(False, 0)] * 2
    clock[0] += 1.0
    assert budget.take() == (True, 2)  # the next line says how many were not written
    assert budget.take() == (False, 0)


def test_an_allowlisted_peer_cannot_hold_every_thread_with_reflection_streams(agencies, start):
    agencies.edit("responder", "max_chunk_elements = 4096", "max_chunk_elements = 4096\nmax_sessions = 4")
    running = start()
    cfg = agencies.requester_config()
    tls = TlsFiles.load(cfg.tls.cert, cfg.tls.key, cfg.tls.ca)
    gate = threading.Event()

    def idle():
        gate.wait(30)
        return
        yield

    with _channel(agencies, running, tls) as ch:
        stub = reflection_pb2_grpc.ServerReflectionStub(ch)
        streams = [stub.ServerReflectionInfo(idle(), timeout=30) for _ in range(20)]
        try:
            time.sleep(0.5)
            _demo_match(agencies, running)
            refused = [s for s in streams if s.done() and s.code() == grpc.StatusCode.RESOURCE_EXHAUSTED]
            held = [s for s in streams if not s.done()]
        finally:
            gate.set()
            for s in streams:
                s.cancel()
    assert len(held) == 2 and len(refused) == 18  # two open streams of this kind per peer


# -- item 4: one peer cannot hold every session slot; an idle stream ends at the Hello deadline ----


def test_one_peer_at_its_session_cap_while_another_is_served(agencies, start):
    ca = _demo_ca(agencies)
    cert, key = write_cert(ca, agencies.workdir / "certs", "agency-c")
    agencies.edit("responder", "max_chunk_elements = 4096",
                  "max_chunk_elements = 4096\nmax_sessions = 3\nmax_sessions_per_peer = 2\n"
                  "hello_timeout_seconds = 3")
    agencies.edit("responder", "[[peers]]", '[[peers]]\nname = "agency-c"\ncommon_name = "agency-c"\n\n[[peers]]')
    running = start()
    gate = threading.Event()

    def idle():
        gate.wait(30)
        return
        yield

    t0 = time.monotonic()
    with _channel(agencies, running, _tls_for(agencies, cert, key)) as ch:
        stub = pb_grpc.ResponderStub(ch)
        held = [stub.Match(idle(), timeout=30) for _ in range(2)]
        time.sleep(0.3)
        extra = stub.Match(idle(), timeout=30)
        with pytest.raises(grpc.RpcError) as err:
            next(extra)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "max_sessions_per_peer" in err.value.details()
        _demo_match(agencies, running)  # agency-b is served while agency-c holds its maximum
        assert time.monotonic() - t0 < 3  # ... and before the Hello deadline freed agency-c's slots
        for s in held:  # the idle streams are ended at the Hello deadline
            with pytest.raises(grpc.RpcError) as err:
                next(s)
            assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            assert "hello_timeout_seconds" in err.value.details()
        gate.set()
    assert 2.5 < time.monotonic() - t0 < 10
    running.stop(grace=0)
    ends = [r for r in session_log.rows(agencies.responder_config().responder.session_log) if r["event"] == "end"]
    by_peer = sorted((r["peer"], r["outcome"]) for r in ends)
    assert by_peer == [("agency-b", "OK"), ("agency-c", "DEADLINE_EXCEEDED"), ("agency-c", "DEADLINE_EXCEEDED"),
                       ("agency-c", "RESOURCE_EXHAUSTED")]


def test_a_stream_that_sends_no_hello_is_ended_at_the_default_deadline_setting(agencies, start, caplog):
    agencies.edit("responder", "max_chunk_elements = 4096", "max_chunk_elements = 4096\nhello_timeout_seconds = 1")
    running = start()
    assert agencies.responder_config().responder.hello_timeout_seconds == 1
    cfg = agencies.requester_config()
    gate = threading.Event()

    def idle():
        gate.wait(30)
        return
        yield

    caplog.set_level(logging.INFO, logger="matcher.server.responder")
    t0 = time.monotonic()
    with _channel(agencies, running, TlsFiles.load(cfg.tls.cert, cfg.tls.key, cfg.tls.ca)) as ch:
        with pytest.raises(grpc.RpcError) as err:
            next(pb_grpc.ResponderStub(ch).Match(idle(), timeout=30))
        gate.set()
    assert 0.9 < time.monotonic() - t0 < 5
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert any("peer=agency-b" in r.getMessage() and "DEADLINE_EXCEEDED" in r.getMessage() for r in caplog.records)
    from matcher.config import ResponderSettings

    assert ResponderSettings.model_fields["hello_timeout_seconds"].default == 10


# -- item 7: a peer is its certificate bound to a CA or a key pin, not a CN --------------------


def _second_ca_minting_agency_b(agencies) -> tuple[TestCA, TlsFiles]:
    """A second CA in the `ca` bundle, and a certificate CN=agency-b it issued (an impostor)."""
    certs = agencies.workdir / "certs"
    (certs / "demo-ca.pem").write_bytes((certs / "ca.pem").read_bytes())
    other = TestCA("second trusted CA")
    (certs / "ca.pem").write_bytes((certs / "ca.pem").read_bytes() + other.cert_pem)
    fake = other.issue("agency-b")
    return other, TlsFiles(fake.cert_pem, fake.key_pem, (certs / "ca.pem").read_bytes())


def test_two_cas_without_a_binding_are_a_config_error_naming_the_setting(agencies, start):
    _second_ca_minting_agency_b(agencies)
    with pytest.raises(ConfigError) as err:
        start()
    assert "ca_sha256" in str(err.value) and "agency-b" in str(err.value) and "2 CAs" in str(err.value)


@pytest.mark.parametrize("binding", ["ca_file", "ca_sha256", "spki_sha256"])
def test_a_second_ca_minting_the_same_cn_is_not_that_peer(agencies, start, binding):
    _other, impostor = _second_ca_minting_agency_b(agencies)
    certs = agencies.workdir / "certs"
    from cryptography import x509

    if binding == "ca_file":
        line = 'ca = "certs/demo-ca.pem"'
    elif binding == "ca_sha256":
        ca_cert = x509.load_pem_x509_certificate((certs / "demo-ca.pem").read_bytes())
        line = f'ca_sha256 = "{peer_auth.cert_sha256(ca_cert)}"'
    else:
        peer_cert = x509.load_pem_x509_certificate((certs / "agency-b.pem").read_bytes())
        line = f'spki_sha256 = "{peer_auth.spki_sha256(peer_cert)}"'
    agencies.edit("responder", 'common_name = "agency-b"', f'common_name = "agency-b"\n{line}')
    running = start()
    with (
        MatchClient(_target(running), tls=impostor, server_name="agency-a") as client,
        pytest.raises(MatchFailed) as err,
    ):
        client.get_policy()
    assert err.value.code == grpc.StatusCode.PERMISSION_DENIED
    _demo_match(agencies, running)  # the genuine agency-b is served


def test_a_san_is_preferred_over_the_cn(agencies, start):
    ca = _demo_ca(agencies)
    certs = agencies.workdir / "certs"
    good = ca.issue("agency-b", hosts=("agency-b.police.example",))
    (certs / "agency-b.pem").write_bytes(good.cert_pem)
    from matcher.storage.secrets_store import write_private

    write_private(certs / "agency-b.key", good.key_pem)
    agencies.edit("responder", 'common_name = "agency-b"', 'san = "agency-b.police.example"')
    running = start()
    _demo_match(agencies, running)
    # CN agency-b.police.example, but no such subjectAltName: not that peer
    other = ca.issue("agency-b.police.example.evil", hosts=())
    tls = TlsFiles(other.cert_pem, other.key_pem, (certs / "ca.pem").read_bytes())
    with (
        MatchClient(_target(running), tls=tls, server_name="agency-a") as client,
        pytest.raises(MatchFailed) as err,
    ):
        client.get_policy()
    assert err.value.code == grpc.StatusCode.PERMISSION_DENIED


def _responder_spki(agencies) -> str:
    from cryptography import x509

    pem = (agencies.workdir / "certs/agency-a.pem").read_bytes()
    return peer_auth.spki_sha256(x509.load_pem_x509_certificate(pem))


def test_requester_pin_of_the_responder_key_is_checked_before_any_data(agencies, start):
    running = start()
    agencies.edit("requester", 'server_name = "agency-a"',
                  f'server_name = "agency-a"\nresponder_spki_sha256 = "{_responder_spki(agencies)}"')
    _demo_match(agencies, running)
    wrong = "ab" * 32
    agencies.edit("requester", _responder_spki(agencies), wrong)
    with pytest.raises(PinMismatch) as err:
        _demo_match(agencies, running)
    assert "responder_spki_sha256" in str(err.value) and "no data was sent" in str(err.value)
    running.stop(grace=0)
    rows = list(session_log.rows(agencies.responder_config().responder.session_log))
    assert [r["outcome"] for r in rows if r["event"] == "end"] == ["OK"]  # the pinned-off run never started


def test_each_responder_of_a_multi_query_has_its_own_pin(agencies, start):
    from matcher.network import run_match_many

    running = start()
    entries = "".join(
        f'\n[[responders]]\nname = "{n}"\naddress = "{_target(running)}"\nserver_name = "agency-a"\n'
        f'spki_sha256 = "{pin}"\n' for n, pin in (("pinned", _responder_spki(agencies)), ("impostor", "cd" * 32))
    )
    agencies.requester_toml.write_text(agencies.requester_toml.read_text(encoding="utf-8") + entries,
                                       encoding="utf-8")
    cfg = agencies.requester_config()
    run = run_match_many(cfg, agencies.workdir / "agency_b_records.csv", cfg.select_responders("all"), out=None)
    assert run.outcomes["pinned"].ok
    refused = run.outcomes["impostor"]
    assert refused.status == "UNAUTHENTICATED" and "spki_sha256" in (refused.detail or "")


def test_pin_proof_made_for_another_client_certificate_does_not_verify(agencies):
    """A relay holding a trusted certificate forwards our nonce: the responder signs the relay's certificate."""
    from cryptography import x509

    certs = agencies.workdir / "certs"
    resp_cert = x509.load_pem_x509_certificate((certs / "agency-a.pem").read_bytes())
    from cryptography.hazmat.primitives.serialization import Encoding

    der = resp_cert.public_bytes(Encoding.DER)
    relay = TestCA("relay CA").issue("relay")
    nonce = b"n" * 32
    proof = peer_auth.server_proof((certs / "agency-a.key").read_bytes(), nonce,
                                   peer_auth.cert_sha256(x509.load_pem_x509_certificate(relay.cert_pem)))
    own = (certs / "agency-b.pem").read_bytes()
    with pytest.raises(PinMismatch, match="does not verify"):
        peer_auth.check_server_proof(der, proof, nonce, own, peer_auth.spki_sha256(resp_cert), None)
    good = peer_auth.server_proof((certs / "agency-a.key").read_bytes(), nonce,
                                  peer_auth.cert_sha256(x509.load_pem_x509_certificate(own)))
    peer_auth.check_server_proof(der, good, nonce, own, peer_auth.spki_sha256(resp_cert), None)


def test_reflection_v1_lists_the_service_for_an_allowlisted_peer(agencies, start):
    running = start()
    cfg = agencies.requester_config()
    with _channel(agencies, running, TlsFiles.load(cfg.tls.cert, cfg.tls.key, cfg.tls.ca)) as ch:
        # a v1 client: the v1 method path (the v1 and v1alpha messages are the same on the wire)
        call = ch.stream_stream(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        replies = list(call(iter([reflection_pb2.ServerReflectionRequest(list_services=""),
                                  reflection_pb2.ServerReflectionRequest(
                                      file_containing_symbol="grpc.reflection.v1.ServerReflection")]), timeout=10))
    names = {s.name for s in replies[0].list_services_response.service}
    assert {"matcher.v1.Responder", "grpc.reflection.v1.ServerReflection"} <= names
    assert replies[1].WhichOneof("message_response") == "file_descriptor_response"


# -- item 8: --insecure is loopback only, keeps every limit, uses a throw-away epoch, is reported ----


def test_insecure_refuses_a_non_loopback_address(agencies, start):
    with pytest.raises(ConfigError) as err:
        start(insecure=True, listen="0.0.0.0:0")
    assert "loopback" in str(err.value) and "0.0.0.0:0" in str(err.value)
    from matcher.server.responder import is_loopback

    assert is_loopback("127.0.0.1:5") and is_loopback("[::1]:5") and is_loopback("localhost:5")
    assert not is_loopback("[::]:5") and not is_loopback("10.0.0.1:5") and not is_loopback("agency-a.example:5")


def test_insecure_keeps_the_budget_and_the_session_size_limit(agencies, start):
    agencies.edit("responder", "daily_budget = 100000", "daily_budget = 100")
    running = start(insecure=True)
    records = agencies.workdir / "agency_b_records.csv"
    run = run_match(agencies.requester_config(), records, _target(running), out=None, insecure=True)
    assert len(run.result.hits) == 5  # one session's cost (more than 50) fits the budget of 100, two do not
    with pytest.raises(MatchFailed) as err:
        run_match(agencies.requester_config(), records, _target(running), out=None, insecure=True)
    assert err.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    running.stop(grace=0)
    agencies.edit("responder", "max_set_size = 50000", "max_set_size = 10")
    running = start(insecure=True)
    with pytest.raises(MatchFailed) as err:
        run_match(agencies.requester_config(), records, _target(running), out=None, insecure=True)
    assert err.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED and "limit of 10" in err.value.details


def test_insecure_uses_a_throw_away_epoch_and_is_reported(agencies, start, caplog, capsys):
    production = start()
    state_dir = agencies.responder_config().responder.state_dir
    key_file = state_dir / "epoch_key.json"
    before = key_file.read_bytes()
    production_epoch = production.state.current().key.epoch
    production.stop(grace=0)
    caplog.set_level(logging.INFO, logger="matcher.server.responder")
    insecure = start(insecure=True)
    scratch = insecure.scratch
    assert insecure.state.current().key.epoch != production_epoch
    assert scratch is not None and (scratch / "epoch_key.json").exists() and scratch != state_dir
    insecure.stop(grace=0)
    assert key_file.read_bytes() == before  # the production epoch is untouched
    assert not scratch.exists()  # the throw-away epoch is gone
    assert any("INSECURE development mode" in r.getMessage() and r.levelno == logging.WARNING
               for r in caplog.records)
    from matcher.cli import main

    db = agencies.responder_config().responder.session_log
    assert main(["audit-log", "verify", str(db)]) == 0
    assert "serve --insecure" in capsys.readouterr().out
    main(["audit-config", str(agencies.responder_toml), "--json"])
    import json

    findings = {f["id"]: f for f in json.loads(capsys.readouterr().out)["findings"]}
    assert findings["insecure-runs"]["severity"] == "warning"


# -- "Also": the Dask backend carries keys, so only loopback or tls:// with certificates --------


@pytest.mark.parametrize("address, words", [
    ("tcp://10.1.2.3:8786", "not tls://"),
    ("scheduler.example:8786", "not tls://"),
    ("tls://10.1.2.3:8786", "no certificates"),
])
def test_dask_scheduler_off_loopback_needs_tls_with_certificates(address, words):
    from matcher.parallel import Workers, dask_address_problem

    with pytest.raises(ConfigError) as err:
        Workers(dask_scheduler=address)
    assert words in str(err.value) and "dask_tls" in str(err.value)
    assert dask_address_problem("tcp://127.0.0.1:8786", None) is None
    assert dask_address_problem("inproc://x", None) is None
    assert dask_address_problem("tls://10.1.2.3:8786", object()) is None


def test_a_plaintext_dask_scheduler_is_refused_at_start_and_in_the_audit(agencies, start, capsys):
    agencies.edit("responder", "max_chunk_elements = 4096",
                  'max_chunk_elements = 4096\ndask_scheduler = "tcp://dask.agency-a.example:8786"')
    with pytest.raises(ConfigError, match="plaintext"):
        start()
    from matcher.cli import main

    assert main(["audit-config", str(agencies.responder_toml), "--json"]) == 1
    import json

    report = json.loads(capsys.readouterr().out)
    assert "dask-plaintext" in {f["id"] for f in report["findings"] if f["severity"] == "error"}


def test_audit_warns_on_a_peer_without_ca_binding_or_pin(agencies, capsys):
    import json

    from cryptography import x509

    from matcher.cli import main

    main(["audit-config", str(agencies.responder_toml), "--json"])
    ids = {f["id"]: f["severity"] for f in json.loads(capsys.readouterr().out)["findings"]}
    assert ids["peer-not-bound"] == "warning"
    ca = x509.load_pem_x509_certificate((agencies.workdir / "certs/ca.pem").read_bytes())
    agencies.edit("responder", 'common_name = "agency-b"',
                  f'common_name = "agency-b"\nca_sha256 = "{peer_auth.cert_sha256(ca)}"')
    main(["audit-config", str(agencies.responder_toml), "--json"])
    assert "peer-not-bound" not in {f["id"] for f in json.loads(capsys.readouterr().out)["findings"]}
