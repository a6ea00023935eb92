"""The session log's format, shared by the writer and the verifier: the row fields, the hash of a row,
the bytes the head and a retention checkpoint sign, and the Ed25519 signing and verification keys."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from matcher.errors import ConfigError
from matcher.files import create_exclusive, write_private
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


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
