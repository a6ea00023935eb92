"""Shared fixtures: a throw-away PKI and responders started on loopback with real mTLS."""

from __future__ import annotations

import contextlib
import csv
import functools
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pytest

from matcher.certs import TestCA
from matcher.config import RequesterConfig, ResponderConfig, load_requester_config, load_responder_config
from matcher.config_templates import REQUESTER_TOML, RESPONDER_TOML
from matcher.demo import write_demo_files
from matcher.server.responder import RunningResponder, start_responder
from matcher.storage.secrets_store import write_private
from tests.pg_server import postgres_url  # noqa: F401  (session fixture: a real PostgreSQL server)


@dataclass
class Agencies:
    """Demo-style files for agency A (responder) and B (requester) under ``workdir``."""

    workdir: Path
    responder_toml: Path
    requester_toml: Path

    def responder_config(self) -> ResponderConfig:
        return load_responder_config(self.responder_toml)

    def requester_config(self) -> RequesterConfig:
        return load_requester_config(self.requester_toml)

    def edit(self, which: str, old: str, new: str) -> None:
        path = self.responder_toml if which == "responder" else self.requester_toml
        text = path.read_text(encoding="utf-8")
        assert old in text, f"{old!r} not in {path.name}"
        path.write_text(text.replace(old, new, 1), encoding="utf-8")


def demo_token_overlap(agencies: Agencies) -> tuple[int, int]:
    """(distinct requester tokens that the responder also holds, distinct requester tokens) of the demo files."""
    from matcher.identity.records import load_records

    req, resp = agencies.requester_config(), agencies.responder_config()
    mine = {t for r in load_records(agencies.workdir / "agency_b_records.csv", req.records.csv_format(),
                                    req.key_spec()).records for _, t in r.tokens}
    theirs = {t for r in load_records(resp.responder.watchlist, resp.records.csv_format(), resp.key_spec(),
                                      require_case_ref=True).records for _, t in r.tokens}
    return len(mine & theirs), len(mine)


@pytest.fixture
def agencies(tmp_path: Path) -> Agencies:
    responder_toml, requester_toml = write_demo_files(tmp_path)
    return Agencies(tmp_path, responder_toml, requester_toml)


@pytest.fixture
def start(agencies: Agencies) -> Iterator[Callable[..., RunningResponder]]:
    """Start agency A's responder (from its current config); stopped after the test."""
    started: list[RunningResponder] = []

    def _start(**kwargs) -> RunningResponder:
        running = start_responder(agencies.responder_config(), **kwargs)
        started.append(running)
        return running

    yield _start
    for r in started:
        r.stop(grace=0)


def write_cert(ca: TestCA, out: Path, name: str) -> tuple[Path, Path]:
    issued = ca.issue(name)
    cert, key = out / f"{name}.pem", out / f"{name}.key"
    cert.write_bytes(issued.cert_pem)
    write_private(key, issued.key_pem)
    return cert, key


# -- no identity data, token, key or secret in any output ------------------------------------
#
# Every test that uses the `agencies` fixture (all end-to-end tests: responders, requesters,
# `matcher serve` subprocesses) is scanned after it ran: all logging records (any logger,
# any level, with tracebacks), the stdout/stderr and log output pytest captured in setup
# and call, the stderr of `matcher serve` subprocesses (see test_cli.served), and the
# state folder's session log (with its WAL). The test fails when any of them contains a
# demo identity value or case reference, a token, the epoch key, a TLS private key or a
# keyed-hash secret. Output a test reads itself through capsys/capfd is checked by that test.

IDENTITY_COLUMNS = {"first_name", "last_name", "dob", "doc_no", "case_id", "given", "surname", "birth_date",
                    "passport", "id", "person_id"}
_HEX_RUN = re.compile(r"[0-9a-f]{16,}")
#: process and thread ids, which are never identity data but can equal a 4-digit value of the demo
#: data (a pid of 2024 is a year of birth): the JSON logs' "pid" field and the thread id in gRPC's
#: own log prefix ("E1130 16:56:21.144584    2024 add_port.cc:83]")
_PROCESS_IDS = re.compile(r'"pid": \d+|^[diwef]\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ ', re.MULTILINE)


@functools.cache
def identity_values() -> frozenset[str]:
    """Every name, date, document number, record id and case reference of the demo data (>= 4 characters)."""
    values: set[str] = set()
    for name in ("agency_a_watchlist.csv", "agency_b_records.csv"):
        with resources.as_file(resources.files("matcher") / "demo_data" / name) as path:
            for row in csv.DictReader(path.open(encoding="utf-8-sig")):
                for col, v in row.items():
                    if col in IDENTITY_COLUMNS and v and len(v.strip()) >= 4:
                        values.add(v.strip())
                        values.update(w for w in v.replace("-", " ").split() if len(w) >= 4)
    return frozenset(values)


def secrets_of(workdir: Path) -> list[tuple[str, str]]:
    """What must never be printed: the epoch key, TLS private keys, keyed-hash secrets (as found in files)."""
    import json

    found: list[tuple[str, str]] = []
    for key_file in workdir.rglob("epoch_key.json"):
        with contextlib.suppress(OSError, ValueError, KeyError):
            found.append(("epoch key", json.loads(key_file.read_text())["key"]))
    for pem in workdir.rglob("*.key"):
        body = [ln for ln in pem.read_text(errors="replace").splitlines() if ln and not ln.startswith("-----")]
        # the first line is mostly the key type's ASN.1 header, the same in every key
        found += [(f"TLS private key {pem.name}", ln) for ln in body[1:] if len(ln) >= 24]
    for secret in workdir.rglob("*.secret"):
        text = secret.read_text(errors="replace").strip()
        if len(text) >= 16:
            found.append((f"keyed-hash secret {secret.name}", text))
    return found


@functools.cache
def _standalone(value: str) -> re.Pattern[str]:
    return re.compile(r"(?<![^\W_])" + re.escape(value) + r"(?![^\W_])")


def leaks_in(text: str, workdir: Path | None = None) -> list[str]:
    """What of the above occurs in ``text`` (descriptions only: the values are not repeated)."""
    problems = [what for what, value in (secrets_of(workdir) if workdir else []) if value in text]
    folded = _HEX_RUN.sub(" ", text.casefold())  # session ids, hashes: random hex may contain "3001"
    folded = _PROCESS_IDS.sub(" ", folded)
    # A value counts where it stands alone (not inside a longer word or number): a random
    # port such as 40555 or a timestamp must not read as the document fragment "0555".
    problems += [f"identity value of {len(v)} characters" for v in identity_values()
                 if v.casefold() in folded and _standalone(v.casefold()).search(folded)]
    if "matcher/v1/n1/" in folded or "matcher/v1/n2/" in folded:
        problems.append("a token (matcher/v1/<norm>/...)")
    return problems


class _AllRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:  # a record that cannot be formatted is still scanned raw
            self.lines.append(repr(record.msg) + repr(record.args))


#: extra text a fixture collected during a test (e.g. a subprocess's stderr), by test node id
EXTRA_OUTPUT: dict[str, list[str]] = {}


@pytest.fixture(autouse=True)
def _collect_logs(request):
    if "agencies" not in request.fixturenames:
        yield
        return
    handler = _AllRecords()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    request.node.matcher_log_lines = handler.lines
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when != "teardown" or "agencies" not in getattr(item, "fixturenames", ()):
        return
    funcargs = getattr(item, "funcargs", {})
    agencies = funcargs.get("agencies")
    workdir = agencies.workdir if agencies is not None else None
    texts = list(getattr(item, "matcher_log_lines", []))
    texts += [content for _when, _key, content in getattr(item, "_report_sections", [])]
    texts += EXTRA_OUTPUT.pop(item.nodeid, [])
    if workdir is not None:
        for db in workdir.rglob("sessions.db*"):
            texts.append(db.read_bytes().decode("latin-1"))
    problems = leaks_in("\n".join(texts), workdir)
    if problems and report.passed:
        report.outcome = "failed"
        report.longrepr = (
            "output of this test (logs, captured stdout/stderr, session log) contains: "
            + "; ".join(sorted(set(problems)))
        )


__all__ = ["Agencies", "REQUESTER_TOML", "RESPONDER_TOML", "write_cert"]


def norm_digest(norm_version: str = "n2") -> str:
    """This installation's normalisation conformance digest (what a Hello must announce)."""
    from matcher.identity.conformance import conformance

    return conformance(norm_version).digest
