"""Reading and checking the session log: ``verify`` (head signature, first row, chain, anchor), ``rows``,
``parse_anchor`` and ``raise_if_bad``; the log is opened read-only."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from matcher.errors import ConfigError, LogTampered
from matcher.storage.session_log_chain import (
    CHECKPOINT,
    FIELDS,
    GENESIS,
    _columns,
    _raw_hex,
    checkpoint_message,
    default_key_path,
    head_message,
    key_id,
    load_verify_key,
    row_digest,
)


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
