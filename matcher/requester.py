"""Running a requester: load the agency's records, match them against a responder, write hits."""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path

from clients import Hit, MatchClient, MatchFailed, MatchResult, TlsFiles
from clients.match_client import Progress
from matcher.config import RequesterConfig
from matcher.errors import ConfigError, MatcherError
from matcher.grpc_status import status_code
from matcher.parallel import Workers
from matcher.identity.records import LoadResult, load_records
from matcher.files import open_private
from matcher.storage.secrets_store import check_private
from matcher.storage.session_log import SessionLog


def session_options(config: RequesterConfig) -> dict[str, object]:
    """Protocol-specific arguments for the requester half: keyed-hash needs the opt-in and the secret."""
    if config.requester.protocol == "keyed-hash":
        from matcher.server.responder import require_keyed_hash_opt_in
        from matcher.storage.secrets_store import load_shared_secret

        require_keyed_hash_opt_in(config)
        return {"secret": load_shared_secret(config.keyed_hash)}
    if config.requester.protocol == "paillier":
        return {"key_bits": config.requester.paillier_key_bits}
    return {}


HITS_COLUMNS = ("record_id", "match_keys", "strength", "case_ref")


@dataclass
class RequesterRun:
    loaded: LoadResult
    result: MatchResult


def client_for(
    config: RequesterConfig,
    peer: str,
    *,
    insecure: bool = False,
    server_name: str | None = None,
    workers: Workers | None = None,
) -> MatchClient:
    """A MatchClient set up from the requester config's [tls] and [requester] tables.

    ``server_name`` overrides ``[requester] server_name`` (a [[responders]] entry's own);
    ``workers``: a pool to share between several clients (one per responder).
    """
    s = config.requester
    if workers is None:
        workers = Workers(s.workers, s.dask_scheduler) if s.dask_scheduler else s.workers
    if insecure:
        return MatchClient(
            peer, insecure=True, timeout=s.timeout_seconds, chunk_elements=s.chunk_elements, workers=workers,
            setup_cache=s.setup_cache,
        )
    if config.tls is None:
        raise ConfigError("no [tls] table: mutual TLS needs cert, key and ca (or --insecure for development)")
    try:
        check_private(config.tls.key)
        tls = TlsFiles.load(config.tls.cert, config.tls.key, config.tls.ca)
    except OSError as exc:
        raise ConfigError(f"cannot read TLS file: {exc}") from None
    return MatchClient(
        peer, tls=tls, server_name=server_name or s.server_name, timeout=s.timeout_seconds,
        chunk_elements=s.chunk_elements, workers=workers, setup_cache=s.setup_cache,
    )


def write_hits(path: Path, hits: list[Hit]) -> None:
    """``record_id,match_keys,strength,case_ref``, one row per hit record.

    ``match_keys`` are all keys that matched, joined by ';' strongest first;
    ``strength`` is the strongest of them (key order in the config is strength order).
    """
    with open_private(path, "w", newline="", encoding="utf-8") as fh:  # names own persons: 0600
        w = csv.writer(fh)
        w.writerow(HITS_COLUMNS)
        for h in hits:
            w.writerow([h.record_id, ";".join(h.match_keys), h.match_keys[0] if h.match_keys else "", h.case_ref])


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
    loaded = load_records(
        records_path, config.records.csv_format(), config.key_spec(), rejects_path=rejects,
        progress=(lambda n: progress("records read", n, 0)) if progress else None,
    )
    s = config.requester
    log = SessionLog(s.session_log) if s.session_log else None
    started = time.monotonic()
    common = dict(role="requester", peer=peer, protocol=s.protocol, reveal=s.reveal,
                  config_fingerprint=config.fingerprint())
    if log is not None:
        log.append(event="start", **common)
    outcome, code, detail, result = "CANCELLED", 1, "interrupted", None
    try:
        with client_for(config, peer, insecure=insecure) as client:
            result = client.match(
                loaded.records,
                config.key_spec(),
                protocol=s.protocol,
                reveal=s.reveal,
                progress=progress,
                **session_options(config),
            )
        outcome, code, detail = "OK", 0, None
    except MatchFailed as exc:
        outcome, code, detail = exc.code.name, exc.code.value[0], exc.details
        raise
    except MatcherError as exc:
        outcome, code, detail = exc.status, status_code(exc).value[0], str(exc)
        raise
    finally:
        if log is not None:
            log.append(
                event="end", session_id=result.session_id if result else None,
                request_size=result.elements_sent if result else None,
                hit_count=result.hit_count if result else None, outcome=outcome, status_code=code, detail=detail,
                seconds=round(time.monotonic() - started, 3), **common,
            )
            log.close()
    if out is not None and config.requester.reveal in ("requester", "both"):
        write_hits(out, result.hits)
    return RequesterRun(loaded, result)
