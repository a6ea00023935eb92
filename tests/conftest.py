"""Shared fixtures: a throw-away PKI and responders started on loopback with real mTLS."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from matcher.certs import TestCA
from matcher.config import RequesterConfig, ResponderConfig, load_requester_config, load_responder_config
from matcher.demo import REQUESTER_TOML, RESPONDER_TOML, write_demo_files
from matcher.responder import RunningResponder, start_responder
from matcher.secrets_store import write_private


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
    from matcher.records import load_records

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


__all__ = ["Agencies", "REQUESTER_TOML", "RESPONDER_TOML", "write_cert"]
