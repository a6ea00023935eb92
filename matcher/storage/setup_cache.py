"""The ecdh setup on disk: the responder's per-epoch cache and the requester's copy.

Computing the setup costs one hash-to-group and one scalar multiplication per
watchlist token, so a responder keeps it per key epoch and a restart within the
epoch reuses it; a changed watchlist (different tokens or case references), a
changed key spec or reveal mode, or a new epoch rebuilds it. A requester may keep
the setup it received, so a repeated query against a stable watchlist sends only
its own blinded elements.

File format: ``MSETUP1\\n``, a 4-byte big-endian header length, a JSON header
(count, tag_length, label_length, and the writer's metadata), then ``count`` rows
of ``tag ‖ label`` of fixed length. Files are written atomically with mode 0600.
"""

from __future__ import annotations

import hashlib
import json
import operator
from collections.abc import Iterable
from pathlib import Path

from matcher.protocols.ecdh import ResponderSetup
from matcher.storage.secrets_store import check_private, write_private

MAGIC = b"MSETUP1\n"
_READ_CHUNK = 1 << 20


def setup_id(setup: ResponderSetup) -> str:
    """Public identifier of a setup: SHA-256 of its content (what the requester receives anyway)."""
    return _rows_id(setup.tag_length, b"".join(map(operator.add, setup.tags, setup.labels)))


def _rows_id(tag_length: int, rows: bytes) -> str:
    return hashlib.sha256(b"matcher/v1/setup\x00%d\x00" % tag_length + rows).hexdigest()[:32]


def entries_digest(entries: Iterable[tuple[bytes, bytes]], *context: str) -> str:
    """Digest of the watchlist's (token, case reference) pairs plus ``context`` (epoch, key spec...).

    Kept only in the responder's own state folder: it decides whether a cached
    setup still describes the watchlist.
    """
    h = hashlib.sha256("\x00".join(context).encode("utf-8") + b"\x00")
    for token, ref in sorted(entries):
        h.update(len(token).to_bytes(4, "big") + token + len(ref).to_bytes(4, "big") + ref)
    return h.hexdigest()


def save_setup(path: Path, setup: ResponderSetup, meta: dict) -> None:
    """Write ``setup`` and ``meta`` atomically to ``path`` (mode 0600)."""
    label_len = len(setup.labels[0]) if setup.labels else 0
    if any(len(t) != setup.tag_length for t in setup.tags) or any(len(x) != label_len for x in setup.labels):
        raise ValueError("setup rows are not of one fixed length")
    header = json.dumps(
        {"count": len(setup), "tag_length": setup.tag_length, "label_length": label_len, "meta": meta}
    ).encode("utf-8")
    rows = b"".join(t + x for t, x in zip(setup.tags, setup.labels or [b""] * len(setup)))
    write_private(path, MAGIC + len(header).to_bytes(4, "big") + header + rows)


def load_setup(path: Path, expected_id: str | None = None) -> tuple[dict, ResponderSetup] | None:
    """The metadata and setup stored at ``path``, or None if it is missing or damaged.

    With ``expected_id`` the content must also have that setup id. A file that other
    users may read or write is refused (ConfigError), like a key file.
    """
    if path.exists():
        check_private(path)
    try:
        with path.open("rb") as fh:
            if fh.read(len(MAGIC)) != MAGIC:
                return None
            header = json.loads(fh.read(int.from_bytes(fh.read(4), "big")))
            count, tag_len, label_len = int(header["count"]), int(header["tag_length"]), int(header["label_length"])
            row = tag_len + label_len
            data = fh.read()
    except (OSError, ValueError, KeyError, TypeError, OverflowError):  # OverflowError: int(Infinity)
        return None
    if count < 0 or tag_len <= 0 or label_len < 0 or len(data) != count * row:
        return None
    if expected_id is not None and _rows_id(tag_len, data) != expected_id:
        return None
    tags = [data[i : i + tag_len] for i in range(0, len(data), row)]
    labels = [data[i + tag_len : i + row] for i in range(0, len(data), row)] if label_len else [b""] * count
    return header.get("meta", {}), ResponderSetup(tag_len, tags, labels)


def remove_other_setups(folder: Path, keep: Path, pattern: str) -> None:
    """Delete stale cached setups matching ``pattern`` in ``folder`` (all but ``keep``)."""
    for old in folder.glob(pattern):
        if old != keep:
            old.unlink(missing_ok=True)


class RequesterSetupCache:
    """The requester's cache of responders' setups, one file per (responder, setup id)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def _path(self, responder: str, sid: str) -> Path:
        who = hashlib.sha256(responder.encode("utf-8")).hexdigest()[:16]
        return self.folder / f"setup-{who}-{sid}.bin"

    def load(self, responder: str, sid: str) -> ResponderSetup | None:
        if not sid or not all(c in "0123456789abcdef" for c in sid):
            return None
        found = load_setup(self._path(responder, sid), expected_id=sid)
        return None if found is None else found[1]

    def save(self, responder: str, sid: str, setup: ResponderSetup) -> None:
        path = self._path(responder, sid)
        save_setup(path, setup, {"setup_id": sid})
        who = path.name.split("-")[1]
        remove_other_setups(self.folder, path, f"setup-{who}-*.bin")
