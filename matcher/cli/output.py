"""Lines for the operator: ``_say`` (text, or a log record with ``--log-format json``) and the progress printer."""

from __future__ import annotations

import argparse
import logging
import sys
import time

from matcher.logs import log_fields

log = logging.getLogger("matcher.cli")


def _json_logs(args: argparse.Namespace) -> bool:
    return getattr(args, "log_format", None) == "json"


def _say(args: argparse.Namespace, message: str, level: int = logging.INFO, **fields) -> None:
    """A line for the operator on stderr: printed as is in text mode, a log record with ``--log-format json``."""
    if _json_logs(args):
        log.log(level, "%s", message, extra=log_fields(command=args.command, **fields))
    else:
        print(message, file=sys.stderr)


def _progress_printer(stream=None, args: argparse.Namespace | None = None):
    """Progress on a terminal only (a CI log, a pipe or JSON logs get no carriage-return noise).

    ``stream`` defaults to the ``sys.stderr`` of the call, not of the import (tests and
    embedding programs replace it).
    """
    stream = stream if stream is not None else sys.stderr
    if not stream.isatty() or (args is not None and _json_logs(args)):
        return None
    last = [0.0]

    def show(what: str, done: int, total: int) -> None:
        """``total`` 0: a count with no known end (e.g. rows read)."""
        now = time.monotonic()
        if (total <= 0 or done < total) and now - last[0] < 0.2:
            return
        last[0] = now
        if total <= 0:
            stream.write(f"\r{what}: {done}")
            stream.flush()
            return
        pct = 100.0 * done / total
        stream.write(f"\r{what} {done}/{total} elements ({pct:5.1f}%)")
        if done >= total:
            stream.write("\n")
        stream.flush()

    return show
