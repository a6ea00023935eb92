"""Log output of the service and the CLI: text for people (the default), JSON lines for a SIEM.

``--log-format json`` (or ``MATCHER_LOG_FORMAT=json``) writes one JSON object per
line to stderr. Field names are stable (docs/operations.md lists them):

* always: ``time`` (UTC, ISO 8601 with milliseconds and ``Z``), ``level``
  (``DEBUG`` ... ``CRITICAL``), ``logger``, ``message``, ``pid``
* when the line is about something specific, from :data:`FIELDS`: ``event`` (what
  happened, e.g. ``session_end``), ``session_id``, ``peer``, ``protocol``, ``elements``,
  ``outcome``, ``seconds``, ``reason``, ...
* with a traceback: ``exception``

A structured field enters a line only through :func:`log_fields`, which accepts the
names in :data:`FIELDS` and plain scalar values: the same rule as the session log, so
no identity data, token, tag, key or case reference can be added by accident.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

LOG_FORMATS = ("text", "json")

#: Structured fields a log line may carry besides the always-present ones. None of them
#: may hold identity data, tokens, tags, keys or case references.
FIELDS: frozenset[str] = frozenset({
    "event",  # what happened: serving, session_end, metrics_listening, command_failed, ...
    "session_id",  # the random session id (also in the session log)
    "peer",  # the configured peer agency name, or the responder's address on a requester
    "protocol",
    "elements",  # elements (tokens) evaluated or sent
    "hit_count",  # hits this side knows of (counts only)
    "outcome",  # "OK" or the gRPC status name
    "seconds",
    "reason",  # the error type, e.g. BudgetExhausted
    "port",
    "tls",  # "mTLS" or "PLAINTEXT"
    "key_epoch",  # the public epoch identifier
    "command",  # the CLI command (match, serve, ...)
    "exit_status",
    "method",  # the gRPC method a refused call asked for
    "subject",  # a refused client certificate's subject (RFC 4514, printable ASCII, bounded)
    "group_backend",  # the ristretto255 implementation in use: "ifma" or "portable"
})

_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_fields(**fields: Any) -> dict[str, dict[str, Any]]:
    """``extra=`` for a logging call: named, scalar fields that the JSON format writes as keys.

    Raises ValueError for a name not in :data:`FIELDS` or a value that is not
    str/int/float/bool/None (a programming error, caught by the tests).
    """
    unknown = set(fields) - FIELDS
    if unknown:
        raise ValueError(f"not a log field: {', '.join(sorted(unknown))}")
    for name, value in fields.items():
        if value is not None and not isinstance(value, str | int | float | bool):
            raise TypeError(f"log field {name} must be a plain scalar")
    return {"matcher_fields": {k: v for k, v in fields.items() if v is not None}}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, keys as documented above (sorted for stable output)."""

    def format(self, record: logging.LogRecord) -> str:
        obj: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace(
                "+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        extra = getattr(record, "matcher_fields", None)
        if isinstance(extra, dict):
            obj.update({k: v for k, v in extra.items() if k in FIELDS})
        if record.exc_info:
            obj["exception"] = self.formatException(record.exc_info)
        return json.dumps(obj, ensure_ascii=False, sort_keys=True, default=str)


def default_format() -> str:
    """``MATCHER_LOG_FORMAT`` if it names a format, else ``text``."""
    env = os.environ.get("MATCHER_LOG_FORMAT", "").strip().lower()
    return env if env in LOG_FORMATS else "text"


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record is emitted (or to a fixed stream)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream)
        self._fixed = stream

    @property
    def stream(self) -> TextIO:
        return self._fixed or sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:  # set by StreamHandler.__init__
        pass


def setup_logging(fmt: str | None = None, verbose: bool = False, stream: TextIO | None = None) -> None:
    """Send the root logger's records to stderr (or ``stream``) as text or JSON lines.

    Replaces a handler an earlier call installed; other handlers stay. The root level is
    lowered to INFO (DEBUG with ``verbose``), never raised.
    """
    fmt = fmt or default_format()
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format {fmt!r}: use one of {', '.join(LOG_FORMATS)}")
    handler = _StderrHandler(stream)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(_TEXT_FORMAT))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    level = logging.DEBUG if verbose else logging.INFO
    if root.level == logging.NOTSET or root.level > level:
        root.setLevel(level)
