"""The responder's Prometheus endpoint, scraped over HTTP during and after real mTLS sessions."""

from __future__ import annotations

import urllib.request

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from matcher import __version__
from matcher.errors import ConfigError
from matcher.requester import run_match
from matcher.v1 import matcher_pb2_grpc as pb_grpc
from tests.conftest import leaks_in
from tests.test_e2e import _hello
from tests.test_faults import _held_session
from tests.test_hostile import _channel

METRICS = '\n[metrics]\nlisten = "127.0.0.1:0"\n'


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        assert resp.status == 200
        return resp.read().decode("utf-8")


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} of an exposition text."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(text: str, name: str, **labels: str) -> float | None:
    return samples(text).get((name, tuple(sorted(labels.items()))))


def with_metrics(agencies) -> None:
    agencies.responder_toml.write_text(agencies.responder_toml.read_text() + METRICS)


def test_no_metrics_endpoint_without_a_metrics_table(agencies, start):
    running = start()
    assert running.metrics is None and running.metrics_port is None


def test_metrics_scraped_during_and_after_a_real_session(agencies, start):
    with_metrics(agencies)
    running = start()
    port = running.metrics_port
    assert port

    before = scrape(port)
    from matcher.protocols import ecdh

    assert value(before, "matcher_build_info", version=__version__, group_backend=ecdh.GROUP_BACKEND,
                 python=__import__("platform").python_version()) == 1.0
    assert value(before, "matcher_budget_daily_elements", peer="agency-b") == 100000.0
    assert value(before, "matcher_budget_remaining_elements", peer="agency-b") == 100000.0
    assert value(before, "matcher_setup_entries") == len(running.state.current().setup) > 0
    assert 0 <= value(before, "matcher_key_epoch_age_seconds") < 600
    assert value(before, "matcher_sessions_active") == 0.0

    # During a session: the responder has accepted it (and charged the budget) and waits for elements.
    call, channel, release = _held_session(agencies, running, size=3)
    during = scrape(port)
    assert value(during, "matcher_sessions_active") == 1.0
    assert value(during, "matcher_budget_remaining_elements", peer="agency-b") == 100000.0 - 3
    assert value(during, "matcher_sessions_total", peer="agency-b", protocol="ecdh", outcome="OK") is None
    release.set()
    assert [m.WhichOneof("kind") for m in call][-1] == "summary"
    channel.close()

    run = run_match(agencies.requester_config(), agencies.workdir / "agency_b_records.csv",
                    f"127.0.0.1:{running.port}", out=agencies.workdir / "hits.csv")
    sent = 3 + run.result.elements_sent
    assert running.servicer.wait_idle(10)  # the handlers have counted their sessions
    after = scrape(port)
    ok = dict(peer="agency-b", protocol="ecdh", outcome="OK")
    assert value(after, "matcher_sessions_total", **ok) == 2.0
    assert value(after, "matcher_elements_evaluated_total", peer="agency-b", protocol="ecdh") == float(sent)
    assert value(after, "matcher_session_duration_seconds_count", protocol="ecdh", outcome="OK") == 2.0
    assert value(after, "matcher_sessions_active") == 0.0
    assert value(after, "matcher_budget_remaining_elements", peer="agency-b") == 100000.0 - sent

    # A refused session: more elements than this peer may send in one session (max_set_size 50000).
    with _channel(agencies, running) as ch, pytest.raises(grpc.RpcError) as err:
        list(pb_grpc.ResponderStub(ch).Match(iter([_hello(agencies, 50001)]), timeout=30))
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert running.servicer.wait_idle(10)
    refused = scrape(port)
    assert value(refused, "matcher_refusals_total", peer="agency-b", reason="limit_exceeded") == 1.0
    assert value(refused, "matcher_sessions_total", peer="agency-b", protocol="ecdh",
                 outcome="RESOURCE_EXHAUSTED") == 1.0
    assert value(refused, "matcher_budget_remaining_elements", peer="agency-b") == 100000.0 - sent

    # Labels come from fixed sets: no session id, no identity data, no token, no address.
    for text in (before, during, after, refused):
        assert not leaks_in(text, agencies.workdir)
        assert run.result.session_id not in text
        label_values = {v for (_, labels) in samples(text) for _, v in labels}
        assert label_values <= {"agency-b", "ecdh", "OK", "RESOURCE_EXHAUSTED", "limit_exceeded",
                                __version__, ecdh.GROUP_BACKEND, __import__("platform").python_version()} | {
            str(b) for b in ("0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0", "30.0", "60.0", "120.0", "300.0",
                             "600.0", "1800.0", "3600.0", "+Inf")}

    running.stop(grace=0)
    with pytest.raises(OSError):
        scrape(port)


def test_group_backend_is_read_at_each_scrape(agencies, start, monkeypatch):
    from matcher.protocols import ecdh

    with_metrics(agencies)
    running = start()
    monkeypatch.setattr(ecdh, "GROUP_BACKEND", "ifma-test")
    text = scrape(running.metrics_port)
    assert [dict(labels)["group_backend"] for (name, labels) in samples(text) if name == "matcher_build_info"] == [
        "ifma-test"]


def test_metrics_port_in_use_is_a_config_error(agencies, start):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        agencies.responder_toml.write_text(
            agencies.responder_toml.read_text() + f'\n[metrics]\nlisten = "127.0.0.1:{busy.getsockname()[1]}"\n')
        with pytest.raises(ConfigError, match=r"\[metrics\] listen"):
            start()


def test_metrics_listen_must_be_host_and_port(agencies):
    agencies.responder_toml.write_text(agencies.responder_toml.read_text() + '\n[metrics]\nlisten = "9464"\n')
    with pytest.raises(ConfigError, match="HOST:PORT"):
        agencies.responder_config()
