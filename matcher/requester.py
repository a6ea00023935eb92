"""Running a requester: load the agency's records, match them against a responder, write hits."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from clients import Hit, MatchClient, MatchResult, TlsFiles
from clients.match_client import Progress
from matcher.config import RequesterConfig
from matcher.errors import ConfigError
from matcher.records import LoadResult, load_records
from matcher.secrets_store import check_private

HITS_COLUMNS = ("record_id", "match_keys", "case_ref")


@dataclass
class RequesterRun:
    loaded: LoadResult
    result: MatchResult


def client_for(config: RequesterConfig, peer: str, *, insecure: bool = False) -> MatchClient:
    """A MatchClient set up from the requester config's [tls] and [requester] tables."""
    s = config.requester
    if insecure:
        return MatchClient(peer, insecure=True, timeout=s.timeout_seconds, chunk_elements=s.chunk_elements)
    if config.tls is None:
        raise ConfigError("no [tls] table: mutual TLS needs cert, key and ca (or --insecure for development)")
    try:
        check_private(config.tls.key)
        tls = TlsFiles.load(config.tls.cert, config.tls.key, config.tls.ca)
    except OSError as exc:
        raise ConfigError(f"cannot read TLS file: {exc}") from None
    return MatchClient(
        peer, tls=tls, server_name=s.server_name, timeout=s.timeout_seconds, chunk_elements=s.chunk_elements
    )


def write_hits(path: Path, hits: list[Hit]) -> None:
    """``record_id,match_keys,case_ref``, one row per hit record, keys joined by ';' (strongest first)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(HITS_COLUMNS)
        for h in hits:
            w.writerow([h.record_id, ";".join(h.match_keys), h.case_ref])


def run_match(
    config: RequesterConfig,
    records_path: Path,
    peer: str,
    *,
    out: Path | None,
    rejects_path: Path | None = None,
    insecure: bool = False,
    progress: Progress | None = None,
) -> RequesterRun:
    """Load ``records_path``, run one session against ``peer``, write the hits file."""
    rejects = rejects_path or records_path.with_name(records_path.stem + ".rejects.csv")
    loaded = load_records(records_path, config.records.csv_format(), config.key_spec(), rejects_path=rejects)
    with client_for(config, peer, insecure=insecure) as client:
        result = client.match(
            loaded.records,
            config.key_spec(),
            protocol=config.requester.protocol,
            reveal=config.requester.reveal,
            progress=progress,
            options=(
                {"key_bits": config.requester.paillier_key_bits, "workers": config.requester.workers}
                if config.requester.protocol == "paillier" else None
            ),
        )
    if out is not None and config.requester.reveal == "requester":
        write_hits(out, result.hits)
    return RequesterRun(loaded, result)
