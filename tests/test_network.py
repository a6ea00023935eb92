"""One query to many responders (`matcher match --peers`): three real responders on loopback mTLS."""

from __future__ import annotations

import csv
import threading
from pathlib import Path

import pytest

from clients import MatchClient, TlsFiles, match_many
from matcher.config import load_requester_config, load_responder_config
from matcher.errors import ConfigError
from matcher.identity.records import load_records
from matcher.network import EXIT_ALL, EXIT_NONE, EXIT_PARTIAL, MULTI_HITS_COLUMNS, run_match_many
from matcher.requester import run_match
from matcher.server.responder import start_responder
from matcher.sessions import RESPONDER_SESSIONS
from matcher.storage import session_log


def _responder(agencies, name: str, watchlist_rows: slice):
    """A responder named ``name`` from agency A's config, holding ``watchlist_rows`` of its watchlist."""
    cfg = load_responder_config(agencies.responder_toml)
    src = cfg.responder.watchlist
    with src.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    wl = agencies.workdir / f"{name}_watchlist.csv"
    with wl.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows([rows[0], *rows[1:][watchlist_rows]])
    cfg = cfg.model_copy(update={"responder": cfg.responder.model_copy(update={
        "watchlist": wl, "state_dir": agencies.workdir / f"{name}_state", "session_log": None,
        "listen": "127.0.0.1:0"})})
    return start_responder(cfg)


@pytest.fixture
def three(agencies):
    started = {name: _responder(agencies, name, part)
               for name, part in (("alpha", slice(None)), ("beta", slice(0, None, 2)), ("gamma", slice(1, None, 2)))}
    lines = "".join(
        f'\n[[responders]]\nname = "{n}"\naddress = "127.0.0.1:{r.port}"\nserver_name = "agency-a"\n'
        for n, r in started.items()
    )
    text = agencies.requester_toml.read_text(encoding="utf-8")
    text = text.replace("[requester]\n", '[requester]\nsession_log = "b_state/sessions.db"\nchunk_elements = 4\n', 1)
    agencies.requester_toml.write_text(text + lines, encoding="utf-8")
    yield started
    for r in started.values():
        r.stop(grace=0)


def _single(agencies, port: int, tmp: Path) -> set[tuple[str, str]]:
    cfg = load_requester_config(agencies.requester_toml)
    run = run_match(cfg, agencies.workdir / "agency_b_records.csv", f"127.0.0.1:{port}", out=tmp)
    return {(h.record_id, h.case_ref) for h in run.result.hits}


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_three_responders_in_one_query_equal_three_single_queries(agencies, three, tmp_path):
    cfg = load_requester_config(agencies.requester_toml)
    out = tmp_path / "hits.csv"
    run = run_match_many(cfg, agencies.workdir / "agency_b_records.csv", cfg.select_responders("all"), out=out)
    assert run.exit_status == EXIT_ALL
    rows = _rows(out)
    assert tuple(rows[0]) == MULTI_HITS_COLUMNS
    for name, running in three.items():
        mine = {(r["record_id"], r["case_ref"]) for r in rows if r["responder"] == name}
        assert mine == _single(agencies, running.port, tmp_path / f"{name}.csv"), name
    # the demo's shared persons are split between beta and gamma: both found some, alpha all
    per = {n: sum(r["responder"] == n for r in rows) for n in three}
    assert per["beta"] > 0 and per["gamma"] > 0 and per["alpha"] >= max(per["beta"], per["gamma"])
    assert (out.stat().st_mode & 0o777) == 0o600


def test_a_responder_stopped_mid_session_is_reported_while_the_others_complete(agencies, three, tmp_path,
                                                                               monkeypatch):
    gamma = three["gamma"]
    midway, release = threading.Event(), threading.Event()
    base = RESPONDER_SESSIONS["ecdh"]

    class StallsOnGamma(base):  # type: ignore[misc, valid-type]
        def on_elements(self, elements, offset):
            if self.state is gamma.state and offset > 0:
                midway.set()
                release.wait(20)
            return super().on_elements(elements, offset)

    monkeypatch.setitem(RESPONDER_SESSIONS, "ecdh", StallsOnGamma)

    def stop_gamma_midway():
        assert midway.wait(20), "gamma's session never got going"
        stopper = threading.Thread(target=gamma.stop, kwargs={"grace": 0})
        stopper.start()
        threading.Timer(0.5, release.set).start()
        stopper.join(20)

    killer = threading.Thread(target=stop_gamma_midway)
    killer.start()
    cfg = load_requester_config(agencies.requester_toml)
    out = tmp_path / "hits.csv"
    run = run_match_many(cfg, agencies.workdir / "agency_b_records.csv", cfg.select_responders("all"), out=out)
    killer.join(30)
    assert run.exit_status == EXIT_PARTIAL
    assert run.outcomes["alpha"].ok and run.outcomes["beta"].ok
    failed = run.outcomes["gamma"]
    assert not failed.ok and failed.status in {"CANCELLED", "UNAVAILABLE"}, failed
    assert {r["responder"] for r in _rows(out)} == {"alpha", "beta"}
    # one start and one end row per responder session, the failure with its status
    ends = [r for r in session_log.rows(agencies.workdir / "b_state" / "sessions.db") if r["event"] == "end"]
    assert sorted(r["outcome"] for r in ends) == sorted(["OK", "OK", failed.status])


def test_none_answering_exits_with_none(agencies, three, tmp_path):
    for r in three.values():
        r.stop(grace=0)
    cfg = load_requester_config(agencies.requester_toml)
    run = run_match_many(cfg, agencies.workdir / "agency_b_records.csv", cfg.select_responders("beta,gamma"),
                         out=tmp_path / "hits.csv")
    assert run.exit_status == EXIT_NONE
    assert all(o.status == "UNAVAILABLE" for o in run.outcomes.values())


def test_unknown_responder_names_are_refused_with_the_known_ones(agencies, three):
    cfg = load_requester_config(agencies.requester_toml)
    with pytest.raises(ConfigError, match="unknown responder.*delta.*alpha, beta, gamma"):
        cfg.select_responders("alpha,delta")


def test_match_many_library_call(agencies, three):
    cfg = load_requester_config(agencies.requester_toml)
    tls = TlsFiles.load(cfg.tls.cert, cfg.tls.key, cfg.tls.ca)
    records = load_records(agencies.workdir / "agency_b_records.csv", cfg.records.csv_format(),
                           cfg.key_spec()).records
    clients = {n: MatchClient(f"127.0.0.1:{r.port}", tls=tls, server_name="agency-a", workers=1)
               for n, r in three.items()}
    try:
        outcomes = match_many(clients, records, cfg.key_spec())
    finally:
        for c in clients.values():
            c.close()
    assert list(outcomes) == ["alpha", "beta", "gamma"]
    assert all(o.ok for o in outcomes.values())
    assert len(outcomes["alpha"].result.hits) >= len(outcomes["beta"].result.hits)


def test_cli_match_peers_lists_each_responder_and_exits_3_when_one_is_down(agencies, three, tmp_path, capsys):
    from matcher.cli import main

    args = ["match", "--config", str(agencies.requester_toml), "--records",
            str(agencies.workdir / "agency_b_records.csv"), "--out", str(tmp_path / "hits.csv")]
    assert main([*args, "--peers", "all"]) == 0
    out = capsys.readouterr().out
    assert "alpha: OK" in out and "beta: OK" in out and "gamma: OK" in out and "3 of 3 responder(s)" in out
    three["beta"].stop(grace=0)
    assert main([*args, "--peers", "alpha,beta"]) == 3
    out = capsys.readouterr().out
    assert "alpha: OK" in out and "beta: FAILED UNAVAILABLE" in out and "1 of 2 responder(s)" in out
    assert main([*args, "--peers", "alpha", "--peer", "127.0.0.1:1"]) == 2
    assert main([*args, "--peers", "nobody"]) == 2
