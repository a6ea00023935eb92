"""Errors a person can act on: each names the cause and the fix, with the documented exit status (issue 12, item 7)."""

from __future__ import annotations

import socket

import pytest

from matcher.certs import TestCA
from matcher.cli import main
from matcher.errors import InputFileError
from matcher.identity.match_keys import KeySpec
from matcher.identity.records import CsvFormat, load_records
from tests.conftest import write_cert


def _policy(agencies, peer: str) -> int:
    return main(["policy", "--config", str(agencies.requester_toml), "--peer", peer])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_busy_port_exits_2_naming_the_address_and_the_setting(agencies, capsys):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        code = main(["serve", "--config", str(agencies.responder_toml), "--listen", f"127.0.0.1:{port}"])
    err = capsys.readouterr().err
    assert code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in err and "in use" in err and "listen" in err
    assert "Traceback" not in err


def test_a_second_responder_on_the_same_port_is_refused(agencies, start, capsys):
    running = start()
    code = main(["serve", "--config", str(agencies.responder_toml), "--listen", f"127.0.0.1:{running.port}"])
    assert code == 2 and f"cannot listen on 127.0.0.1:{running.port}" in capsys.readouterr().err


def test_a_wrong_port_says_could_not_connect(agencies, capsys):
    port = _free_port()
    assert _policy(agencies, f"127.0.0.1:{port}") == 1
    err = capsys.readouterr().err
    assert f"could not connect to 127.0.0.1:{port}" in err and "--peer" in err
    assert "ended the session" not in err


def test_a_responder_certificate_our_ca_does_not_trust_names_tls_ca(agencies, start, capsys):
    running = start()
    rogue = TestCA("rogue CA")
    (agencies.workdir / "certs" / "rogue-ca.pem").write_bytes(rogue.cert_pem)
    agencies.edit("requester", 'ca = "certs/ca.pem"', 'ca = "certs/rogue-ca.pem"')
    assert _policy(agencies, f"127.0.0.1:{running.port}") == 1
    err = capsys.readouterr().err
    assert "[tls] ca" in err and f"127.0.0.1:{running.port}" in err
    assert "BAD_SIGNATURE" not in err and "CERTIFICATE_VERIFY_FAILED" not in err and "Socket closed" not in err


def test_a_wrong_server_name_names_the_setting(agencies, start, capsys):
    running = start()
    agencies.edit("requester", 'server_name = "agency-a"', 'server_name = "agency-z"')
    assert _policy(agencies, f"127.0.0.1:{running.port}") == 1
    err = capsys.readouterr().err
    assert "server_name" in err and "agency-z" in err


def test_a_client_certificate_the_responder_does_not_trust_names_tls_cert(agencies, start, capsys):
    running = start()
    rogue = TestCA("rogue CA")
    write_cert(rogue, agencies.workdir / "certs", "agency-b")  # right name, CA the responder does not trust
    assert _policy(agencies, f"127.0.0.1:{running.port}") == 1
    err = capsys.readouterr().err
    assert "[tls] cert" in err and "Socket closed" not in err and "BAD_SIGNATURE" not in err


def test_policy_exits_1_when_the_key_specs_differ(agencies, start, capsys):
    running = start()
    assert _policy(agencies, f"127.0.0.1:{running.port}") == 0
    assert "same as ours" in capsys.readouterr().out
    agencies.edit("requester", 'names_year = ["metaphone(name_tokens)", "year_of_birth", "nationality"]', "")
    assert _policy(agencies, f"127.0.0.1:{running.port}") == 1
    captured = capsys.readouterr()
    assert "DIFFERS" in captured.out and "[match_keys]" in captured.err


def test_fingerprint_of_a_missing_file_is_a_clean_message(tmp_path, capsys):
    assert main(["fingerprint", "--config", str(tmp_path / "nope.toml")]) == 2
    err = capsys.readouterr().err
    assert "nope.toml" in err and "Traceback" not in err


def test_a_semicolon_file_read_as_one_column_suggests_the_delimiter(tmp_path):
    path = tmp_path / "records.csv"
    path.write_text("record_id;family_name;date_of_birth\nr1;Berg;1980-01-02\n", encoding="utf-8")
    spec = KeySpec.from_mapping("n1", {"name_dob": ["name_tokens", "date_of_birth"]})
    with pytest.raises(InputFileError) as err:
        load_records(path, CsvFormat(date_order="DMY"), spec)
    assert 'delimiter = ";"' in str(err.value) and "[records]" in str(err.value)
