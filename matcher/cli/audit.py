"""The privacy officer's commands: ``audit-config``, ``audit-log``, ``audit-report``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def cmd_audit_config(args: argparse.Namespace) -> int:
    """``audit-config CONFIG``: findings in plain words; exit 0 clean, 1 errors, 2 unreadable."""
    import json

    from matcher.audit.config_audit import FORMAT, audit_config
    from matcher.errors import ConfigError, InputFileError

    try:
        report = audit_config(args.config, records=args.records)
    except (ConfigError, InputFileError) as exc:
        if args.json:
            print(json.dumps({"format": FORMAT, "config": str(args.config), "ok": False, "unreadable": str(exc)}))
        print(f"matcher audit-config: {exc}", file=sys.stderr)
        return 2
    print(report.to_json() if args.json else report.to_text())
    return report.exit_status


def cmd_audit_log(args: argparse.Namespace) -> int:
    """``audit-log verify|show|head|prune DB``: check the log, list sessions, print the head, apply retention."""
    import json

    from matcher.storage import session_log

    if args.action == "verify":
        anchor = session_log.parse_anchor(args.anchor) if args.anchor else None
        rep = session_log.verify(args.db, anchor, args.key)
        insecure = _insecure_rows(args.db)
        if args.json:
            print(json.dumps({"ok": rep.ok, "rows": rep.rows, "head_seq": rep.head_seq, "head_hash": rep.head_hash,
                              "bad_row": rep.bad_seq, "reason": rep.reason or None, "key_id": rep.key_id,
                              "insecure_rows": insecure}, indent=2))
        elif rep.ok:
            print(f"OK: {rep.rows} row(s), chain intact up to row {rep.head_seq} "
                  f"(head {rep.head_seq}:{rep.head_hash}), head signed by key {rep.key_id}")
        else:
            print(f"TAMPERED: first bad row {rep.bad_seq}: {rep.reason} ({rep.rows} row(s) read)")
        if insecure and not args.json:
            print(f"WARNING: {insecure} row(s) come from `serve --insecure` (development mode: plaintext, no peer "
                  "authentication); see `audit-log show`")
        return 0 if rep.ok else 1
    if args.action == "head":
        rep = session_log.verify(args.db, None, args.key)
        print(f"{rep.head_seq}:{rep.head_hash}")
        if not rep.ok:
            print(f"warning: the log does not verify (row {rep.bad_seq}: {rep.reason})", file=sys.stderr)
        return 0 if rep.ok else 1
    if args.action == "prune":
        if args.older_than is None:
            raise session_log.ConfigError("prune needs --older-than DAYS (e.g. --older-than 365)")
        key = args.key or args.db.parent / session_log.KEY_FILE
        log = session_log.SessionLog(args.db, key_path=key)
        try:
            removed = log.purge(args.older_than)
        finally:
            log.close()
        print(f"removed {removed} row(s) older than {args.older_than:g} days; the log starts at a signed checkpoint"
              if removed else f"no row older than {args.older_than:g} days (the newest row is always kept)")
        return 0
    since = _parse_since(args.since) if args.since else None
    found = list(session_log.rows(args.db, since))
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    print(f"{'seq':>5} {'time (UTC)':<25} {'event':<9} {'session':<16} {'peer':<14} {'protocol':<10} "
          f"{'reveal':<11} {'size':>8} {'hits':>6} outcome")
    for r in found:
        hits = "" if r["hit_count"] is None else r["hit_count"]
        size = "" if r["request_size"] is None else r["request_size"]
        print(f"{r['seq']:>5} {r['time'] or '':<25} {r['event'] or '':<9} {r['session_id'] or '':<16} "
              f"{r['peer'] or '':<14} {r['protocol'] or '':<10} {r['reveal'] or '':<11} {size:>8} {hits:>6} "
              f"{r['outcome'] or ''}{' - ' + str(r['detail']) if r['detail'] else ''}")
    return 0


def _insecure_rows(db: Path) -> int:
    """Rows written by a responder running ``--insecure`` (its start-up row and its sessions)."""
    from matcher.peer_auth import INSECURE_PEER
    from matcher.storage import session_log

    try:
        return sum(1 for r in session_log.rows(db) if r.get("peer") == INSECURE_PEER)
    except Exception:  # an unreadable log is reported by verify itself
        return 0


def cmd_audit_report(args: argparse.Namespace) -> int:
    """``audit-report --config C --out F``: the privacy officer's HTML page.

    Exit 1 when the session log does not verify.
    """
    from matcher.audit.report import write_report
    from matcher.storage import session_log

    anchor = session_log.parse_anchor(args.anchor) if args.anchor else None
    since = _parse_since(args.since) if args.since else None
    data = write_report(args.config, args.out, anchor=anchor, since=since)
    v = data.verified
    if data.log_problem:
        state = data.log_problem
    elif v is None:
        state = "log not verified"
    else:
        state = "log intact" if v.ok else f"LOG DOES NOT VERIFY (row {v.bad_seq}: {v.reason})"
    print(f"wrote {args.out}: {len(data.sessions)} session(s), {data.audit.count('error')} config error(s), "
          f"{data.audit.count('warning')} warning(s); {state}")
    return 1 if v is not None and not v.ok else 0


def _parse_since(text: str) -> str:
    """``--since``: a date (YYYY-MM-DD), an ISO time (UTC if no zone) or ``Nd``/``Nh`` ago; as the log's time format."""
    from datetime import UTC, datetime, timedelta

    from matcher.errors import ConfigError

    t = text.strip()
    try:
        if t[-1:] in ("d", "h") and t[:-1].isdigit():
            delta = timedelta(days=int(t[:-1])) if t[-1] == "d" else timedelta(hours=int(t[:-1]))
            when = datetime.now(UTC) - delta
        else:
            when = datetime.fromisoformat(t)
            when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except ValueError:
        raise ConfigError(f"--since {text!r}: use YYYY-MM-DD, an ISO 8601 time, or 7d / 12h") from None
    return when.isoformat(timespec="seconds")
