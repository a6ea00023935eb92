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

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from matcher.errors import ConfigError, LogTampered
from matcher.files import create_exclusive, ensure_parent, private_sqlite, write_private
from matcher.storage.secrets_store import check_private

GENESIS = "0" * 64
SCHEMA_VERSION = 2
#: the signing key's file name in the state folder, and its public half's
KEY_FILE = "session_log.key"
PUBLIC_KEY_FILE = "session_log.pub"
CHECKPOINT = "checkpoint"

#: The only fields a row may carry (besides seq, prev_hash, row_hash). None of them
#: may hold identity data, tokens, tags, keys or case references.
FIELDS: tuple[str, ...] = (
    "time",  # UTC ISO 8601 of this row
    "event",  # "start" | "end" | "retention" | "integrity" | "checkpoint" (first row only, signed)
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


def utc_now() -> str:
    """Now, UTC, ISO 8601 with seconds (the log's time format)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def _canonical(body: Mapping[str, object]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")


def row_digest(seq: int, fields: Mapping[str, object], prev_hash: str) -> str:
    """SHA-256 (hex) of a row's canonical content: every field, its seq and the previous hash."""
    body: dict[str, object] = {f: fields.get(f) for f in FIELDS}
    body["seq"] = seq
    body["prev_hash"] = prev_hash
    return hashlib.sha256(_canonical(body)).hexdigest()


def head_message(seq: int, row_hash: str, count: int, base_seq: int, base_hash: str) -> bytes:
    """The bytes the head's signature covers: newest row, row count and where the chain starts."""
    return b"matcher/v1/session-log/head\x00" + _canonical(
        {"seq": seq, "row_hash": row_hash, "count": count, "base_seq": base_seq, "base_hash": base_hash,
         "schema_version": SCHEMA_VERSION}
    )


def checkpoint_message(seq: int, time: object, detail: object, prev_hash: str, row_hash: str) -> bytes:
    """The bytes a retention checkpoint's signature covers (it stands for removed row ``seq``)."""
    return b"matcher/v1/session-log/checkpoint\x00" + _canonical(
        {"seq": seq, "time": time, "detail": detail, "prev_hash": prev_hash, "row_hash": row_hash}
    )


def key_id(public_key: Ed25519PublicKey) -> str:
    """Short public fingerprint of a signing key (SHA-256 of the raw public key, 16 hex digits)."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def _raw_hex(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def load_signing_key(path: Path, create: bool = True) -> Ed25519PrivateKey:
    """The log's Ed25519 signing key at ``path`` (mode 0600), created with its ``.pub`` file when missing.

    Two processes creating it at once end with one key (the file is linked into
    place exclusively). A key file that others may read is refused, like every secret.
    """
    path = Path(path)
    if not path.exists() and create:
        fresh = Ed25519PrivateKey.generate()
        pem = fresh.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
        create_exclusive(path, pem)
    try:
        check_private(path)
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise ConfigError(f"session-log signing key {path} does not exist") from None
    except (ValueError, TypeError):
        raise ConfigError(f"{path} is not a PEM Ed25519 private key; restore it from a backup") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path} is not an Ed25519 key; restore the session log's signing key")
    pub = path.with_suffix(".pub")
    pub_pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    if not pub.exists() or pub.read_bytes() != pub_pem:
        write_private(pub, pub_pem)
    return key


def load_verify_key(path: Path) -> Ed25519PublicKey:
    """The public key to check a log with, from a ``.pub`` file or from the private key file itself."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such key file (the session log's key is {KEY_FILE} / "
                          f"{PUBLIC_KEY_FILE} in the state folder)") from None
    except OSError as exc:
        raise ConfigError(f"{path} cannot be read: {exc.strerror}") from None
    try:
        if b"PRIVATE KEY" in data:
            key = serialization.load_pem_private_key(data, password=None).public_key()
        else:
            key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        raise ConfigError(f"{path} is not a PEM Ed25519 key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"{path} is not an Ed25519 key")
    return key


def default_key_path(db: Path) -> Path:
    """Where ``audit-log`` looks for the log's public key when ``--key`` is not given: next to the log."""
    folder = Path(db).parent
    pub = folder / PUBLIC_KEY_FILE
    return pub if pub.exists() or not (folder / KEY_FILE).exists() else folder / KEY_FILE


@dataclass(frozen=True)
class VerifyReport:
    """Result of :func:`verify`: ``ok``, rows checked, the head, the first problem and the key used."""

    ok: bool
    rows: int
    head_seq: int
    head_hash: str
    bad_seq: int | None = None
    reason: str = ""
    key_id: str = ""


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    return conn


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


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


def _open_readonly(path: Path) -> sqlite3.Connection:
    if not Path(path).is_file():
        raise ConfigError(f"{path}: no such session log")
    try:
        conn = sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True, timeout=30)
        conn.execute("SELECT 1 FROM head")
        return conn
    except sqlite3.Error as exc:
        raise ConfigError(f"{path} is not a matcher session log: {exc}") from None


def _valid(public_key: Ed25519PublicKey, signature: object, message: bytes) -> bool:
    try:
        public_key.verify(bytes.fromhex(str(signature)), message)
        return True
    except (InvalidSignature, ValueError):
        return False


def verify(
    path: Path, anchor: tuple[int, str] | None = None, public_key: Ed25519PublicKey | Path | None = None
) -> VerifyReport:
    """Check the head's signature, the first row, every row's hash, the chain and the seq order.

    ``public_key`` is the log's verification key (an Ed25519 public key or a key
    file); by default :func:`default_key_path`. ``anchor`` = (seq, row_hash) written
    down earlier: that row must still be in the log with that hash (a row removed by
    retention fails too, unless it is the row the first checkpoint stands for).
    """
    if not Path(path).is_file():
        raise ConfigError(f"{path}: no such session log")
    if not isinstance(public_key, Ed25519PublicKey):
        public_key = load_verify_key(Path(public_key) if public_key is not None else default_key_path(path))
    kid = key_id(public_key)
    conn = _open_readonly(path)
    try:
        cols = _columns(conn, "head")
        if "signature" not in cols:
            return VerifyReport(False, 0, 0, "", 0, "the head record is not signed (a log of schema 1: open it "
                                "once with this version to sign it)", kid)
        head = conn.execute(
            "SELECT seq, row_hash, count, base_seq, base_hash, public_key, signature FROM head"
        ).fetchone()
        if head is None:
            return VerifyReport(False, 0, 0, "", 0, "the head record is missing", kid)
        head_seq, head_hash, count, base_seq, base_hash, public_hex, signature = head
        if public_hex != _raw_hex(public_key) or not _valid(
            public_key, signature, head_message(head_seq, head_hash, count, base_seq, base_hash)
        ):
            return VerifyReport(
                False, 0, head_seq, head_hash, head_seq,
                "the head record's signature does not verify with this key (the head was edited, or the log "
                f"was signed by another key than {kid})", kid,
            )
        sql = f"SELECT seq, {', '.join(FIELDS)}, prev_hash, row_hash, signature FROM sessions ORDER BY rowid"
        n = 0
        expect_seq, expect_prev = None, None
        anchor_seen = anchor is None
        for row in conn.execute(sql):
            seq, values, prev_hash, stored, sig = row[0], row[1 : 1 + len(FIELDS)], row[-3], row[-2], row[-1]
            fields = dict(zip(FIELDS, values, strict=True))
            n += 1

            def bad(why: str, seq: int = seq, n: int = n) -> VerifyReport:
                return VerifyReport(False, n, head_seq, head_hash, seq, why, kid)

            if expect_seq is None:  # the first row: the genesis row or a signed retention checkpoint
                if fields["event"] == CHECKPOINT:
                    if seq != base_seq or stored != base_hash:
                        return bad("the first row is a checkpoint the signed head does not name (rows were "
                                   "deleted or a checkpoint moved)")
                    if not _valid(public_key, sig, checkpoint_message(seq, fields["time"], fields["detail"],
                                                                       prev_hash, stored)):
                        return bad("the retention checkpoint's signature does not verify (it was forged or edited)")
                elif seq != 1 or prev_hash != GENESIS or base_seq != 0:
                    return bad(f"row {seq} is the first row but is neither the genesis row nor a retention "
                               "checkpoint: the oldest rows were deleted")
                elif row_digest(seq, fields, prev_hash) != stored:
                    return bad("its content does not match its hash (the row was edited)")
            else:
                if seq != expect_seq:
                    return bad(f"expected row {expect_seq} here: rows before it were deleted or rows reordered")
                if prev_hash != expect_prev:
                    return bad("its link to the previous row is broken (a row before it was edited or deleted)")
                if fields["event"] == CHECKPOINT or sig is not None:
                    return bad("a checkpoint can only be the first row")
                if row_digest(seq, fields, prev_hash) != stored:
                    return bad("its content does not match its hash (the row was edited)")
            if anchor is not None and seq == anchor[0]:
                if stored != anchor[1]:
                    return bad("it differs from the anchor written down earlier (the chain was rewritten)")
                anchor_seen = True
            expect_seq, expect_prev = seq + 1, stored
        last_seq = (expect_seq - 1) if expect_seq is not None else base_seq
        last_hash = expect_prev if expect_prev is not None else GENESIS
        if last_seq != head_seq or last_hash != head_hash or n != count:
            return VerifyReport(
                False, n, head_seq, head_hash, last_seq + 1,
                f"the signed head says {count} row(s) up to row {head_seq}, but the log ends before: "
                "the newest rows were deleted", kid,
            )
        if not anchor_seen:
            assert anchor is not None
            return VerifyReport(False, n, head_seq, head_hash, anchor[0],
                                "the anchored row is no longer in the log (deleted, or removed by retention)", kid)
        return VerifyReport(True, n, head_seq, head_hash, key_id=kid)
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
            yield dict(zip(("seq", *FIELDS, "row_hash"), row, strict=True))
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
