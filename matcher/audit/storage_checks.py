"""Config audit findings on where identity data is read and recorded: the records database URL, the session log,
and the ``serve --insecure`` starts the log records."""

from __future__ import annotations

from pathlib import Path

from matcher.audit.findings import AuditReport


def _audit_insecure_runs(rep: AuditReport, role: str, settings: dict, base: Path) -> None:
    log = settings.get("session_log")
    if role != "responder" or not isinstance(log, str):
        return
    path = Path(log) if Path(log).is_absolute() else base / log
    if not path.exists():
        return
    from matcher.peer_auth import INSECURE_PEER
    from matcher.storage import session_log

    try:
        n = sum(1 for r in session_log.rows(path) if r.get("peer") == INSECURE_PEER and r.get("event") == "insecure")
    except Exception:
        return
    if n:
        rep.add("insecure-runs", "warning", f"the session log records {n} start(s) of `matcher serve --insecure` "
                "(plaintext, no peer authentication; loopback only, throw-away key epoch)",
                "make sure those were development runs; production runs never use --insecure",
                subject="session_log")


def _audit_records_source(rep: AuditReport, raw: dict) -> None:
    """A database URL with a password in it: the password sits in a config file that is copied and shown."""
    from matcher.identity.sql_source import has_password, mask_password

    table = raw.get("records")
    source = table.get("source") if isinstance(table, dict) else None
    if not isinstance(source, str):
        return
    rep.add("records-database", "info", f"records are read from the database {mask_password(source)}",
            subject="records.source")
    if has_password(source):
        rep.add("database-password-in-config", "warning",
                "the [records] source URL carries a password: it is readable by whoever can read the config, "
                "and ends up in copies, backups and tickets of it",
                "remove the password from the URL and give it to the service through the environment "
                "(PGPASSWORD), a ~/.pgpass file (mode 0600) or peer authentication over a local socket",
                subject="records.source")


def _audit_session_log(rep: AuditReport, role: str, settings: dict) -> None:
    log = settings.get("session_log")
    if log:
        days = settings.get("session_log_retention_days", 365)
        kept = f", kept {days} days" if role == "responder" else ""
        rep.add("session-log", "info", f"every session is recorded in the hash-chained log {log}{kept}; check it "
                "with `matcher audit-log verify`", subject="session_log")
    elif role == "responder":
        rep.add("no-session-log", "error", "no session log: sessions leave no tamper-evident record",
                'set [responder] session_log = "state/sessions.db"', subject="session_log")
    else:
        rep.add("no-session-log", "info", "this requester keeps no session log of its own (the responder logs "
                "every session)", 'optional: [requester] session_log = "state/sessions.db"', subject="session_log")
