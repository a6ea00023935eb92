"""A small run of the load test (bench/load.py; the full one is `make load`): concurrent sessions,
exact answers, exact budgets, verifiable session log."""

from __future__ import annotations

from bench.load import main


def test_load_smoke(capsys):
    assert main(["--sessions", "6", "--records", "400"]) == 0
    out = capsys.readouterr().out
    assert "6/6 concurrent sessions" in out and "FAIL" not in out
