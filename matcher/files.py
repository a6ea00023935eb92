"""Private files and folders: everything matcher writes that holds identity data, hits, keys or state.

A leaf module like matcher.errors (only the standard library): every layer that
writes such a file uses it, from identity's rejects file to the storage package.

Every such file is created with mode 0600 and every such folder with 0700 *whatever
the umask*: the mode is given to ``open``/``mkdir`` and then set explicitly (a umask
only removes bits, and an unusual one such as 0277 would also remove the owner's),
and a file that already exists with a looser mode is tightened when matcher writes
it again. Final path components are opened with ``O_NOFOLLOW``, so a symbolic link
planted by another local user is not followed into a file of the attacker's choosing.

SQLite creates its ``-wal``, ``-shm`` and ``-journal`` files with the mode of the
database file, so :func:`private_sqlite` creates the database file 0600 before the
first connection.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

FILE_MODE = 0o600
DIR_MODE = 0o700
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def private_dir(path: Path, *, fix_existing: bool = True) -> Path:
    """Create ``path`` (and any missing parent) with mode 0700; return it.

    Folders created here are 0700. ``fix_existing`` also tightens ``path`` itself when
    it already exists (matcher's own folders: the state folder, setup caches); parents
    that already exist are never touched.
    """
    path = Path(path)
    missing: list[Path] = []
    p = path
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        try:
            os.mkdir(d, DIR_MODE)
        except FileExistsError:
            continue
        os.chmod(d, DIR_MODE)
    if fix_existing and not missing and path.is_dir() and stat.S_IMODE(path.stat().st_mode) != DIR_MODE:
        os.chmod(path, DIR_MODE)
    return path


def ensure_parent(path: Path) -> None:
    """Create the missing folders above ``path`` with mode 0700 (existing ones are left as they are)."""
    private_dir(Path(path).parent, fix_existing=False)


def _private_fd(path: Path, flags: int) -> int:
    fd = os.open(path, flags | os.O_CREAT | _NOFOLLOW, FILE_MODE)
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) != FILE_MODE:
            os.fchmod(fd, FILE_MODE)  # an existing file, or a umask that removed the owner's bits
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_private(path: Path, mode: str = "w", **kwargs: Any) -> IO[Any]:
    """``open(path, mode)`` for a private file: created 0600 (an existing one is set to 0600).

    ``mode`` is "w", "a", "x" with an optional "b" (and "+"); keyword arguments go to
    :func:`os.fdopen` (encoding, newline, ...). Missing parent folders are created 0700.
    """
    base = mode.replace("b", "").replace("t", "").replace("+", "")
    flags = {"w": os.O_WRONLY | os.O_TRUNC, "a": os.O_WRONLY | os.O_APPEND, "x": os.O_WRONLY | os.O_EXCL}.get(base)
    if flags is None:
        raise ValueError(f"open_private writes only (mode {mode!r})")
    if "+" in mode:
        flags = (flags & ~os.O_WRONLY) | os.O_RDWR
    ensure_parent(path)
    fd = _private_fd(Path(path), flags)
    return os.fdopen(fd, mode, **kwargs)


def _written_temp(path: Path, data: bytes | Sequence[bytes]) -> Path:
    """A new temporary file (0600) beside ``path`` holding ``data`` (or its pieces in order), flushed to disk."""
    ensure_parent(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = _private_fd(tmp, os.O_WRONLY | os.O_EXCL)
    try:
        with os.fdopen(fd, "wb") as fh:
            if isinstance(data, bytes | bytearray | memoryview):
                fh.write(data)
            else:
                fh.writelines(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def write_private(path: Path, data: bytes | Sequence[bytes]) -> None:
    """Write ``data`` (bytes, or pieces written in order) to ``path`` atomically (temporary file, fsync,
    rename), mode 0600."""
    path = Path(path)
    tmp = _written_temp(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def create_exclusive(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` (0600) only if no file is there yet; False when one already was.

    Atomic against a concurrent writer: the content is written to a temporary file and
    hard-linked to ``path``, so two processes creating the same key file end with one key.
    """
    path = Path(path)
    tmp = _written_temp(path, data)
    try:
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        tmp.unlink(missing_ok=True)


def private_sqlite(path: Path) -> Path:
    """Make sure the SQLite database ``path`` exists with mode 0600 (and its -wal/-shm/-journal, if any).

    Call before the first ``sqlite3.connect``: SQLite gives the files it creates next
    to the database the database file's mode.
    """
    path = Path(path)
    os.close(_private_fd(path, os.O_RDONLY))
    for suffix in ("-wal", "-shm", "-journal"):
        side = path.with_name(path.name + suffix)
        try:
            if stat.S_IMODE(side.lstat().st_mode) != FILE_MODE and not side.is_symlink():
                os.chmod(side, FILE_MODE)
        except FileNotFoundError:
            pass
    return path
