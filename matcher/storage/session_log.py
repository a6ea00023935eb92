"""The tamper-evident session log (DESIGN §4): one SQLite file, rows hash-chained.

Every session a responder serves is written twice: a ``start`` row when its Hello
has been read and an ``end`` row with its outcome. A session whose ``end`` row is
missing was cut short by a crash (or is still running). Each row stores

    row_hash = SHA-256(canonical JSON of the row's fields, its ``seq`` and ``prev_hash``)

and ``prev_hash`` is the previous row's ``row_hash`` (the first row's is
:data:`GENESIS`). A one-row ``head`` table, updated in the same transaction as each
append, holds the last row's ``seq`` and hash and the number of rows, so deleting
the newest rows is detected too.

Limits, stated honestly: the chain and the head are not keyed. They detect edits,
deletions and reordering made by anyone who does not rewrite the whole chain from
the changed row on *and* the head. Someone with write access to the file who does
exactly that (a deliberate forgery with this module's code) is not detected by
``verify`` alone. Against that, write the head hash down elsewhere (``matcher
audit-log head DB`` prints it; a ticket, another agency, paper) and later pass it
as ``--anchor SEQ:HASH``: a chain that no longer contains that exact row fails.

Retention: rows older than the retention period are removed on open; the removal
is itself appended as a ``retention`` row and the hash of the last removed row is
kept in ``head.base_hash``, so the remaining chain still verifies from there on.

What is written: times, the peer agency's configured name, protocol, reveal mode,
sizes, counts, outcome, gRPC status and the config fingerprint. Never identity data,
tokens, tags, keys or case references: :meth:`SessionLog.append` accepts only the
fields of :data:`FIELDS` and only ``str``/``int``/``float``/``None`` values.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from matcher.errors import ConfigError, LogTampered

GENESIS = "0" * 64
SCHEMA_VERSION = 1

#: The only fields a row may carry (besides seq, prev_hash, row_hash). None of them
#: may hold identity data, tokens, tags, keys or case references.
FIELDS: tuple[str, ...] = (
    "time",  # UTC ISO 8601 of this row
    "event",  # "start" | "end" | "retention"
    "session_id",
    "role",  # "responder" | "requester"
    "peer",  # the configured agency name (or the responder address for a requester)
    "protocol",
    "reveal",
    "request_size",  # elements announced in the Hello
    "elements",  # elements actually evaluated
    "hit_count",  # hit tokens this side knows of (None when the protocol hides them from it)
    "outcome",  # "OK" or the gRPC status name
    "status_code",  # numeric gRPC status (0 = OK)
    "detail",  # the error message (messages never carry identity data)
    "seconds",
    "config_fingerprint",
)

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS sessions (
    seq INTEGER PRIMARY KEY,
    {", ".join(FIELDS)},  -- no declared type: values are stored exactly as hashed
    prev_hash TEXT NOT NULL,
    row_hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    row_hash TEXT NOT NULL,
    count INTEGER NOT NULL,
    base_seq INTEGER NOT NULL,
    base_hash TEXT NOT NULL,
    schema_version INTEGER NOT NULL
);
"""


def utc_now() -> str:
    """Now, UTC, ISO 8601 with seconds (the log's time format)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def row_digest(seq: int, fields: Mapping[str, object], prev_hash: str) -> str:
    """SHA-256 (hex) of a row's canonical content: every field, its seq and the previous hash."""
    body = {f: fields.get(f) for f in FIELDS}
    body["seq"] = seq
    body["prev_hash"] = prev_hash
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class VerifyReport:
    """Result of :func:`verify`: ``ok``, rows checked, the head, and the first problem."""

    ok: bool
    rows: int
    head_seq: int
    head_hash: str
    bad_seq: int | None = None
    reason: str = ""


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    return conn


class SessionLog:
    """Append-only, hash-chained session log in one SQLite file (thread-safe).

    Appends run in ``BEGIN IMMEDIATE`` transactions (several processes may share
    the file) in WAL mode with full sync, so a crash leaves either the whole row or
    none of it, and the chain verifies either way.
    """

    def __init__(self, path: Path, retention_days: float | None = None) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = _connect(self.path)
            self._conn.executescript(_SCHEMA)
            self._conn.execute("BEGIN IMMEDIATE")
            if self._conn.execute("SELECT COUNT(*) FROM head").fetchone()[0] == 0:
                self._conn.execute(
                    "INSERT INTO head (id, seq, row_hash, count, base_seq, base_hash, schema_version) "
                    "VALUES (1, 0, ?, 0, 0, ?, ?)",
                    (GENESIS, GENESIS, SCHEMA_VERSION),
                )
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise ConfigError(f"session log {self.path} cannot be opened: {exc}") from None
        self._lock = threading.Lock()
        if retention_days is not None:
            self.purge(retention_days)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def append(self, **fields: object) -> int:
        """Append one row with ``fields`` (names from :data:`FIELDS`); returns its seq."""
        unknown = set(fields) - set(FIELDS)
        if unknown:
            raise ValueError(f"not a session-log field: {', '.join(sorted(unknown))}")
        for name, value in fields.items():
            if value is not None and not isinstance(value, str | int | float):
                raise TypeError(f"session-log field {name} must be str, int, float or None")
        fields.setdefault("time", utc_now())
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                head_seq, head_hash, count = conn.execute("SELECT seq, row_hash, count FROM head").fetchone()
                seq = head_seq + 1
                digest = row_digest(seq, fields, head_hash)
                conn.execute(
                    f"INSERT INTO sessions (seq, {', '.join(FIELDS)}, prev_hash, row_hash) "
                    f"VALUES (?, {', '.join('?' for _ in FIELDS)}, ?, ?)",
                    (seq, *(fields.get(f) for f in FIELDS), head_hash, digest),
                )
                conn.execute("UPDATE head SET seq = ?, row_hash = ?, count = ?", (seq, digest, count + 1))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return seq

    def purge(self, retention_days: float, now: datetime | None = None) -> int:
        """Remove rows older than ``retention_days``; the removal is logged as a row. Returns rows removed."""
        cutoff = ((now or datetime.now(UTC)) - timedelta(days=retention_days)).isoformat(timespec="seconds")
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                old = conn.execute(
                    "SELECT seq, row_hash FROM sessions WHERE time < ? ORDER BY seq DESC LIMIT 1", (cutoff,)
                ).fetchone()
                head_seq = conn.execute("SELECT seq FROM head").fetchone()[0]
                if old is None or old[0] == head_seq:  # keep at least the newest row (the head)
                    conn.execute("ROLLBACK")
                    return 0
                last_seq, last_hash = old
                removed = conn.execute("DELETE FROM sessions WHERE seq <= ?", (last_seq,)).rowcount
                conn.execute(
                    "UPDATE head SET count = count - ?, base_seq = ?, base_hash = ?", (removed, last_seq, last_hash)
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        self.append(event="retention", detail=f"removed {removed} row(s) up to seq {last_seq} (older than {cutoff})")
        return removed


def _open_readonly(path: Path) -> sqlite3.Connection:
    if not Path(path).is_file():
        raise ConfigError(f"{path}: no such session log")
    try:
        conn = sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True, timeout=30)
        conn.execute("SELECT 1 FROM head")
        return conn
    except sqlite3.Error as exc:
        raise ConfigError(f"{path} is not a matcher session log: {exc}") from None


def verify(path: Path, anchor: tuple[int, str] | None = None) -> VerifyReport:
    """Check every row's hash, the chain, the seq order and the head; name the first bad row.

    ``anchor`` = (seq, row_hash) written down earlier: that row must still exist with
    that hash (catches a rewritten chain, see the module docstring).
    """
    conn = _open_readonly(path)
    try:
        head = conn.execute("SELECT seq, row_hash, count, base_seq, base_hash FROM head").fetchone()
        if head is None:
            return VerifyReport(False, 0, 0, "", 0, "the head record is missing")
        head_seq, head_hash, count, base_seq, base_hash = head
        cols = ", ".join(FIELDS)
        cur = conn.execute(f"SELECT seq, {cols}, prev_hash, row_hash FROM sessions ORDER BY rowid")
        expect_seq, expect_prev, n = base_seq + 1, base_hash, 0
        anchor_seen = anchor is None
        for row in cur:
            seq, values, prev_hash, stored = row[0], row[1 : 1 + len(FIELDS)], row[-2], row[-1]
            n += 1
            bad = lambda why: VerifyReport(False, n, head_seq, head_hash, seq, why)  # noqa: E731
            if seq != expect_seq:
                return bad(f"expected row {expect_seq} here: rows before it were deleted or rows reordered")
            if prev_hash != expect_prev:
                return bad("its link to the previous row is broken (a row before it was edited or deleted)")
            if row_digest(seq, dict(zip(FIELDS, values)), prev_hash) != stored:
                return bad("its content does not match its hash (the row was edited)")
            if anchor is not None and seq == anchor[0]:
                if stored != anchor[1]:
                    return bad("it differs from the anchor written down earlier (the chain was rewritten)")
                anchor_seen = True
            expect_seq, expect_prev = seq + 1, stored
        if expect_seq - 1 != head_seq or expect_prev != head_hash or n != count:
            return VerifyReport(
                False, n, head_seq, head_hash, expect_seq,
                f"the head says {count} row(s) up to row {head_seq}, but the log ends before: "
                "the newest rows were deleted",
            )
        if not anchor_seen:
            return VerifyReport(False, n, head_seq, head_hash, anchor[0] if anchor else None,
                                "the anchored row is no longer in the log")
        return VerifyReport(True, n, head_seq, head_hash)
    finally:
        conn.close()


def rows(path: Path, since: str | None = None) -> Iterator[dict[str, object]]:
    """The log's rows as dicts (``seq`` and the :data:`FIELDS`), oldest first, optionally from ``since`` on."""
    conn = _open_readonly(path)
    try:
        sql = f"SELECT seq, {', '.join(FIELDS)}, row_hash FROM sessions"
        args: tuple = ()
        if since:
            sql += " WHERE time >= ?"
            args = (since,)
        for row in conn.execute(sql + " ORDER BY seq", args):
            yield dict(zip(("seq", *FIELDS, "row_hash"), row))
    finally:
        conn.close()


def parse_anchor(text: str) -> tuple[int, str]:
    """``SEQ:HASH`` as printed by ``matcher audit-log head``."""
    seq, _, digest = text.partition(":")
    if not seq.isdigit() or len(digest) != 64:
        raise ConfigError(f"anchor {text!r} is not SEQ:HASH (as printed by `matcher audit-log head`)")
    return int(seq), digest.lower()


def raise_if_bad(report: VerifyReport) -> None:
    """Raise :class:`LogTampered` for a failed report (for callers that prefer exceptions)."""
    if not report.ok:
        raise LogTampered(f"row {report.bad_seq}: {report.reason}")
