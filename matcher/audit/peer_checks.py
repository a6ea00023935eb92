"""Config audit findings on who may ask and how much: TLS and its key, [[peers]] and their bindings and budgets,
session limits, the Dask cluster, the requester's pin of the responder, key rotation, the metrics endpoint."""

from __future__ import annotations

import stat
from pathlib import Path

from matcher.audit.findings import AuditReport


def _audit_tls(rep: AuditReport, raw: dict, base: Path) -> None:
    tls = raw.get("tls")
    if not isinstance(tls, dict):
        rep.add("tls-disabled", "error", "there is no [tls] table, so there is no mutual TLS: traffic is "
                "unencrypted and peers are not authenticated (the service would only run with --insecure)",
                "add [tls] with cert, key and ca (see README, 'Certificates')", subject="tls")
        return
    rep.add("tls", "info", "mutual TLS: this agency presents its certificate and accepts only peers whose "
            "certificate chains to the configured CA", subject="tls")
    key = tls.get("key")
    if isinstance(key, str):
        kp = Path(key) if Path(key).is_absolute() else base / key
        if kp.exists() and stat.S_IMODE(kp.stat().st_mode) & 0o077:
            rep.add("tls-key-readable", "error", f"the TLS private key {kp} can be read by other users",
                    f"chmod 600 {kp}", subject="tls.key")


def _bundle_size(raw: dict, base: Path) -> int | None:
    """How many CA certificates the [tls] ca bundle holds (None when it cannot be read here)."""
    tls = raw.get("tls")
    ca = tls.get("ca") if isinstance(tls, dict) else None
    if not isinstance(ca, str):
        return None
    path = Path(ca) if Path(ca).is_absolute() else base / ca
    try:
        return path.read_bytes().count(b"-----BEGIN CERTIFICATE-----")
    except OSError:
        return None


def _audit_peers(rep: AuditReport, raw: dict, base: Path) -> None:
    peers = [p for p in raw.get("peers", []) if isinstance(p, dict)] if isinstance(raw.get("peers"), list) else []
    if not peers:
        rep.add("no-peer-allowlist", "error", "no [[peers]]: there is no allowlist of agencies that may ask",
                "add one [[peers]] table per requester agency (name, san or common_name, ca_sha256, daily_budget)",
                subject="peers")
        return
    cas = _bundle_size(raw, base)
    for p in peers:
        name = str(p.get("name", "?"))
        budget, cap = p.get("daily_budget"), p.get("max_set_size")
        who = (f"subjectAltName {p.get('san')!r}" if p.get("san") else
               f"certificate CN {p.get('common_name')!r}" if p.get("common_name") else "its key pin")
        if p.get("cert_sha256"):
            bound = "pinned to one certificate"
        elif p.get("spki_sha256"):
            bound = "pinned to one key"
        elif p.get("ca_sha256") or p.get("ca"):
            bound = "issued by the named CA"
        else:
            bound = "from the only CA of the bundle" if cas == 1 else "from ANY CA of the bundle"
        rep.add("peer", "info", f"may ask as {who} ({bound}); daily budget "
                f"{budget if budget else 'none'} tokens; per-session limit {cap if cap else 'max_request_size'}; "
                f"at most {p.get('max_sessions') or 'max_sessions_per_peer'} concurrent sessions", subject=name)
        if not (p.get("ca_sha256") or p.get("ca") or p.get("spki_sha256") or p.get("cert_sha256")):
            rep.add("peer-not-bound", "error" if cas and cas > 1 else "warning",
                    f"peer {name} is identified by its name alone: any CA of the [tls] ca bundle could issue a "
                    f"certificate with that name and be served as {name}"
                    + (" (today the bundle holds one CA, so the service accepts it)" if cas == 1 else
                       " (the service refuses to start with several CAs and no binding)" if cas else ""),
                    "bind it: ca_sha256 = \"<SHA-256 of the issuing CA certificate>\" in its [[peers]] table, or "
                    "pin its key with spki_sha256", subject=name)
        if not p.get("san") and p.get("common_name") and not (p.get("spki_sha256") or p.get("cert_sha256")):
            rep.add("peer-cn-only", "info", f"peer {name} is named by its subject CN; a subjectAltName (san) is "
                    "the name TLS itself checks and is preferred", subject=name)
        if not budget:
            rep.add("no-peer-budget", "warning", f"peer {name} has no daily budget: it could test an unlimited "
                    "number of guessed persons per day", "set daily_budget (tokens per UTC day) in its [[peers]] "
                    "table", subject=name)


def _audit_server_limits(rep: AuditReport, settings: dict) -> None:
    total = settings.get("max_sessions", 64)
    per_peer = settings.get("max_sessions_per_peer", 8)
    hello = settings.get("hello_timeout_seconds", 10)
    rep.add("session-limits", "info", f"at most {total} concurrent sessions, {per_peer} per peer; a session that "
            f"sends no Hello within {hello} s is ended; only [[peers]] reach any service but health checks",
            subject="max_sessions")
    if isinstance(per_peer, int) and isinstance(total, int) and per_peer >= total:
        rep.add("per-peer-cap-is-total", "warning", f"max_sessions_per_peer ({per_peer}) is not below max_sessions "
                f"({total}): one peer can hold every session slot", "set max_sessions_per_peer below max_sessions",
                subject="max_sessions_per_peer")


def _audit_dask(rep: AuditReport, role: str, settings: dict) -> None:
    from matcher.parallel import dask_address_problem

    address = settings.get("dask_scheduler")
    if not isinstance(address, str) or not address:
        return
    problem = dask_address_problem(address, settings.get("dask_tls") if isinstance(settings.get("dask_tls"), dict)
                                   else None)
    if problem:
        rep.add("dask-plaintext", "error", problem, f"use a tls:// scheduler and set [{role}.dask_tls] ca, cert "
                "and key", subject="dask_scheduler")
    else:
        rep.add("dask", "info", f"batch kernels (which carry key material) run on the Dask cluster at {address}",
                subject="dask_scheduler")


def _audit_responder_pin(rep: AuditReport, role: str, settings: dict) -> None:
    if role != "requester":
        return
    if settings.get("responder_spki_sha256") or settings.get("responder_cert_sha256"):
        rep.add("responder-pinned", "info", "the responder must prove it holds the pinned key before any data is "
                "sent", subject="responder_spki_sha256")
    else:
        rep.add("responder-not-pinned", "info", "the responder is trusted by its certificate's CA and name only; "
                "pinning its key (responder_spki_sha256) protects against another certificate of a trusted CA",
                subject="responder_spki_sha256")


def _audit_rotation(rep: AuditReport, raw: dict, settings: dict) -> None:
    days = settings.get("key_rotation_days", 30)
    bound = (raw.get("audit") or {}).get("max_key_rotation_days", 90) if isinstance(raw.get("audit"), dict) else 90
    rep.add("key-rotation", "info", f"the responder's matching key is replaced every {days} day(s); a requester "
            "cannot combine answers across epochs", subject="key_rotation_days")
    if isinstance(days, int | float) and isinstance(bound, int | float) and days > bound:
        rep.add("key-rotation-too-long", "warning", f"key_rotation_days = {days} is longer than the bound of "
                f"{bound} days ([audit] max_key_rotation_days)", f"set key_rotation_days to {bound} or less",
                subject="key_rotation_days")


def _audit_metrics(rep: AuditReport, raw: dict) -> None:
    table = raw.get("metrics")
    if not isinstance(table, dict):
        return
    listen = str(table.get("listen", "127.0.0.1:9464"))
    host = listen.rpartition(":")[0].strip("[]")
    rep.add("metrics-endpoint", "info", f"monitoring figures (session counts, sizes, budgets left, durations; no "
            f"identity data) are served over plain HTTP at {listen}", subject="metrics")
    if host not in ("127.0.0.1", "localhost", "::1"):
        rep.add("metrics-exposed", "warning", f"the monitoring endpoint listens on {host or 'every interface'}: "
                "anyone who can reach it sees which agencies ask how often and how much",
                'listen on loopback ("127.0.0.1:9464") or only on the monitoring network, behind a firewall',
                subject="metrics")
