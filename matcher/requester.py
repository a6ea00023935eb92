"""Running a requester: load the agency's records, match them against a responder, write hits."""

from __future__ import annotations

import contextlib
import csv
import gc
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from clients import Hit, MatchClient, MatchFailed, MatchResult, TlsFiles
from clients.match_client import Progress
from clients.sessions.ecdh import BlindAhead
from matcher.config import RequesterConfig
from matcher.errors import ConfigError, MatcherError, ResponderMisbehaved
from matcher.files import open_private
from matcher.grpc_status import status_code
from matcher.identity.conformance import require_conformant
from matcher.identity.records import LoadResult, load_records
from matcher.identity.sql_source import SqlSource
from matcher.parallel import Workers, gc_paused, short_gil_switch
from matcher.storage.secrets_store import check_private
from matcher.storage.session_log import SessionLog


def session_options(config: RequesterConfig) -> dict[str, object]:
    """Protocol-specific arguments for the requester half: keyed-hash needs the opt-in and the secret."""
    if config.requester.protocol == "keyed-hash":
        from matcher.config import require_keyed_hash_opt_in
        from matcher.storage.secrets_store import load_shared_secret

        require_keyed_hash_opt_in(config)
        return {"secret": load_shared_secret(config.keyed_hash)}
    if config.requester.protocol == "paillier":
        return {"key_bits": config.requester.paillier_key_bits}
    return {}


HITS_COLUMNS = ("record_id", "match_keys", "strength", "case_ref")


@dataclass
class RequesterRun:
    """One session from a records file: what was loaded (with its problems) and what the session found."""

    loaded: LoadResult
    result: MatchResult


def client_for(
    config: RequesterConfig,
    peer: str,
    *,
    insecure: bool = False,
    server_name: str | None = None,
    workers: Workers | None = None,
    pins: tuple[str | None, str | None] | None = None,
) -> MatchClient:
    """A MatchClient set up from the requester config's [tls] and [requester] tables.

    ``server_name`` overrides ``[requester] server_name`` (a [[responders]] entry's own);
    ``workers``: a pool to share between several clients (one per responder);
    ``pins``: (spki_sha256, cert_sha256) of this responder, instead of [requester]'s
    ``responder_spki_sha256`` / ``responder_cert_sha256``.
    """
    s = config.requester
    spki_pin, cert_pin = pins if pins is not None else (s.responder_spki_sha256, s.responder_cert_sha256)
    pool: Workers | int = workers if workers is not None else (
        Workers(s.workers, s.dask_scheduler, s.dask_tls) if s.dask_scheduler else s.workers
    )
    if insecure:
        if spki_pin or cert_pin:
            raise ConfigError("[requester] pins the responder (responder_spki_sha256 / responder_cert_sha256), "
                              "which cannot be checked with --insecure; drop --insecure or the pin")
        return MatchClient(
            peer, insecure=True, timeout=s.timeout_seconds, chunk_elements=s.chunk_elements, workers=pool,
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
        chunk_elements=s.chunk_elements, workers=pool, setup_cache=s.setup_cache,
        responder_spki_sha256=spki_pin, responder_cert_sha256=cert_pin,
    )


def write_hits(path: str | os.PathLike[str], hits: list[Hit]) -> None:
    """Write the hits file: ``record_id,match_keys,strength,case_ref``, one row per (record, case reference).

    ``match_keys`` are the keys that linked that record to that case reference,
    joined by ';' strongest first; ``strength`` is the strongest of them (key order
    in the config is strength order). UTF-8 without byte-order mark, CRLF line ends,
    fields quoted only when they hold a comma, a quote or a line break. The exact
    format is in docs/hits-file.md. The file names persons of interest, so it is
    created 0600 (written to a private temporary file, then renamed).
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open_private(tmp, "w", newline="", encoding="utf-8") as fh:  # names own persons: 0600
            w = csv.writer(fh, lineterminator="\r\n")
            w.writerow(HITS_COLUMNS)
            w.writerows([h.record_id, ";".join(h.match_keys), h.strength, h.case_ref] for h in hits)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def records_input(
    config: RequesterConfig,
    records_path: str | os.PathLike[str] | None,
    rejects_path: str | os.PathLike[str] | None = None,
) -> tuple[Path | SqlSource, Path]:
    """Where the requester's records come from (a CSV file, else the config's database source) and
    where their rejects go; ConfigError when there is neither a file nor a ``[records] source``."""
    if records_path is not None:
        path = Path(records_path)
        return path, Path(rejects_path) if rejects_path else path.with_name(path.stem + ".rejects.csv")
    source = config.records.sql_source()
    if source is None:
        raise ConfigError(
            "no records to match: pass --records FILE.csv, or read them from a database with "
            '[records] source = "postgresql+psycopg://..." and query or table in the requester config'
        )
    assert config.records.rejects is not None  # set by the config loader for database sources
    return source, Path(rejects_path) if rejects_path else config.records.rejects


TOKENS_FORMAT = "matcher-tokens/1"


def tokens_document(config: RequesterConfig, loaded: LoadResult) -> dict[str, object]:
    """The tokens of a loaded record file, for a requester client in another language (PROTOCOL §8).

    Carries what that client must check against the responder's policy: the key-spec
    fingerprint and the conformance digest of the installation that computed the tokens.
    """
    keyspec = config.key_spec()
    norm = require_conformant(keyspec.norm_version)
    return {
        "format": TOKENS_FORMAT,
        "norm_version": keyspec.norm_version,
        "key_spec_fingerprint": keyspec.fingerprint(),
        "norm_conformance_digest": norm.digest,
        "norm_libraries": norm.libraries,
        "match_keys": [[k.name, list(k.fields)] for k in keyspec.keys],
        "records": [
            {"record_id": r.record_id, "tokens": [[name, t.decode("utf-8")] for name, t in r.tokens]}
            for r in loaded.records
        ],
    }


def write_tokens(
    config: RequesterConfig, records_path: Path, out: Path, rejects_path: Path | None = None
) -> LoadResult:
    """Load ``records_path`` and write its tokens as JSON to ``out`` (mode 0600: tokens identify persons)."""
    require_conformant(config.key_spec().norm_version)  # before reading a single record
    rejects = rejects_path or records_path.with_name(records_path.stem + ".rejects.csv")
    loaded = load_records(records_path, config.records.csv_format(), config.key_spec(), rejects_path=rejects)
    with open_private(out, "w", encoding="utf-8") as fh:  # tokens identify persons: 0600
        json.dump(tokens_document(config, loaded), fh, ensure_ascii=False, separators=(",", ":"))
    return loaded


def _blind_ahead(config: RequesterConfig, client: MatchClient | None) -> BlindAhead | None:
    """A :class:`BlindAhead` for an ecdh session with the IFMA kernels on threads, else None."""
    s = config.requester
    if s.protocol != "ecdh" or s.dask_scheduler:
        return None
    return BlindAhead.for_pool(client.workers if client is not None else Workers(s.workers))


def run_match(
    config: RequesterConfig,
    records_path: str | os.PathLike[str] | None,
    peer: str,
    *,
    out: str | os.PathLike[str] | None,
    rejects_path: str | os.PathLike[str] | None = None,
    insecure: bool = False,
    progress: Progress | None = None,
    client: MatchClient | None = None,
) -> RequesterRun:
    """Load ``records_path``, run one session against ``peer``, write the hits file.

    ``records_path`` None: the records come from the config's database ``[records] source``.
    Dropped fields and rejected rows go to ``rejects_path`` (default
    ``RECORDS.rejects.csv`` beside the records, or ``[records] rejects``). ``client``: an open MatchClient to
    use (it stays open); by default one is made from the config and closed after.
    """
    source, rejects = records_input(config, records_path, rejects_path)
    # ecdh: the session key is drawn now and the tokens are blinded on the kernel threads
    # while the rest of the file is read (nothing is sent before the load is complete).
    ahead = _blind_ahead(config, client)
    # The kernel threads take the GIL at the start and end of every batch, during the load
    # (blinding) and the session (unblinding): with the 1 ms switch interval they wait less
    # for it while the parsing thread, then the main and gRPC threads, run Python (with
    # CPython's 5 ms, 13 of 51 batches of a 200k load were done at its end, 42 with 1 ms;
    # in the session about 2 % of a 1M match, docs/performance.md).
    with short_gil_switch() if ahead is not None else contextlib.nullcontext():
        # The cyclic GC stays paused from the load until the records are frozen out of its
        # sight: they live until the end and hold no cycles, and its passes over the millions
        # of objects a load leaves in the young generation took about 2 s of a 1M match.
        # Unfrozen after the session, into the oldest generation (no young pass walks them).
        with gc_paused():
            try:
                loaded = load_records(
                    source, config.records.csv_format(), config.key_spec(), rejects_path=rejects,
                    progress=(lambda n: progress("records read", n, 0)) if progress else None,
                    on_records=ahead.feed if ahead is not None else None,
                )
            except BaseException:
                if ahead is not None:
                    ahead.cancel()
                raise
            gc.freeze()
        options = session_options(config)
        if ahead is not None:
            options["ahead"] = ahead
        # An ecdh session with BlindAhead makes no cycles either (setup index, reply sets,
        # hits): the GC stays paused until its hits file is written (the first pass after it
        # walked all it still held, 0.14 s of a 1M match's serial tail). Not so a paillier
        # session: paused through it, 10k × 10k took 4-7 CPU-s more (docs/performance.md).
        try:
            with gc_paused() if ahead is not None else contextlib.nullcontext():
                return _session(config, loaded, peer, out=out, insecure=insecure, progress=progress,
                                client=client, options=options, ahead=ahead)
        finally:
            gc.unfreeze()


def _session(
    config: RequesterConfig, loaded: LoadResult, peer: str, *, out: str | os.PathLike[str] | None, insecure: bool,
    progress: Progress | None, client: MatchClient | None, options: dict[str, object], ahead: BlindAhead | None,
) -> RequesterRun:
    """run_match's session, with its session-log lines, then the hits file."""
    s = config.requester
    log = SessionLog(s.session_log) if s.session_log else None
    started = time.monotonic()
    common = dict(role="requester", peer=peer, protocol=s.protocol, reveal=s.reveal,
                  config_fingerprint=config.fingerprint())
    if log is not None:
        log.append(event="start", **common)
    detail: str | None
    outcome, code, detail, result = "CANCELLED", 1, "interrupted", None
    try:
        with contextlib.nullcontext(client) if client is not None else client_for(config, peer, insecure=insecure) as c:
            result = c.match(
                loaded.records,
                config.key_spec(),
                protocol=s.protocol,
                reveal=s.reveal,
                progress=progress,
                **options,
            )
        outcome, code, detail = "OK", 0, None
    except MatchFailed as exc:
        outcome, code, detail = exc.code.name, exc.code.value[0], exc.details
        raise
    except ResponderMisbehaved as exc:
        # The responder's replies failed the protocol's checks: no hit is written, and
        # the log names the responder as the cause, not a local or network failure.
        outcome, code, detail = "RESPONDER_MISBEHAVED", status_code(exc).value[0], str(exc)
        raise
    except MatcherError as exc:
        outcome, code, detail = exc.status, status_code(exc).value[0], str(exc)
        raise
    finally:
        if ahead is not None:
            ahead.cancel()  # no-op after a session that took every element
        if log is not None:
            log.append(
                event="end", session_id=result.session_id if result else None,
                request_size=result.elements_sent if result else None,
                hit_count=result.hit_count if result else None, outcome=outcome, status_code=code, detail=detail,
                seconds=round(time.monotonic() - started, 3), **common,
            )
            log.close()
    if out is not None and config.requester.reveal in ("requester", "both"):
        write_hits(Path(out), result.hits)
    return RequesterRun(loaded, result)
