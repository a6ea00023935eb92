"""The requester's commands: ``match`` (one responder or ``--peers``), ``tokens``, ``policy``, ``fingerprint``."""

from __future__ import annotations

import argparse
import logging
import sys
import time

from matcher.cli.output import _json_logs, _progress_printer, _say


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
    if args.held is not None:  # the records and hits: dropped by the process's exit, not freed (cli.entry)
        args.held.append(run)
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
    from matcher.protocols import group_backend, modexp_backend

    print(f"ristretto255 here:    {group_backend.describe()}")
    print(f"paillier here:        {modexp_backend.describe()}")
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
