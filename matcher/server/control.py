"""Signalling a running ``matcher serve``: its pid file and the outcome of its last reload.

``matcher serve`` writes its process id to ``STATE_DIR/serve.pid`` (0600) once it
serves, and removes it when it stops. ``matcher reload --config responder.toml`` reads
that file and sends SIGHUP; the server reloads its config and watchlist aside and
records the outcome in ``STATE_DIR/reload-status.json`` (0600: counts and reasons,
no identity data), which the command waits for and prints.

Standard library only (the CLI imports it without loading gRPC).
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from matcher.errors import ConfigError
from matcher.files import write_private

PID_FILE = "serve.pid"
STATUS_FILE = "reload-status.json"


@dataclass(frozen=True)
class ReloadStatus:
    """The outcome of one reload attempt, as the server recorded it."""

    attempt: int  # counts the server's reload attempts since it started
    pid: int
    ok: bool
    detail: str  # what was reloaded, or why the old state goes on serving
    time: float


def write_pid(state_dir: Path) -> Path:
    """Record this process as the server of ``state_dir``."""
    path = Path(state_dir) / PID_FILE
    write_private(path, f"{os.getpid()}\n".encode("ascii"))
    return path


def remove_pid(state_dir: Path) -> None:
    """Remove the pid file if it is still this process's."""
    path = Path(state_dir) / PID_FILE
    try:
        if path.read_text(encoding="ascii").strip() == str(os.getpid()):
            path.unlink()
    except (OSError, ValueError):
        pass


def write_status(state_dir: Path, status: ReloadStatus) -> None:
    """Record a reload's outcome (atomically: the waiting command never reads half a file)."""
    write_private(Path(state_dir) / STATUS_FILE, json.dumps(asdict(status)).encode("utf-8"))


def read_status(state_dir: Path) -> ReloadStatus | None:
    try:
        data = json.loads((Path(state_dir) / STATUS_FILE).read_text(encoding="utf-8"))
        return ReloadStatus(**data)
    except (OSError, ValueError, TypeError):
        return None


def _serving_pid(state_dir: Path) -> int:
    path = Path(state_dir) / PID_FILE
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise ConfigError(
            f"no running server for this config: {path} does not exist (is `matcher serve` running with this "
            "config's state_dir?)"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read the pid file {path}: {exc.strerror or exc}") from None
    if not text.isdigit() or int(text) <= 1:
        raise ConfigError(f"the pid file {path} does not hold a process id; remove it and restart the server")
    pid = int(text)
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            args = []
        if args and b"serve" not in args:
            raise ConfigError(
                f"process {pid} named in {path} is not `matcher serve` (a stale pid file?); remove it"
            )
    return pid


def request_reload(state_dir: Path, wait: float = 0.0) -> ReloadStatus | None:
    """Send SIGHUP to the server of ``state_dir``; with ``wait`` > 0, wait up to that many seconds
    for its outcome (None if it did not come in time)."""
    pid = _serving_pid(state_dir)
    before = read_status(state_dir)
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        raise ConfigError(
            f"no process {pid} (from {Path(state_dir) / PID_FILE}): the server is not running; "
            "remove the stale pid file"
        ) from None
    except PermissionError:
        raise ConfigError(f"not allowed to signal process {pid}: run `matcher reload` as the server's user") from None
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        now = read_status(state_dir)
        if now is not None and now.pid == pid and (before is None or before.pid != pid or now.attempt > before.attempt):
            return now
        time.sleep(0.2)
    return None
