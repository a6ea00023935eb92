"""Secrets at rest: the responder's per-epoch ECDH key in its state folder.

The key file is written with mode 0600 and refused when group or others can
read it. The key itself never appears in a log line or an error message.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from matcher.errors import ConfigError
from matcher.files import private_dir, write_private
from matcher.protocols import ecdh

__all__ = ["EpochKey", "check_private", "load_or_rotate", "load_shared_secret", "new_epoch_key", "write_private"]

KEY_FILE = "epoch_key.json"


@dataclass(frozen=True)
class EpochKey:
    """The responder's key ``b`` for one epoch; ``epoch`` is a public, opaque identifier."""

    epoch: str
    created: float
    key: bytes
    #: HMAC of the watchlist digest the epoch was started for (see :func:`load_or_rotate`)
    binding: str = ""

    def expired(self, rotation_days: float, now: float) -> bool:
        return now - self.created >= rotation_days * 86400

    def subkey(self, purpose: str) -> bytes:
        """A 32-byte key for ``purpose`` derived from the epoch key (HMAC-SHA-256); the key itself stays here."""
        return hmac.new(self.key, b"matcher/v1/epoch-subkey\x00" + purpose.encode("ascii"), hashlib.sha256).digest()

    def bound_to(self, watchlist_digest: str) -> bool:
        """Whether this epoch was started for the watchlist with ``watchlist_digest`` (constant time)."""
        return hmac.compare_digest(self.binding, _binding(self.key, watchlist_digest))

    def __repr__(self) -> str:  # never show the key
        return f"EpochKey(epoch={self.epoch!r}, created={self.created})"


def _binding(key: bytes, watchlist_digest: str) -> str:
    return hmac.new(key, b"matcher/v1/epoch-binding\x00" + watchlist_digest.encode("ascii"), hashlib.sha256).hexdigest()


def check_private(path: Path) -> None:
    """Refuse a secret file that group or others may read or write."""
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{path} is readable by other users (mode {stat.S_IMODE(mode):o}); "
            f"run `chmod 600 {path}` and start again"
        )


def load_shared_secret(config) -> bytes:
    """The keyed-hash secret from ``[keyed_hash] secret_file`` (mode 0600) or ``secret_env``.

    Never from the config text. At least 32 bytes (e.g. ``openssl rand -hex 32``);
    a trailing newline in the file is ignored. The value never appears in a message.
    """
    from matcher.errors import SecretError
    from matcher.protocols.keyed_hash import MIN_SECRET_BYTES

    if config is None or (config.secret_file is None and not config.secret_env):
        raise SecretError("keyed-hash needs a shared secret: set [keyed_hash] secret_file or secret_env")
    if config.secret_file is not None:
        try:
            check_private(config.secret_file)
            secret = config.secret_file.read_bytes().rstrip(b"\r\n")
        except FileNotFoundError:
            raise SecretError(f"keyed-hash secret file {config.secret_file} does not exist") from None
        except OSError as exc:
            raise SecretError(f"keyed-hash secret file {config.secret_file} cannot be read: {exc.strerror}") from None
        where = str(config.secret_file)
    else:
        value = os.environ.get(config.secret_env, "")
        if not value:
            raise SecretError(f"environment variable {config.secret_env} (the keyed-hash secret) is not set")
        secret, where = value.encode("utf-8"), f"environment variable {config.secret_env}"
    if len(secret) < MIN_SECRET_BYTES:
        raise SecretError(f"the keyed-hash secret in {where} is shorter than {MIN_SECRET_BYTES} bytes")
    return secret


def new_epoch_key(now: float | None = None, key: bytes | None = None) -> EpochKey:
    """A fresh epoch: a CSPRNG key (or ``key``, drawn the same way beforehand) and a random public epoch id."""
    return EpochKey(epoch=secrets.token_hex(8), created=time.time() if now is None else now,
                    key=ecdh.new_key() if key is None else key)


def read_key(state_dir: Path) -> EpochKey | None:
    """The epoch key in ``state_dir`` as it is, or None when there is none or it cannot be read.

    Changes nothing (unlike :func:`load_or_rotate`): for guessing, before the watchlist is
    loaded, which key its setup will be computed under.
    """
    path = state_dir / KEY_FILE
    try:
        check_private(path)
        return _parse_key(path)
    except (OSError, ConfigError):
        return None


def _parse_key(path: Path) -> EpochKey:
    try:
        raw = json.loads(path.read_text(encoding="ascii"))
        current = EpochKey(str(raw["epoch"]), float(raw["created"]), bytes.fromhex(raw["key"]),
                           str(raw.get("binding", "")))
        if len(current.key) != ecdh.SCALAR_BYTES:
            raise ValueError("wrong key length")
    except (ValueError, KeyError, TypeError):
        raise ConfigError(f"{path} is damaged; move it away to start a new key epoch") from None
    return current


def load_or_rotate(
    state_dir: Path, rotation_days: float, now: float | None = None, force: bool = False,
    watchlist_digest: str | None = None, next_key: bytes | None = None,
) -> tuple[EpochKey, bool]:
    """The current epoch key, starting a new epoch when none exists, the old one expired, or ``force``.

    With ``watchlist_digest`` (a digest of the watchlist's tokens, case references,
    key spec and reveal mode) the epoch is bound to that watchlist: the key file keeps
    an HMAC of the digest under the epoch key, and a key whose binding does not match
    (the watchlist changed, or a key file from before bindings) starts a new epoch. So
    a changed watchlist never reuses a key, whether or not the setup cache survived:
    otherwise a requester holding setups of both could link entries across them and
    re-test earlier evaluations offline.

    ``next_key``: the key a new epoch gets, if one is started (drawn beforehand with
    :func:`matcher.protocols.ecdh.new_key`, so its setup could be started early).

    Returns the key and whether a new epoch was started.
    """
    now = time.time() if now is None else now
    private_dir(state_dir)
    path = state_dir / KEY_FILE
    if path.exists():
        check_private(path)
        current = _parse_key(path)
        bound = watchlist_digest is None or current.bound_to(watchlist_digest)
        if not force and bound and not current.expired(rotation_days, now):
            return current, False
    fresh = new_epoch_key(now, next_key)
    if watchlist_digest is not None:
        fresh = EpochKey(fresh.epoch, fresh.created, fresh.key, _binding(fresh.key, watchlist_digest))
    body = {"epoch": fresh.epoch, "created": fresh.created, "key": fresh.key.hex(), "binding": fresh.binding}
    write_private(path, json.dumps(body).encode("ascii"))
    return fresh, True
