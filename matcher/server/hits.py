"""The responder's own hits file (reveal = "both"): one CSV row per own record and match key hit.

File I/O, so it lives with the server: the protocol halves (matcher.sessions) only
hand over the tokens of the own records hit, through ``ResponderState.record_hits``.
The file names the agency's own persons: it is created 0600 and is never a log.
"""

from __future__ import annotations

import csv
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from matcher.files import open_private

RESPONDER_HITS_COLUMNS = ("time", "session_id", "peer", "record_id", "match_key", "case_ref")


def append_responder_hits(
    path: Path,
    lock: threading.Lock,
    owners: Mapping[bytes, Sequence[tuple[str, str, str]]],
    session_id: str,
    peer: str,
    tokens: Sequence[bytes],
) -> int:
    """Append the own records behind ``tokens`` (looked up in ``owners``) to ``path``.

    One row per (own record, match key): ``time,session_id,peer,record_id,match_key,case_ref``,
    sorted, with the header when the file is new. Returns the number of distinct own records hit.
    """
    rows = [
        (record_id, key_name, case_ref)
        for token in tokens
        for record_id, key_name, case_ref in owners.get(token, ())
    ]
    now = datetime.now(UTC).isoformat(timespec="seconds")
    with lock:
        new = not path.exists()
        with open_private(path, "a", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            if new:
                w.writerow(RESPONDER_HITS_COLUMNS)
            for record_id, key_name, case_ref in sorted(rows):
                w.writerow([now, session_id, peer, record_id, key_name, case_ref])
    return len({r[0] for r in rows})
