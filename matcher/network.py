"""One query to many responders: ``matcher match --peers``.

The records are loaded and tokenised once; each selected ``[[responders]]`` entry
gets its own session (its own policy and key-spec check) on its own thread through
:func:`clients.match_many`. A responder that is down, refuses, or fails mid-session
is reported with its status while the others complete. One hits file names the
responder of every hit; the session log has a start and an end row per responder.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from clients import PeerOutcome, match_many
from clients.match_client import MatchClient, Progress
from matcher.config import RequesterConfig, ResponderPeer
from matcher.files import open_private
from matcher.identity.records import LoadResult, load_records
from matcher.parallel import Workers
from matcher.requester import client_for, records_input, session_options
from matcher.storage.session_log import SessionLog

#: exit status of ``matcher match --peers``: every responder answered / some did / none did
EXIT_ALL, EXIT_PARTIAL, EXIT_NONE = 0, 3, 1

MULTI_HITS_COLUMNS = ("responder", "record_id", "match_keys", "strength", "case_ref")


@dataclass
class NetworkRun:
    """What one query to many responders taught the requester."""

    loaded: LoadResult
    outcomes: dict[str, PeerOutcome]

    @property
    def exit_status(self) -> int:
        ok = sum(o.ok for o in self.outcomes.values())
        if ok == len(self.outcomes):
            return EXIT_ALL
        return EXIT_PARTIAL if ok else EXIT_NONE


def write_multi_hits(path: Path, outcomes: dict[str, PeerOutcome]) -> int:
    """``responder,record_id,match_keys,strength,case_ref``: one row per (responder, hit record, case reference).

    Each row has the keys that linked that record to that case reference and that pair's
    strength (as in the one-responder hits file, docs/hits-file.md). Rows are ordered by
    responder (in the order asked), then as each session reports its hits.
    The file is created 0600 whatever the umask (it names the agency's own persons).
    Returns the number of rows written.
    """
    rows = 0
    with open_private(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(MULTI_HITS_COLUMNS)
        for name, outcome in outcomes.items():
            if outcome.result is None:
                continue
            for h in outcome.result.hits:
                w.writerow([name, h.record_id, ";".join(h.match_keys), h.strength, h.case_ref])
                rows += 1
    return rows


def run_match_many(
    config: RequesterConfig,
    records_path: Path | None,
    responders: list[ResponderPeer],
    *,
    out: Path | None,
    rejects_path: Path | None = None,
    insecure: bool = False,
    progress: Callable[[str], Progress | None] | None = None,
) -> NetworkRun:
    """Load ``records_path`` (None: the config's database source) once, ask every responder in
    ``responders`` concurrently, write one hits file."""
    source, rejects = records_input(config, records_path, rejects_path)
    loaded = load_records(source, config.records.csv_format(), config.key_spec(), rejects_path=rejects)
    s = config.requester
    log = SessionLog(s.session_log) if s.session_log else None
    workers = Workers(s.workers, s.dask_scheduler, s.dask_tls)
    clients: dict[str, MatchClient] = {}
    options: dict[str, dict[str, object]] = {}
    try:
        for peer in responders:
            protocol, reveal = peer.protocol or s.protocol, peer.reveal or s.reveal
            peer_config = config.model_copy(
                update={"requester": s.model_copy(update={"protocol": protocol, "reveal": reveal})}
            )
            options[peer.name] = {"protocol": protocol, "reveal": reveal, **session_options(peer_config)}
            clients[peer.name] = client_for(
                config, peer.address, insecure=insecure, server_name=peer.server_name, workers=workers,
                pins=(peer.spki_sha256, peer.cert_sha256),
            )
        common = {p.name: dict(role="requester", peer=p.address, protocol=str(options[p.name]["protocol"]),
                               reveal=str(options[p.name]["reveal"]), config_fingerprint=config.fingerprint())
                  for p in responders}
        if log is not None:
            for name in clients:
                log.append(event="start", **common[name])
        started = time.monotonic()
        outcomes = match_many(clients, loaded.records, config.key_spec(), options=options, progress=progress)
        seconds = round(time.monotonic() - started, 3)
        if log is not None:
            for name, o in outcomes.items():
                res = o.result
                log.append(
                    event="end", session_id=res.session_id if res else None,
                    request_size=res.elements_sent if res else None, hit_count=res.hit_count if res else None,
                    outcome=o.status, status_code=_status_number(o.status), detail=o.detail, seconds=seconds,
                    **common[name],
                )
    finally:
        for client in clients.values():
            client.close()
        workers.close()
        if log is not None:
            log.close()
    if out is not None:
        write_multi_hits(out, outcomes)
    return NetworkRun(loaded, outcomes)


def _status_number(name: str) -> int:
    import grpc

    return getattr(grpc.StatusCode, name, grpc.StatusCode.UNKNOWN).value[0]
