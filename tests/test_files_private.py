"""Identity data, hits, keys and state at rest: files 0600, folders 0700, whatever the umask.

A real responder (mTLS on loopback) and a real requester run one reveal = "both"
session under umask 022 with every optional file switched on: the watchlist's and the
records' rejects, both hits files, both session logs, the budgets, the epoch key, the
setup caches. Then every file and folder matcher wrote is checked.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from matcher.files import open_private, private_dir, private_sqlite, write_private
from matcher.requester import run_match
from tests import test_cli

served = test_cli.served  # the `matcher serve` fixture, shared with tests/test_cli.py

PUBLIC = {".pem", ".toml"}  # certificates and configs hold no identity data or secret


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _modes(root: Path, skip: set[Path]) -> tuple[dict[str, int], dict[str, int]]:
    files, dirs = {}, {}
    for p in root.rglob("*"):
        if p in skip or p.suffix in PUBLIC:
            continue
        (dirs if p.is_dir() else files)[str(p.relative_to(root))] = stat.S_IMODE(p.lstat().st_mode)
    return files, dirs


def test_every_file_a_session_writes_is_0600_and_every_folder_0700_under_umask_022(agencies, start, umask_022):
    work = agencies.workdir
    agencies.edit("responder", 'reveal = "requester"', 'reveal = "both"')
    agencies.edit("requester", 'reveal = "requester"', 'reveal = "both"')
    agencies.edit("requester", 'server_name = "agency-a"',
                  'server_name = "agency-a"\nsession_log = "b_state/logs/sessions.db"\nsetup_cache = "b_state/cache"')
    # one unusable row on each side, so both rejects files are written
    with (work / "agency_b_records.csv").open("a", encoding="utf-8") as fh:
        fh.write("B-999,,,,,,,\n")
    with (work / "agency_a_watchlist.csv").open("a", encoding="utf-8") as fh:
        fh.write("A-999,,,,,,,,\n")
    # an existing hits file with a loose mode is tightened when matcher writes it
    out = work / "out" / "deep" / "hits.csv"
    out.parent.mkdir(parents=True)
    out.write_text("old\n")
    os.chmod(out, 0o644)
    existing_dirs = {work / "out", work / "out" / "deep", work / "certs"}
    for d in existing_dirs:
        os.chmod(d, 0o755)

    running = start()
    run = run_match(agencies.requester_config(), work / "agency_b_records.csv", f"127.0.0.1:{running.port}",
                    out=out)
    assert run.result.hits
    files, dirs = _modes(work, existing_dirs)  # while serving: the session log's -wal/-shm exist
    assert any(f.endswith("-wal") for f in files) and any(f.endswith("-shm") for f in files)
    running.stop(grace=0)
    after, _ = _modes(work, existing_dirs)
    files.update(after)
    expected = {"agency_a_state/epoch_key.json", "agency_a_state/budgets.db", "agency_a_state/sessions.db",
                "agency_a_state/responder_hits.csv", "agency_a_watchlist.rejects.csv",
                "agency_b_records.rejects.csv", "b_state/logs/sessions.db", "out/deep/hits.csv"}
    assert expected <= set(files), sorted(set(expected) - set(files))
    assert any(f.startswith("agency_a_state/setup-") for f in files)
    assert any(f.startswith("b_state/cache/setup-") for f in files)
    loose = {f: oct(m) for f, m in files.items() if m != 0o600}
    assert not loose, f"files not 0600: {loose}"
    assert {"agency_a_state", "b_state", "b_state/logs", "b_state/cache"} <= set(dirs)
    open_dirs = {d: oct(m) for d, m in dirs.items() if m != 0o700}
    assert not open_dirs, f"folders not 0700: {open_dirs}"
    # folders that existed before are the user's: left as they were
    assert stat.S_IMODE((work / "out").stat().st_mode) == 0o755


def test_a_loose_state_folder_and_loose_files_are_tightened(tmp_path, umask_022):
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    os.chmod(state, 0o755)
    private_dir(state)
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    db = state / "x.db"
    db.write_bytes(b"")
    os.chmod(db, 0o644)
    (state / "x.db-wal").write_bytes(b"")
    os.chmod(state / "x.db-wal", 0o666)
    private_sqlite(db)
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert stat.S_IMODE((state / "x.db-wal").stat().st_mode) == 0o600
    f = state / "a.csv"
    f.write_text("x")
    os.chmod(f, 0o664)
    with open_private(f, "a", encoding="utf-8") as fh:
        fh.write("y")
    assert stat.S_IMODE(f.stat().st_mode) == 0o600 and f.read_text() == "xy"
    write_private(state / "k", b"1")
    assert stat.S_IMODE((state / "k").stat().st_mode) == 0o600


def test_even_a_umask_that_removes_the_owners_bits_gives_0600(tmp_path):
    old = os.umask(0o277)
    try:
        with open_private(tmp_path / "new" / "f.csv", "w") as fh:
            fh.write("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new" / "f.csv").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o700


def test_a_symlink_planted_in_place_of_a_private_file_is_not_followed(tmp_path):
    target = tmp_path / "elsewhere.csv"
    target.write_text("victim\n")
    link = tmp_path / "hits.csv"
    link.symlink_to(target)
    with pytest.raises(OSError):
        open_private(link, "w")
    assert target.read_text() == "victim\n"


def test_matcher_serve_and_matcher_match_processes_under_umask_022(umask_022, agencies, served, capsys):
    """The same with the real commands: `matcher serve` in its own process (umask 022 inherited)."""
    import signal

    from matcher.cli import main

    peer, proc = served
    out = agencies.workdir / "out" / "hits.csv"
    assert main(["match", "--config", str(agencies.requester_toml), "--records",
                 str(agencies.workdir / "agency_b_records.csv"), "--peer", peer, "--out", str(out)]) == 0
    capsys.readouterr()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    files, dirs = _modes(agencies.workdir, set())
    assert {"out/hits.csv", "agency_b_records.rejects.csv", "agency_a_state/sessions.db",
            "agency_a_state/budgets.db", "agency_a_state/session_log.key"} <= set(files)
    assert not {f: oct(m) for f, m in files.items() if m != 0o600}
    assert not {d: oct(m) for d, m in dirs.items() if m != 0o700}
