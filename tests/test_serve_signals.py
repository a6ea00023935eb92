"""A SIGTERM right after "serving on port" stops the server cleanly (issue 12, item 8).

The handlers must be in place before readiness is announced: a supervisor (or a
test) that sends SIGTERM as soon as it reads the line must get a graceful stop
(exit 0), never a process killed by the signal (exit -15).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV = dict(os.environ, PYTHONPATH=str(ROOT))

# Sends SIGTERM to itself from inside the logging call that announces readiness:
# the earliest moment anyone outside could know the server is up.
SELF_SIGNAL = """
import logging, os, signal, sys
from matcher.cli import main

class TermOnReady(logging.Filter):
    def filter(self, record):
        if record.getMessage().startswith("serving on port"):
            os.kill(os.getpid(), signal.SIGTERM)
        return True

logging.getLogger().addFilter(TermOnReady())
sys.exit(main(sys.argv[1:]))
"""


def test_sigterm_at_the_moment_of_the_readiness_line_stops_cleanly(agencies):
    proc = subprocess.run(
        [sys.executable, "-c", SELF_SIGNAL, "serve", "--config", str(agencies.responder_toml), "--grace", "1"],
        cwd=agencies.workdir, env=ENV, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "shutting down" in proc.stderr


def test_sigterm_sent_as_soon_as_serving_is_read_stops_cleanly_every_time(agencies):
    for attempt in range(5):  # bounded: each start takes about a second
        proc = subprocess.Popen(
            [sys.executable, "-m", "matcher.cli", "serve", "--config", str(agencies.responder_toml), "--grace", "1"],
            cwd=agencies.workdir, env=ENV, stderr=subprocess.PIPE, text=True,
        )
        deadline = time.monotonic() + 60
        seen = []
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            seen.append(line)
            if not line or "serving on port" in line:
                break
        proc.send_signal(signal.SIGTERM)
        rest = proc.stderr.read()
        code = proc.wait(timeout=60)
        assert code == 0, f"attempt {attempt}: exit {code}\n{''.join(seen)}{rest}"
