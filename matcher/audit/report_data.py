"""What the audit report shows, gathered before any HTML is written: the config audit, the session log's
verification, and its sessions (``Session``, ``ReportData``, ``gather``)."""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from matcher.audit.config_audit import AuditReport, audit_config, read_raw
from matcher.errors import MatcherError
from matcher.storage import session_log

#: How a session ended, in words a non-engineer can read (gRPC status names from the log).
OUTCOME_WORDS = {
    "OK": "completed",
    "RESOURCE_EXHAUSTED": "refused: too large, too many at once, or daily budget spent",
    "PERMISSION_DENIED": "refused: certificate not on the allowlist",
    "FAILED_PRECONDITION": "refused: match keys or settings differ",
    "INVALID_ARGUMENT": "refused: malformed or repeated data",
    "DEADLINE_EXCEEDED": "stopped: took longer than allowed",
    "CANCELLED": "ended by the requester (cancelled or disconnected)",
    "INTERNAL": "failed: internal error (see the service's log)",
    "NO_END": "no end recorded (a crash, or still running)",
}
#: Outcomes that mean the responder said no (as opposed to completing, or the requester leaving).
#: How a session whose certificate was not recognised is shown (the log has no agency name for it).
UNKNOWN_PEER = "(unknown certificate)"
REFUSALS = {"RESOURCE_EXHAUSTED", "PERMISSION_DENIED", "FAILED_PRECONDITION", "INVALID_ARGUMENT"}


@dataclass
class Session:
    """One session as the log records it (no identity data: counts, names of agencies, outcome)."""

    session_id: str | None
    peer: str
    time: str
    protocol: str = ""
    request_size: int | None = None
    elements: int | None = None
    hit_count: int | None = None
    outcome: str = "NO_END"

    @property
    def day(self) -> date:
        return datetime.fromisoformat(self.time).astimezone(UTC).date()


@dataclass
class ReportData:
    """Everything the page shows, gathered before any HTML is written."""

    config: str
    role: str
    audit: AuditReport
    log_path: Path | None
    log_shown: str = ""  # the session log's path as the config names it
    verified: session_log.VerifyReport | None = None
    log_problem: str | None = None
    sessions: list[Session] = field(default_factory=list)
    retention_rows: int = 0
    budgets: dict[str, int | None] = field(default_factory=dict)
    since: str | None = None
    generated: str = ""


def _log_path(config_path: Path, raw: dict[str, Any], role: str) -> Path | None:
    settings = section if isinstance(section := raw.get(role), dict) else {}
    value = settings.get("session_log")
    if not isinstance(value, str) or not value:
        return None
    p = Path(value)
    return p if p.is_absolute() else (Path(config_path).parent / p).resolve()


def _budgets(raw: dict[str, Any]) -> dict[str, int | None]:
    peers = section if isinstance(section := raw.get("peers"), list) else []
    out: dict[str, int | None] = {}
    for p in peers:
        if isinstance(p, dict) and isinstance(p.get("name"), str):
            budget = p.get("daily_budget")
            out[p["name"]] = budget if isinstance(budget, int) and not isinstance(budget, bool) else None
    return out


def sessions_from_rows(rows: list[dict[str, Any]]) -> tuple[list[Session], int]:
    """Sessions from the log's rows (oldest first), and how many retention rows there are.

    A session is its ``end`` row merged with its ``start`` row; a start row without an end
    row is a session that was cut short (or still runs). A requester's start row carries
    no session id: it belongs to the next end row of the same peer that had no start row.
    """
    by_id: dict[str, Session] = {}
    pending: dict[str, list[Session]] = defaultdict(list)  # requester start rows awaiting their end row
    sessions: list[Session] = []
    retention = 0
    for r in rows:
        event = r.get("event")
        if event == "retention":
            retention += 1
            continue
        if event not in ("start", "end"):
            continue
        sid = r.get("session_id") if isinstance(r.get("session_id"), str) else None
        peer = str(r.get("peer") or "?")
        peer = UNKNOWN_PEER if peer == "?" else peer
        s = by_id.get(sid) if sid else None
        if s is None and event == "end" and pending[peer]:
            s = pending[peer].pop(0)
        if s is None:
            s = Session(sid, peer, str(r.get("time")))
            sessions.append(s)
            if event == "start" and sid is None:
                pending[peer].append(s)
        if sid:
            s.session_id = sid
            by_id[sid] = s
        s.protocol = str(r.get("protocol") or s.protocol)
        if isinstance(r.get("request_size"), int):
            s.request_size = r["request_size"]
        if event == "end":
            s.time = str(r.get("time") or s.time)
            s.outcome = str(r.get("outcome") or "UNKNOWN")
            s.elements = r.get("elements") if isinstance(r.get("elements"), int) else None
            s.hit_count = r.get("hit_count") if isinstance(r.get("hit_count"), int) else None
    return sorted(sessions, key=lambda s: s.time), retention


def gather(config_path: Path, anchor: tuple[int, str] | None = None, since: str | None = None,
           now: datetime | None = None) -> ReportData:
    """Audit the config, verify and read its session log. ConfigError when the config cannot be read at all."""
    raw = read_raw(Path(config_path))
    role = "responder" if "responder" in raw else "requester"
    audit = audit_config(Path(config_path))
    if now is None and os.environ.get("SOURCE_DATE_EPOCH", "").isdigit():  # reproducible output (docs sample)
        now = datetime.fromtimestamp(int(os.environ["SOURCE_DATE_EPOCH"]), UTC)
    data = ReportData(str(config_path), role, audit, _log_path(Path(config_path), raw, role), budgets=_budgets(raw),
                      since=since, generated=(now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M"))
    settings = section if isinstance(section := raw.get(role), dict) else {}
    data.log_shown = str(settings.get("session_log") or "")
    if data.log_path is None:
        data.log_problem = "This config keeps no session log, so there is nothing to show about sessions."
    elif not data.log_path.is_file():
        data.log_problem = f"The session log {data.log_path} does not exist yet (no session has been served)."
    else:
        try:
            data.verified = session_log.verify(data.log_path, anchor)
            data.sessions, data.retention_rows = sessions_from_rows(list(session_log.rows(data.log_path, since)))
        except MatcherError as exc:
            data.log_problem = f"The session log cannot be read: {exc}"
    return data
