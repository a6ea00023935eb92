"""The tamper-evident session log (DESIGN §4): one SQLite file, rows hash-chained, the head signed.

Every session a responder serves is written twice: a ``start`` row when its Hello
has been read and an ``end`` row with its outcome. A session whose ``end`` row is
missing was cut short by a crash (or is still running). Each row stores

    row_hash = SHA-256(canonical JSON of the row's fields, its ``seq`` and ``prev_hash``)

and ``prev_hash`` is the previous row's ``row_hash`` (the first row's is
:data:`GENESIS`). A one-row ``head`` table, updated in the same transaction as each
append, holds the last row's ``seq`` and hash, the number of rows and where the
chain starts, **signed with an Ed25519 key** kept in the state folder
(``session_log.key``, mode 0600; its public half in ``session_log.pub``). So:

- an edited, deleted or reordered row breaks the chain;
- deleting the newest rows contradicts the head, and the head cannot be edited to
  match without the signing key;
- the first row must be the genesis row (seq 1, ``prev_hash`` = :data:`GENESIS`) or a
  *retention checkpoint*, signed with the same key, so deleting the oldest rows is
  detected too.

Retention (:meth:`SessionLog.purge`, run on open with ``session_log_retention_days``
and by ``matcher audit-log prune``): the rows older than the period are deleted
except the newest of them, row *k*, whose content is replaced by a signed
checkpoint. The checkpoint keeps row *k*'s seq, ``prev_hash`` and ``row_hash`` (so
row *k+1* still links to it) and says what was removed; row *k*'s hash commits,
through the chain, to every removed row. The removal is also appended as a
``retention`` row at the end of the chain.

Verification needs the public key from outside the file (``verify(public_key=...)``,
``audit-log verify --key``; by default ``session_log.pub`` next to the log): a key
stored in the log itself could be replaced together with the head.

Limits, stated honestly: whoever can read ``session_log.key`` (the service account,
root) can still rewrite the log from any row on and sign a new head. Against that,
write the head down elsewhere (``matcher audit-log head DB`` prints it; a ticket,
another agency, paper) and later pass it as ``--anchor SEQ:HASH``: a log that no
longer contains that exact row fails, also when the row was removed by retention.

What is written: times, the peer agency's configured name, protocol, reveal mode,
sizes, counts, outcome, gRPC status and the config fingerprint. Never identity data,
tokens, tags, keys or case references: :meth:`SessionLog.append` accepts only the
fields of :data:`FIELDS` and only ``str``/``int``/``float``/``None`` values.

The format (fields, hashes, signed messages, keys) is in ``session_log_chain``;
reading and verifying in ``session_log_verify``; this module writes (``SessionLog``)
and re-exports both, so ``session_log.verify`` and ``session_log.rows`` work as before.
"""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from matcher.errors import ConfigError, LogTampered
from matcher.files import ensure_parent, private_sqlite
from matcher.storage.session_log_chain import (
    CHECKPOINT,
    FIELDS,
    GENESIS,
    KEY_FILE,
    PUBLIC_KEY_FILE,
    SCHEMA_VERSION,
    _columns,
    _raw_hex,
    checkpoint_message,
    default_key_path,
    head_message,
    key_id,
    load_signing_key,
    load_verify_key,
    row_digest,
    utc_now,
)
from matcher.storage.session_log_verify import VerifyReport, parse_anchor, raise_if_bad, rows, verify

__all__ = [
    "CHECKPOINT", "FIELDS", "GENESIS", "KEY_FILE", "PUBLIC_KEY_FILE", "SCHEMA_VERSION", "ConfigError", "LogTampered",
    "SessionLog", "VerifyReport", "checkpoint_message", "default_key_path", "head_message", "key_id",
    "load_signing_key", "load_verify_key", "parse_anchor", "raise_if_bad", "row_digest", "rows", "utc_now", "verify",
]

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS sessions (
    seq INTEGER PRIMARY KEY,
    {", ".join(FIELDS)},  -- no declared type: values are stored exactly as hashed
    prev_hash TEXT NOT NULL,
    row_hash TEXT NOT NULL,
    signature TEXT  -- retention checkpoints only
);
CREATE TABLE IF NOT EXISTS head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    row_hash TEXT NOT NULL,
    count INTEGER NOT NULL,
    base_seq INTEGER NOT NULL,
    base_hash TEXT NOT NULL,
    schema_version INTEGER NOT NULL,
    public_key TEXT,
    signature TEXT
);
"""


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    return conn


class SessionLog:
    """Append-only, hash-chained session log in one SQLite file with a signed head (thread-safe).

    Appends run in ``BEGIN IMMEDIATE`` transactions (several processes may share
    the file) in WAL mode with full sync, so a crash leaves either the whole row or
    none of it, and the chain verifies either way. ``key_path`` is the Ed25519
    signing key (created on first use; default ``session_log.key`` next to the log).
    """

    def __init__(self, path: Path, retention_days: float | None = None, key_path: Path | None = None) -> None:
        self.path = Path(path)
        self.key_path = Path(key_path) if key_path is not None else self.path.parent / KEY_FILE
        self._key = load_signing_key(self.key_path)
        self._public_hex = _raw_hex(self._key.public_key())
        try:
            ensure_parent(self.path)
            private_sqlite(self.path)  # 0600 before SQLite creates it (and its -wal/-shm) with the umask
            self._conn = _connect(self.path)
            self._conn.executescript(_SCHEMA)
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._open_head()
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        except (sqlite3.Error, OSError) as exc:
            raise ConfigError(f"session log {self.path} cannot be opened: {exc}") from None
        self._lock = threading.Lock()
        if retention_days is not None:
            self.purge(retention_days)

    def _open_head(self) -> None:
        """Create the signed head of a new log, or upgrade a log written before heads were signed."""
        conn = self._conn
        if "signature" not in _columns(conn, "head"):  # schema 1: unsigned head, no checkpoints
            conn.execute("ALTER TABLE head ADD COLUMN public_key TEXT")
            conn.execute("ALTER TABLE head ADD COLUMN signature TEXT")
        if "signature" not in _columns(conn, "sessions"):
            conn.execute("ALTER TABLE sessions ADD COLUMN signature TEXT")
        row = conn.execute("SELECT seq, row_hash, count, base_seq, base_hash, public_key FROM head").fetchone()
        if row is None:
            conn.execute(
                "INSERT INTO head (id, seq, row_hash, count, base_seq, base_hash, schema_version) "
                "VALUES (1, 0, ?, 0, 0, ?, ?)",
                (GENESIS, GENESIS, SCHEMA_VERSION),
            )
            self._sign_head(0, GENESIS, 0, 0, GENESIS)
            return
        _seq, _hash, count, base_seq, base_hash, public_hex = row
        if public_hex is not None:
            if public_hex != self._public_hex:
                raise ConfigError(
                    f"session log {self.path} is signed with another key than {self.key_path}: restore that "
                    "key file, or move the log away to start a new one"
                )
            return
        # Upgrade (trust on upgrade): rows removed by the old retention get a signed checkpoint.
        if base_seq > 0 and conn.execute("SELECT 1 FROM sessions WHERE seq = ?", (base_seq,)).fetchone() is None:
            detail = (f"rows up to {base_seq} were removed by retention before this log's head was signed "
                      "(checkpoint written at the upgrade)")
            self._insert_checkpoint(base_seq, utc_now(), detail, GENESIS, base_hash)
            count += 1
            conn.execute("UPDATE head SET count = ?", (count,))
        seq, row_hash = conn.execute("SELECT seq, row_hash FROM head").fetchone()
        conn.execute("UPDATE head SET schema_version = ?", (SCHEMA_VERSION,))
        self._sign_head(seq, row_hash, count, base_seq, base_hash)

    def _sign_head(self, seq: int, row_hash: str, count: int, base_seq: int, base_hash: str) -> None:
        sig = self._key.sign(head_message(seq, row_hash, count, base_seq, base_hash)).hex()
        self._conn.execute(
            "UPDATE head SET seq = ?, row_hash = ?, count = ?, base_seq = ?, base_hash = ?, public_key = ?, "
            "signature = ?", (seq, row_hash, count, base_seq, base_hash, self._public_hex, sig),
        )

    def _insert_checkpoint(self, seq: int, time: str, detail: str, prev_hash: str, row_hash: str) -> None:
        sig = self._key.sign(checkpoint_message(seq, time, detail, prev_hash, row_hash)).hex()
        self._conn.execute(
            "INSERT OR REPLACE INTO sessions (seq, time, event, detail, prev_hash, row_hash, signature) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (seq, time, CHECKPOINT, detail, prev_hash, row_hash, sig),
        )

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
        if fields.get("event") == CHECKPOINT:
            raise ValueError("checkpoints are written by purge() only")
        fields.setdefault("time", utc_now())
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                head_seq, head_hash, count, base_seq, base_hash = conn.execute(
                    "SELECT seq, row_hash, count, base_seq, base_hash FROM head"
                ).fetchone()
                seq = head_seq + 1
                digest = row_digest(seq, fields, head_hash)
                conn.execute(
                    f"INSERT INTO sessions (seq, {', '.join(FIELDS)}, prev_hash, row_hash) "
                    f"VALUES (?, {', '.join('?' for _ in FIELDS)}, ?, ?)",
                    (seq, *(fields.get(f) for f in FIELDS), head_hash, digest),
                )
                self._sign_head(seq, digest, count + 1, base_seq, base_hash)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return seq

    def purge(self, retention_days: float, now: datetime | None = None) -> int:
        """Remove the rows older than ``retention_days``, leaving a signed checkpoint; returns rows removed.

        The newest old row *k* becomes the checkpoint (same seq and hashes, content
        replaced by what was removed, signed); the rows before it are deleted, and the
        removal is appended as a ``retention`` row. The newest row is always kept.
        """
        cutoff = ((now or datetime.now(UTC)) - timedelta(days=retention_days)).isoformat(timespec="seconds")
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                head_seq, head_hash, count = conn.execute("SELECT seq, row_hash, count FROM head").fetchone()
                old = conn.execute(  # the newest row is always kept (the head)
                    "SELECT seq, prev_hash, row_hash FROM sessions WHERE time < ? AND event IS NOT ? AND seq < ? "
                    "ORDER BY seq DESC LIMIT 1", (cutoff, CHECKPOINT, head_seq),
                ).fetchone()
                if old is None:
                    conn.execute("ROLLBACK")
                    return 0
                last_seq, last_prev, last_hash = old
                removed = conn.execute(
                    "SELECT COUNT(*) FROM sessions WHERE seq <= ? AND event IS NOT ?", (last_seq, CHECKPOINT)
                ).fetchone()[0]
                deleted = conn.execute("DELETE FROM sessions WHERE seq < ?", (last_seq,)).rowcount
                detail = (f"retention checkpoint: {removed} row(s) up to seq {last_seq} older than {cutoff} removed; "
                          f"this row keeps row {last_seq}'s hash, which commits to every removed row")
                self._insert_checkpoint(last_seq, utc_now(), detail, last_prev, last_hash)
                self._sign_head(head_seq, head_hash, count - deleted, last_seq, last_hash)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        self.append(event="retention", detail=f"removed {removed} row(s) up to seq {last_seq} (older than {cutoff})")
        return removed
