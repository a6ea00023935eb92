"""Secrets at rest: the responder's per-epoch ECDH key in its state folder.

The key file is written with mode 0600 and refused when group or others can
read it. The key itself never appears in a log line or an error message.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from matcher.errors import ConfigError
from matcher.protocols import ecdh

KEY_FILE = "epoch_key.json"


@dataclass(frozen=True)
class EpochKey:
    """The responder's key ``b`` for one epoch; ``epoch`` is a public, opaque identifier."""

    epoch: str
    created: float
    key: bytes

    def expired(self, rotation_days: float, now: float) -> bool:
        return now - self.created >= rotation_days * 86400

    def __repr__(self) -> str:  # never show the key
        return f"EpochKey(epoch={self.epoch!r}, created={self.created})"


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, readable by the owner only (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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


def new_epoch_key(now: float | None = None) -> EpochKey:
    """A fresh epoch: a CSPRNG key and a random public epoch id."""
    return EpochKey(epoch=secrets.token_hex(8), created=time.time() if now is None else now, key=ecdh.new_key())


def load_or_rotate(
    state_dir: Path, rotation_days: float, now: float | None = None, force: bool = False
) -> tuple[EpochKey, bool]:
    """The current epoch key, starting a new epoch when none exists, the old one expired, or ``force``.

    Returns the key and whether a new epoch was started.
    """
    now = time.time() if now is None else now
    path = state_dir / KEY_FILE
    if path.exists():
        check_private(path)
        try:
            raw = json.loads(path.read_text(encoding="ascii"))
            current = EpochKey(str(raw["epoch"]), float(raw["created"]), bytes.fromhex(raw["key"]))
            if len(current.key) != ecdh.SCALAR_BYTES:
                raise ValueError("wrong key length")
        except (ValueError, KeyError, TypeError):
            raise ConfigError(f"{path} is damaged; move it away to start a new key epoch") from None
        if not force and not current.expired(rotation_days, now):
            return current, False
    fresh = new_epoch_key(now)
    body = {"epoch": fresh.epoch, "created": fresh.created, "key": fresh.key.hex()}
    write_private(path, json.dumps(body).encode("ascii"))
    return fresh, True
