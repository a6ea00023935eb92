"""The ``matcher`` command line: serve, match, policy, fingerprint, demo, dev-certs, audit, synth, evaluate."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

from matcher import __version__
from matcher.config import PROTOCOLS
from matcher.logs import LOG_FORMATS, default_format, log_fields, setup_logging

log = logging.getLogger("matcher.cli")

EPILOG = """\
Exit status: 0 success; 1 the session failed or was refused, the responder could not be
reached or the TLS handshake failed (the message names the setting to check), or
(policy) the two agencies' match keys differ; 2 a config, records file, other file,
listen address (port in use) or command line that cannot be used;
3 (match --peers) some responders answered and some failed (each is listed).
See README.md for how two agencies set up their configs and certificates."""


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


def cmd_serve(args: argparse.Namespace) -> int:
    from matcher.config import load_responder_config
    from matcher.server.responder import start_responder

    cfg = load_responder_config(args.config)
    if args.insecure:
        _say(args, "WARNING: --insecure: plaintext gRPC, no peer authentication, loopback only, throw-away key "
             "epoch. Development only.", logging.WARNING)
    # The handlers are in place before anyone can learn that the server is up: a SIGTERM
    # sent as soon as "serving on port" is read (or during start-up) is a graceful stop.
    stop, wake, reloads = threading.Event(), threading.Event(), [0]

    def on_stop(*_: object) -> None:
        stop.set()
        wake.set()

    def on_hup(*_: object) -> None:  # the reload runs in the loop below, not in the handler
        reloads[0] += 1
        wake.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_stop)
    signal.signal(signal.SIGHUP, on_hup)
    from matcher.protocols import group_backend

    logging.info("ristretto255 backend: %s", group_backend.describe(),
                 extra=log_fields(event="group_backend", group_backend=group_backend.NAME))
    running = start_responder(cfg, insecure=args.insecure, listen=args.listen, progress=lambda m: logging.info("%s", m))
    from matcher.server.control import ReloadStatus, remove_pid, write_pid, write_status

    state_dir = cfg.responder.state_dir
    write_pid(state_dir)
    tls = "PLAINTEXT" if args.insecure else "mTLS"
    epoch = running.state.current().key.epoch
    logging.info(
        "serving on port %d (%s); key epoch %s; Ctrl-C or SIGTERM stops, SIGHUP (matcher reload) reloads",
        running.port, tls, epoch, extra=log_fields(event="serving", port=running.port, tls=tls, key_epoch=epoch),
    )
    attempts = done = 0
    try:
        while not stop.is_set():
            wake.wait(1.0)
            wake.clear()
            if reloads[0] != done and not stop.is_set():
                done = reloads[0]  # signals that came in while reloading are served by one more reload
                attempts += 1
                logging.info("SIGHUP: reloading %s", args.config, extra=log_fields(event="reload_start"))
                result = running.reload(args.config, progress=lambda m: logging.info("%s", m))
                write_status(state_dir, ReloadStatus(attempts, os.getpid(), result.ok, result.detail, time.time()))
            running.state.current()  # rotates the key epoch when it is due
        logging.info("shutting down: finishing running sessions (up to %.0f s)", args.grace,
                     extra=log_fields(event="shutting_down"))
        running.stop(args.grace)
    finally:
        remove_pid(state_dir)
    logging.info("stopped", extra=log_fields(event="stopped"))
    return 0


def cmd_reload(args: argparse.Namespace) -> int:
    """Signal the running ``matcher serve`` of this config to reload; print the outcome."""
    from matcher.config import load_responder_config
    from matcher.errors import ConfigError
    from matcher.server.control import request_reload

    try:
        cfg = load_responder_config(args.config)
    except ConfigError as exc:
        print(f"matcher reload: the config would not load, so the server was not signalled: {exc}", file=sys.stderr)
        return 2
    status = request_reload(cfg.responder.state_dir, wait=args.wait)
    if args.wait <= 0:
        print("reload requested; the server logs the outcome (and writes it to reload-status.json in its state folder)")
        return 0
    if status is None:
        print(f"reload requested; no outcome within {args.wait:g} s (a large watchlist's setup takes longer): "
              "see the server's log", file=sys.stderr)
        return 1
    if status.ok:
        print(f"reloaded: {status.detail}")
        return 0
    print(f"reload FAILED, the previous configuration goes on serving: {status.detail}", file=sys.stderr)
    return 1


def _print_problems(args: argparse.Namespace, loaded, limit: int = 20) -> None:
    """The first ``limit`` dropped fields and rejected rows of a load, in line order (no values)."""
    def where(p) -> str:  # database rows by position: their record key is identity data, kept to the rejects file
        return f"row {p.line} of the result" if p.record_key else f"line {p.line}"

    problems = sorted(
        [(d.line, 0, f"  {where(d)}: {d.field} dropped: {d.reason}", "field_dropped") for d in loaded.dropped_fields]
        + [(r.line, 1, f"  rejected {where(r)}: {r.reason}", "record_rejected") for r in loaded.rejected]
    )
    for _line, _kind, text, event in problems[:limit]:
        _say(args, text, logging.WARNING, event=event)
    if len(problems) > limit:
        _say(args, f"  ... and {len(problems) - limit} more in the rejects file", logging.WARNING)


def cmd_match(args: argparse.Namespace) -> int:
    from matcher.config import load_requester_config
    from matcher.requester import run_match

    cfg = load_requester_config(args.config)
    if args.protocol:
        cfg = cfg.model_copy(update={"requester": cfg.requester.model_copy(update={"protocol": args.protocol})})
    if args.insecure:
        _say(args, "WARNING: --insecure: plaintext gRPC, no server authentication. Development only.", logging.WARNING)
    if args.peers:
        if args.peer:
            from matcher.errors import ConfigError

            raise ConfigError("give either --peer HOST:PORT or --peers NAMES, not both")
        return _match_many(args, cfg)
    peer = args.peer or cfg.requester.peer
    if not peer:
        raise SystemExit("matcher match: no responder given: pass --peer HOST:PORT or set [requester] peer")
    started = time.monotonic()
    run = run_match(
        cfg, args.records, peer, out=args.out, rejects_path=args.rejects, insecure=args.insecure,
        progress=_progress_printer(args=args),
    )
    _say(args, run.loaded.summary(), event="records_loaded")
    _print_problems(args, run.loaded)
    res = run.result
    elapsed = time.monotonic() - started
    if _json_logs(args):  # the SIEM's record of the session (the result lines below go to stdout)
        _say(args, f"session {res.session_id} done", event="session_end", session_id=res.session_id, peer=peer,
             protocol=cfg.requester.protocol, elements=res.elements_sent,
             hit_count=res.hit_count,
             outcome="OK", seconds=round(elapsed, 3))
    if res.reveal == "cardinality":
        print(f"{res.hit_count} of {res.elements_sent} tokens hit (cardinality mode: no hit list) "
              f"in {elapsed:.1f} s, session {res.session_id}")
    else:
        print(f"{res.hit_count} hit record(s) of {res.records} ({len(res.hits)} row(s): one per record and "
              f"case reference), written to {args.out} "
              f"in {elapsed:.1f} s, session {res.session_id}, key epoch {res.key_epoch}")
    return 0


def _match_many(args: argparse.Namespace, cfg) -> int:
    """``match --peers``: one session per selected [[responders]] entry; exit 0 / 3 partial / 1 none."""
    from matcher.network import run_match_many

    responders = cfg.select_responders(args.peers)
    printer = _progress_printer(args=args)
    started = time.monotonic()
    run = run_match_many(
        cfg, args.records, responders, out=args.out, rejects_path=args.rejects, insecure=args.insecure,
        progress=(
            (lambda name: (lambda what, done, total: printer(f"{name}: {what}", done, total))) if printer else None
        ),
    )
    _say(args, run.loaded.summary(), event="records_loaded")
    for name, o in run.outcomes.items():
        if o.ok and o.result is not None:
            r = o.result
            told = (f"{r.hit_count} of {r.elements_sent} tokens hit (cardinality)" if r.reveal == "cardinality"
                    else f"{r.hit_count} hit record(s)")
            print(f"{name}: OK, {told}, session {r.session_id}")
        else:
            print(f"{name}: FAILED {o.status}: {o.detail}")
    ok = sum(o.ok for o in run.outcomes.values())
    print(f"{ok} of {len(run.outcomes)} responder(s) answered in {time.monotonic() - started:.1f} s; "
          f"hits written to {args.out}")
    return run.exit_status


def cmd_tokens(args: argparse.Namespace) -> int:
    from matcher.config import load_requester_config
    from matcher.requester import write_tokens

    cfg = load_requester_config(args.config)
    loaded = write_tokens(cfg, args.records, args.out, args.rejects)
    print(loaded.summary(), file=sys.stderr)
    tokens = sum(len(r.tokens) for r in loaded.records)
    print(f"{tokens} tokens of {len(loaded.records)} records written to {args.out} (mode 0600: they identify persons)")
    return 0


def cmd_policy(args: argparse.Namespace) -> int:
    from matcher.config import load_requester_config
    from matcher.requester import client_for

    cfg = load_requester_config(args.config)
    peer = args.peer or cfg.requester.peer
    if not peer:
        raise SystemExit("matcher policy: no responder given: pass --peer HOST:PORT or set [requester] peer")
    with client_for(cfg, peer, insecure=args.insecure) as client:
        p = client.get_policy()
    mine = cfg.key_spec().fingerprint()
    print(f"protocols:            {', '.join(p.protocols)}")
    print(f"reveal:               {p.reveal}")
    print(f"normalisation:        {p.norm_version}")
    for k in p.match_keys:
        print(f"match key:            {k.name} = [{', '.join(k.fields)}]")
    keys_same = "same as ours" if mine == p.key_spec_fingerprint else "DIFFERS from ours: " + mine
    print(f"key spec fingerprint: {p.key_spec_fingerprint} ({keys_same})")
    from matcher.identity.conformance import conformance

    norm = conformance(cfg.key_spec().norm_version)
    same = norm.digest == p.norm_conformance_digest
    print(f"conformance digest:   {p.norm_conformance_digest or '(none)'} "
          f"({'same as ours' if same else 'DIFFERS from ours: ' + norm.digest + ' — no session would be allowed'})")
    print(f"token libraries:      {p.norm_libraries or '(not announced)'}"
          + ("" if p.norm_libraries == norm.libraries else f" (ours: {norm.libraries})"))
    print(f"key epoch:            {p.key_epoch}")
    print(f"limits:               {p.max_request_size} elements per session, {p.max_chunk_elements} per chunk")
    print(f"watchlist setup size: {p.setup_size}")
    from matcher.protocols import group_backend

    print(f"ristretto255 here:    {group_backend.describe()}")
    if mine != p.key_spec_fingerprint:
        print("matcher policy: our match keys differ from the responder's, so it would refuse a session; make "
              "norm_version and [match_keys] (names, fields and order) identical to the keys listed above "
              "(compare with `matcher fingerprint --verbose --config CONFIG` at both agencies)", file=sys.stderr)
        return 1
    return 0


def cmd_fingerprint(args: argparse.Namespace) -> int:
    from matcher.config import load_config

    spec = load_config(args.config).key_spec()
    print(spec.fingerprint())
    if args.verbose:
        print(spec.canonical_json())
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from matcher.demo import run_demo

    run_demo(args.dir)
    return 0


def cmd_dev_certs(args: argparse.Namespace) -> int:
    from matcher.certs import write_agency_certs

    made = write_agency_certs(args.out, args.names, force=args.force, days=args.days)
    print(f"CA: {made.ca_cert} ({'kept' if made.ca_kept else 'new'}; key {made.ca_key}, 0600, keep it to add "
          f"agencies later), valid until {made.ca_valid_until:%Y-%m-%d}")
    for name, (cert, key) in made.certs.items():
        print(f"{name}: {cert} {key} (valid until {made.valid_until:%Y-%m-%d %H:%M} UTC)")
    print(f"Agency certificates are issued for {args.days} days (never beyond the CA's end); run dev-certs again "
          "with --force and the names to renew them.")
    print("These are for trials only; in production use your agencies' own PKI.")
    return 0


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


def cmd_synth(args: argparse.Namespace) -> int:
    from matcher.quality.synth import generate

    if args.romanisers == "third-party":
        from matcher.quality.romanisers import generate_independent

        ind = generate_independent(args.size, args.overlap, args.seed, args.out, responder_size=args.responder_size)
        print(f"wrote {ind.requester}, {ind.responder}, {ind.links} ({ind.shared} shared persons), "
              f"{ind.link_schemes} and the configs {ind.requester_config}, {ind.responder_config}")
        return 0
    res = generate(args.size, args.overlap, args.seed, args.out, responder_size=args.responder_size,
                   closed_pools=args.closed_name_pools)
    print(f"wrote {res.requester}, {res.responder}, {res.links} ({res.shared} shared persons) "
          f"and the configs {res.requester_config}, {res.responder_config}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from matcher.config import load_requester_config, load_responder_config
    from matcher.errors import ConfigError
    from matcher.identity.records import load_records
    from matcher.quality.evaluate import evaluate, read_links

    req_cfg = load_requester_config(args.config)
    spec = req_cfg.key_spec()
    resp_format = req_cfg.records.csv_format()
    if args.responder_config:
        resp_cfg = load_responder_config(args.responder_config)
        if resp_cfg.key_spec().fingerprint() != spec.fingerprint():
            raise ConfigError("the two configs' match keys differ (fingerprints differ): a session would be refused")
        resp_format = resp_cfg.records.csv_format()
    req = load_records(args.requester, req_cfg.records.csv_format(), spec)
    resp = load_records(args.responder, resp_format, spec)
    result = evaluate(req.records, resp.records, read_links(args.links), spec)
    print(f"key spec {spec.fingerprint()[:16]}... (normalisation {spec.norm_version})\n")
    print(result.table())
    print()
    for side, loaded in (("requester", req), ("responder", resp)):
        print(f"{side}: {loaded.summary()}")
        for reason, count in loaded.reasons():
            print(f"{count:>6}  {reason}")
    warnings = [f"warning: key {u.split(' needs ')[0]} cannot be computed from the {side} file (it {u.split(' ', 1)[1]}"
                f"; map the column under [records.columns] or drop the key): its precision 1.0 and recall 0 mean "
                "nothing" for side, loaded in (("requester", req), ("responder", resp)) for u in loaded.unusable_keys]
    for q in result.keys:
        one_side_empty = q.tokens_per_requester_record == 0 or q.tokens_per_responder_record == 0
        if one_side_empty and not any(f"key {q.name} " in w for w in warnings):
            warnings.append(f"warning: key {q.name}: no record of one file yields it; its precision and recall "
                            "say nothing about it")
    if warnings:
        print()
        for w in warnings:
            print(w)
    return 0


def _log_format_option(parser: argparse.ArgumentParser) -> None:
    """``--log-format``, accepted before or after the command (SUPPRESS: the later one wins, none keeps the default)."""
    parser.add_argument(
        "--log-format", choices=LOG_FORMATS, default=argparse.SUPPRESS,
        help="log lines on stderr: text (default; or MATCHER_LOG_FORMAT) or json (one object per line for a "
        "SIEM; fields in docs/operations.md)",
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="matcher",
        description="Privacy-preserving suspect matching between agencies: a requester learns which of its "
        "records a responder also holds (and the responder's case reference), nothing more.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"matcher {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    _log_format_option(p)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("serve", help="run a responder over its watchlist (gRPC, mTLS)",
                       description="Serve the watchlist named in the responder config. Requesters must present a "
                       "client certificate that matches a [[peers]] entry (its SAN or CN, bound to its issuing CA "
                       "or a key pin); see docs/operations.md.")
    s.add_argument("--config", type=Path, required=True, help="responder TOML config")
    s.add_argument("--listen", help="override [responder] listen, e.g. 0.0.0.0:50051")
    s.add_argument("--grace", type=float, default=10.0, help="seconds running sessions get at shutdown (default 10)")
    s.add_argument("--insecure", action="store_true",
                   help="DEVELOPMENT ONLY: plaintext, no peer authentication; binds only to loopback, keeps every "
                   "limit and budget, uses a throw-away key epoch, and is logged")
    s.set_defaults(func=cmd_serve)

    r = sub.add_parser("reload", help="make a running `matcher serve` reload its config and watchlist",
                       description="Send SIGHUP to the `matcher serve` of this config (its pid file, STATE_DIR/"
                       "serve.pid) and wait for the outcome. The server builds the new watchlist's epoch and "
                       "setup aside, reloads [[peers]], budgets and TLS files, and swaps them in; sessions in flight "
                       "finish on what they started with; a reload that fails keeps the old state serving. "
                       "Exit 0 reloaded, 1 failed or no outcome in time, 2 unusable config or no server running.")
    r.add_argument("--config", type=Path, required=True, help="responder TOML config (the running server's)")
    r.add_argument("--wait", type=float, default=600.0,
                   help="seconds to wait for the outcome (default 600; 0 = do not wait)")
    r.set_defaults(func=cmd_reload)

    m = sub.add_parser("match", help="match own records against a responder, write hits.csv",
                       description="Load RECORDS with the requester config's column mapping, run one session against "
                       "the responder and write one row per (hit record, case reference): "
                       "record_id,match_keys,strength,case_ref, "
                       "with the keys that linked that pair and its strength (docs/hits-file.md).")
    m.add_argument("--config", type=Path, required=True, help="requester TOML config")
    m.add_argument("--records", type=Path,
                   help="CSV file of own records (default: the database named by [records] source in the config)")
    m.add_argument("--peer", help="responder HOST:PORT (default: [requester] peer)")
    m.add_argument("--peers", metavar="all|NAME,...",
                   help="ask several [[responders]] of the config at once (one session each, records tokenised "
                   "once); the hits file then has a responder column. Exit 0 all answered, 3 some failed, 1 none")
    m.add_argument("--out", type=Path, default=Path("hits.csv"), help="hits file to write (default hits.csv)")
    m.add_argument("--rejects", type=Path,
                   help="where rejected rows go (default RECORDS.rejects.csv, or [records] rejects for a database)")
    m.add_argument("--insecure", action="store_true", help="DEVELOPMENT ONLY: plaintext, no server authentication")
    m.add_argument("--protocol", choices=PROTOCOLS, help="override [requester] protocol")
    m.set_defaults(func=cmd_match)

    t = sub.add_parser("tokens", help="write a record file's tokens (JSON, mode 0600) for a client in another language",
                       description="Normalise and tokenise RECORDS with the requester config (as `match` does) and "
                       "write them with the key-spec fingerprint and conformance digest to OUT, for a requester "
                       "client written in another language (docs/PROTOCOL.md section 8). The file identifies persons: "
                       "it is created readable by its owner only.")
    t.add_argument("--config", type=Path, required=True, help="requester TOML config")
    t.add_argument("--records", type=Path, required=True, help="CSV file of own records")
    t.add_argument("--out", type=Path, default=Path("tokens.json"), help="tokens file to write (default tokens.json)")
    t.add_argument("--rejects", type=Path, help="where rejected rows go (default RECORDS.rejects.csv)")
    t.set_defaults(func=cmd_tokens)

    q = sub.add_parser("policy", help="show a responder's policy and whether our match keys agree",
                       description="Show the responder's protocols, limits, key spec and key epoch. Exit 0 when "
                       "our match keys are the same as the responder's; 1 when they differ (a session would be "
                       "refused) or the responder cannot be reached; 2 for an unusable config.")
    q.add_argument("--config", type=Path, required=True, help="requester TOML config")
    q.add_argument("--peer", help="responder HOST:PORT (default: [requester] peer)")
    q.add_argument("--insecure", action="store_true", help="DEVELOPMENT ONLY: plaintext")
    q.set_defaults(func=cmd_policy)

    f = sub.add_parser("fingerprint", help="print the match-key spec fingerprint of a config (compare it out of band)")
    f.add_argument("--config", type=Path, required=True)
    f.add_argument("--verbose", action="store_true", help="also print the canonical key spec")
    f.set_defaults(func=cmd_fingerprint)

    d = sub.add_parser("demo", help="two agencies on loopback with bundled synthetic data; prints the hits",
                       description="Makes a throw-away CA and certificates, writes both agencies' configs and data, "
                       "starts agency A's responder on 127.0.0.1, runs agency B's match and prints the hits.")
    d.add_argument("--dir", type=Path, help="where to write the demo's files (default: a new temp folder)")
    d.set_defaults(func=cmd_demo)

    ac = sub.add_parser("audit-config", help="what a config discloses, to whom, and its weaknesses (privacy officer)",
                        description="Audit a requester or responder config: protocols, what each agency learns, "
                        "security model, keys and rotation, match keys, peers and budgets, TLS, session log. Each "
                        "finding has an id, a severity and the fix. Exit 0: no errors; 1: errors; 2: the config "
                        "cannot be read.")
    ac.add_argument("config", type=Path, help="responder or requester TOML config")
    ac.add_argument("--json", action="store_true", help="stable machine-readable report (format matcher-audit/1)")
    ac.add_argument("--records", type=Path, help="also measure each match key on this CSV of your own records")
    ac.set_defaults(func=cmd_audit_config)

    al = sub.add_parser(
        "audit-log", help="verify, list or prune the signed, hash-chained session log (privacy officer)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="""\
verify  check that no row of the session log was edited, deleted or reordered and that
        the head record is signed by the log's key (exit 1 naming the first bad row).
        The first row must be the genesis row or a signed retention checkpoint, so
        deleting the oldest rows fails too.
show    list the sessions.
head    print SEQ:HASH of the newest row, to write down outside the machine and pass
        later as --anchor (a row that is no longer in the log then fails verify).
prune   apply retention now: delete the rows older than --older-than DAYS; the newest
        of them becomes a checkpoint, signed, that commits to what was removed (the
        responder does the same on start with session_log_retention_days).

The signing key is Ed25519, kept in the state folder: session_log.key (0600, the
service's secret) and session_log.pub (its public half). verify and head need only
the public half; by default they use session_log.pub (or .key) next to the log;
pass --key when the log lives elsewhere than the state folder. Whoever can read
session_log.key can still rewrite the log and sign a new head: write the head down
elsewhere and use --anchor against that. See docs/security.md, "At rest".""")
    al.add_argument("action", choices=["verify", "show", "head", "prune"])
    al.add_argument("db", type=Path, help="the session log, [responder] session_log")
    al.add_argument("--since", help="show: only rows from this time on (YYYY-MM-DD, ISO time, or 7d / 12h ago)")
    al.add_argument("--anchor", help="verify: SEQ:HASH printed earlier by `audit-log head`; that row must be intact")
    al.add_argument("--key", type=Path, help="verify, head: session_log.pub (or .key) of the state folder; "
                    "prune: session_log.key (default: next to the log)")
    al.add_argument("--older-than", type=float, metavar="DAYS", help="prune: remove rows older than DAYS days")
    al.add_argument("--json", action="store_true", help="machine-readable output")
    al.set_defaults(func=cmd_audit_log)

    ar = sub.add_parser("audit-report", help="one HTML page for the privacy officer: findings, log check, charts",
                        description="Write one self-contained HTML file (opens offline; nothing is fetched) with the "
                        "session log's verification result and head, the config audit's findings in plain words, and "
                        "charts of sessions per agency per day, tokens asked against each agency's daily budget, how "
                        "sessions ended, and hits per session where known. The file is written with mode 0600. "
                        "Exit 0: written; 1: written, but the session log does not verify; 2: the config cannot be "
                        "read.")
    ar.add_argument("--config", type=Path, required=True, help="responder (or requester) TOML config")
    ar.add_argument("--out", type=Path, required=True, help="HTML file to write, e.g. report.html")
    ar.add_argument("--since", help="only sessions from this time on (YYYY-MM-DD, ISO time, or 7d / 12h ago)")
    ar.add_argument("--anchor", help="SEQ:HASH printed earlier by `audit-log head`; that row must be intact")
    ar.set_defaults(func=cmd_audit_report)

    y = sub.add_parser("synth", help="generate two agencies' synthetic record files with true links",
                       description="Writes requester.csv and responder.csv (the demo's two layouts), links.csv "
                       "(requester_id,responder_id of every pair that is the same person) and requester.toml/"
                       "responder.toml to OUT. Names from several locales and scripts, with realistic "
                       "corruption. The same seed gives the same files.")
    y.add_argument("--size", type=int, required=True, help="requester records (and responder records)")
    y.add_argument("--responder-size", type=int, help="responder records if different from --size")
    y.add_argument("--overlap", type=float, default=0.2, help="share of requester persons also at the responder")
    y.add_argument("--seed", type=int, default=1)
    y.add_argument("--out", type=Path, required=True, help="folder to write the files to")
    y.add_argument("--closed-name-pools", action="store_true",
                   help="draw family names evenly from short hand-written lists only, so that different persons "
                   "share names far more often than in a real population (a precision stress test)")
    y.add_argument("--romanisers", choices=["own", "third-party"], default="own",
                   help="who writes names in Latin letters: the generator's own rules (default), or third-party "
                   "libraries per published scheme (iuliia, cyrtranslit, transliterate, lang-trans, unidecode; "
                   "the dev extra), which also writes link_schemes.csv and record_schemes.csv naming each "
                   "copy's scheme")
    y.set_defaults(func=cmd_synth)

    e = sub.add_parser("evaluate", help="precision/recall of the match keys on test files with known links",
                       description="FOR TEST DATA ONLY: compares the two files' tokens in plaintext, in this process "
                       "(no privacy protection), to tune normalisation and match keys on synthetic or shareable "
                       "data. Prints precision, recall and F1 per key and for the whole key set, tokens per "
                       "record (the cost of a session and of the responder's setup), precision and recall at each "
                       "strength cut-off (strongest key only, down to all keys), each reason for dropped fields and "
                       "rejected rows with its count, and a warning for each key a file cannot produce.")
    e.add_argument("--config", type=Path, required=True, help="requester TOML config (its keys and CSV layout)")
    e.add_argument("--requester", type=Path, required=True, help="requester records CSV")
    e.add_argument("--responder", type=Path, required=True, help="responder records CSV")
    e.add_argument("--links", type=Path, required=True, help="CSV requester_id,responder_id of the true links")
    e.add_argument("--responder-config", type=Path,
                   help="responder TOML config for the responder file's layout (default: --config's layout)")
    e.set_defaults(func=cmd_evaluate)

    c = sub.add_parser("dev-certs", help="make a CA and agency certificates for trials (the CA is kept and reused)",
                       description="Issue NAME.pem and NAME.key (0600) for each agency under the CA in --out "
                       "(ca.pem, ca.key 0600). The CA is made on the first run and reused afterwards, so "
                       "certificates issued earlier stay valid and agencies can be added. Existing certificates "
                       "are replaced only with --force.")
    c.add_argument("--out", type=Path, required=True, help="folder for ca.pem, ca.key, NAME.pem, NAME.key")
    c.add_argument("--force", action="store_true", help="replace existing certificates of the NAMEs (the CA is kept)")
    c.add_argument("--days", type=int, default=30, help="validity of the agency certificates in days (default 30)")
    c.add_argument("names", nargs="+", help="agency names (become the certificates' CN)")
    c.set_defaults(func=cmd_dev_certs)
    for command in sub.choices.values():
        _log_format_option(command)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.log_format = getattr(args, "log_format", None) or default_format()
    setup_logging(args.log_format, args.verbose)
    from clients import ConnectionFailed, MatchFailed
    from matcher.errors import ConfigError, InputFileError, MatcherError

    def fail(message: str, status: int, reason: str) -> int:
        _say(args, f"matcher {args.command}: {message}", logging.ERROR, event="command_failed", reason=reason,
             exit_status=status)
        return status

    try:
        return args.func(args)
    except (ConfigError, InputFileError) as exc:
        return fail(str(exc), 2, type(exc).__name__)
    except ConnectionFailed as exc:  # the message names the setting to check
        return fail(str(exc), 1, exc.problem)
    except OSError as exc:  # a file named on the command line or in the config
        where = f"{exc.filename}: " if exc.filename else ""
        return fail(f"{where}{exc.strerror or exc}; check the path and its permissions", 2, type(exc).__name__)
    except MatchFailed as exc:
        return fail(f"the responder ended the session: {exc}", 1, type(exc).__name__)
    except MatcherError as exc:
        return fail(f"{exc.status}: {exc}", 1, type(exc).__name__)
    except KeyboardInterrupt:
        return fail("interrupted", 130, "KeyboardInterrupt")


if __name__ == "__main__":
    sys.exit(main())
