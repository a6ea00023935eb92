"""The ``matcher`` command line: serve, match, policy, fingerprint, demo, dev-certs."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from pathlib import Path

from matcher import __version__
from matcher.config import PROTOCOLS

EPILOG = """\
Exit status: 0 success; 1 the session failed or was refused (the message says why);
2 a config, records file or command line that cannot be used.
See README.md for how two agencies set up their configs and certificates."""


def _progress_printer(stream=sys.stderr):
    """Progress on a terminal only (a CI log or a pipe gets no carriage-return noise)."""
    if not stream.isatty():
        return None
    last = [0.0]

    def show(what: str, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - last[0] < 0.2:
            return
        last[0] = now
        pct = 100.0 * done / total if total else 100.0
        stream.write(f"\r{what} {done}/{total} elements ({pct:5.1f}%)")
        if done >= total:
            stream.write("\n")
        stream.flush()

    return show


def cmd_serve(args: argparse.Namespace) -> int:
    from matcher.config import load_responder_config
    from matcher.responder import start_responder

    cfg = load_responder_config(args.config)
    if args.insecure:
        print("WARNING: --insecure: plaintext gRPC, no peer authentication. Development only.", file=sys.stderr)
    running = start_responder(cfg, insecure=args.insecure, listen=args.listen, progress=lambda m: logging.info("%s", m))
    logging.info(
        "serving on port %d (%s); key epoch %s; Ctrl-C or SIGTERM stops",
        running.port, "PLAINTEXT" if args.insecure else "mTLS", running.state.current().key.epoch,
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(1.0):
        running.state.current()  # rotates the key epoch when it is due
    logging.info("shutting down: finishing running sessions (up to %.0f s)", args.grace)
    running.stop(args.grace)
    return 0


def cmd_match(args: argparse.Namespace) -> int:
    from matcher.config import load_requester_config
    from matcher.requester import run_match

    cfg = load_requester_config(args.config)
    if args.protocol:
        cfg = cfg.model_copy(update={"requester": cfg.requester.model_copy(update={"protocol": args.protocol})})
    peer = args.peer or cfg.requester.peer
    if not peer:
        raise SystemExit("matcher match: no responder given: pass --peer HOST:PORT or set [requester] peer")
    if args.insecure:
        print("WARNING: --insecure: plaintext gRPC, no server authentication. Development only.", file=sys.stderr)
    started = time.monotonic()
    run = run_match(
        cfg, args.records, peer, out=args.out, rejects_path=args.rejects, insecure=args.insecure,
        progress=_progress_printer(),
    )
    print(run.loaded.summary(), file=sys.stderr)
    for r in run.loaded.rejected[:20]:
        print(f"  rejected line {r.line}: {r.reason}", file=sys.stderr)
    if len(run.loaded.rejected) > 20:
        print(f"  ... and {len(run.loaded.rejected) - 20} more in the rejects file", file=sys.stderr)
    res = run.result
    elapsed = time.monotonic() - started
    if res.reveal == "cardinality":
        print(f"{res.hit_count} of {res.elements_sent} tokens hit (cardinality mode: no hit list) "
              f"in {elapsed:.1f} s, session {res.session_id}")
    else:
        print(f"{len(res.hits)} hit record(s) of {res.records}, written to {args.out} "
              f"in {elapsed:.1f} s, session {res.session_id}, key epoch {res.key_epoch}")
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
    print(f"key spec fingerprint: {p.key_spec_fingerprint} ({'same as ours' if mine == p.key_spec_fingerprint else 'DIFFERS from ours: ' + mine})")
    print(f"key epoch:            {p.key_epoch}")
    print(f"limits:               {p.max_request_size} elements per session, {p.max_chunk_elements} per chunk")
    print(f"watchlist setup size: {p.setup_size}")
    return 0


def cmd_fingerprint(args: argparse.Namespace) -> int:
    import tomllib

    from matcher.config import load_requester_config, load_responder_config

    with open(args.config, "rb") as fh:
        is_responder = "responder" in tomllib.load(fh)
    cfg = (load_responder_config if is_responder else load_requester_config)(args.config)
    spec = cfg.key_spec()
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

    paths = write_agency_certs(args.out, args.names)
    print(f"CA: {args.out / 'ca.pem'}")
    for name, (cert, key) in paths.items():
        print(f"{name}: {cert} {key}")
    print("These are for trials only; in production use your agencies' own PKI.")
    return 0


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
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("serve", help="run a responder over its watchlist (gRPC, mTLS)",
                       description="Serve the watchlist named in the responder config. Requesters must present a "
                       "client certificate whose CN is in [[peers]].")
    s.add_argument("--config", type=Path, required=True, help="responder TOML config")
    s.add_argument("--listen", help="override [responder] listen, e.g. 0.0.0.0:50051")
    s.add_argument("--grace", type=float, default=10.0, help="seconds running sessions get at shutdown (default 10)")
    s.add_argument("--insecure", action="store_true", help="DEVELOPMENT ONLY: plaintext, no peer authentication")
    s.set_defaults(func=cmd_serve)

    m = sub.add_parser("match", help="match own records against a responder, write hits.csv",
                       description="Load RECORDS with the requester config's column mapping, run one session against "
                       "the responder and write one row per hit record: record_id,match_keys,case_ref.")
    m.add_argument("--config", type=Path, required=True, help="requester TOML config")
    m.add_argument("--records", type=Path, required=True, help="CSV file of own records")
    m.add_argument("--peer", help="responder HOST:PORT (default: [requester] peer)")
    m.add_argument("--out", type=Path, default=Path("hits.csv"), help="hits file to write (default hits.csv)")
    m.add_argument("--rejects", type=Path, help="where rejected rows go (default RECORDS.rejects.csv)")
    m.add_argument("--insecure", action="store_true", help="DEVELOPMENT ONLY: plaintext, no server authentication")
    m.add_argument("--protocol", choices=PROTOCOLS, help="override [requester] protocol (ecdh or paillier)")
    m.set_defaults(func=cmd_match)

    q = sub.add_parser("policy", help="show a responder's policy and whether our match keys agree")
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

    c = sub.add_parser("dev-certs", help="make a throw-away CA and agency certificates for trials")
    c.add_argument("--out", type=Path, required=True, help="folder for ca.pem, NAME.pem, NAME.key")
    c.add_argument("names", nargs="+", help="agency names (become the certificates' CN)")
    c.set_defaults(func=cmd_dev_certs)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from clients import MatchFailed
    from matcher.errors import ConfigError, InputFileError, MatcherError

    try:
        return args.func(args)
    except (ConfigError, InputFileError) as exc:
        print(f"matcher {args.command}: {exc}", file=sys.stderr)
        return 2
    except MatchFailed as exc:
        print(f"matcher {args.command}: the responder ended the session: {exc}", file=sys.stderr)
        return 1
    except MatcherError as exc:
        print(f"matcher {args.command}: {exc.status.name}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"matcher {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
