"""A real PostgreSQL server for the tests: started in a temporary data directory.

``MATCHER_TEST_POSTGRES_URL`` (a SQLAlchemy URL) names an existing server to use
instead. Otherwise the server binaries are looked up (PATH, then Debian's
``/usr/lib/postgresql/*/bin``); PostgreSQL refuses to run as root, so as root the
data directory is given to the ``postgres`` user and the server runs as that user
(``runuser``). It listens on 127.0.0.1 only, on a free port, with a socket folder
of its own, and is stopped and removed afterwards. ``.ci/run`` installs Debian's
postgresql package, so CI always has one: under ``CI=true`` a server that cannot be
started fails the tests that need it; elsewhere they are skipped with the reason.

Authentication is ``trust`` for the test's own throw-away cluster on loopback; a
real deployment puts the password in PGPASSWORD or ~/.pgpass (docs/network.md).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def unavailable_reason() -> str | None:
    """Why no PostgreSQL server can be started here (None when one can)."""
    if os.environ.get("MATCHER_TEST_POSTGRES_URL"):
        return None
    if _bin("initdb") is None or _bin("pg_ctl") is None:
        return ("PostgreSQL is not installed (apt-get install postgresql, as .ci/run does) "
                "and MATCHER_TEST_POSTGRES_URL is not set")
    if os.geteuid() == 0:
        import pwd

        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to run PostgreSQL as"
        if shutil.which("runuser") is None:
            return "running as root and there is no `runuser` to start PostgreSQL as the postgres user"
    return None


def skip_or_fail(reason: str) -> None:
    """Skip with ``reason`` outside CI; in CI (``CI=true``) a missing PostgreSQL is a failure."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI must run the PostgreSQL tests, but: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL tests skipped: {reason}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yield a SQLAlchemy URL of a running PostgreSQL server (started and removed here if need be)."""
    url = os.environ.get("MATCHER_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    reason = unavailable_reason()
    if reason:
        raise RuntimeError(reason)
    initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
    assert initdb and pg_ctl
    root = Path(tempfile.mkdtemp(prefix="matcher-pg-"))
    data, sock = root / "data", root / "sock"
    as_user: list[str] = []
    env = {**os.environ, "LC_ALL": "C.UTF-8"}
    started = False
    try:
        sock.mkdir()
        if os.geteuid() == 0:
            import pwd

            pw = pwd.getpwnam("postgres")
            for p in (root, sock):
                os.chown(p, pw.pw_uid, pw.pw_gid)
            as_user = ["runuser", "-u", "postgres", "--"]
        os.chmod(root, 0o700)
        port = _free_port()
        run = subprocess.run([*as_user, initdb, "-D", str(data), "-U", "matcher", "--auth=trust", "-E", "UTF8"],
                             capture_output=True, text=True, env=env, check=False)
        if run.returncode:
            raise RuntimeError(f"initdb failed: {run.stderr.strip()[-500:]}")
        opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {sock} -c fsync=off"
        run = subprocess.run([*as_user, pg_ctl, "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w",
                              "-t", "60", "start"], capture_output=True, text=True, env=env, check=False)
        if run.returncode:
            log = (root / "log").read_text(errors="replace")[-800:] if (root / "log").exists() else ""
            raise RuntimeError(f"PostgreSQL did not start: {run.stderr.strip()[-300:]} {log}")
        started = True
        yield f"postgresql+psycopg://matcher@127.0.0.1:{port}/postgres"
    finally:
        if started:
            subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"],
                           capture_output=True, env=env, check=False)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A running PostgreSQL for the session's tests (skipped outside CI when there is none)."""
    reason = unavailable_reason()
    if reason:
        skip_or_fail(reason)
    try:
        with postgres_server() as url:
            yield url
    except RuntimeError as exc:
        skip_or_fail(str(exc))
