"""``build_parser``: every command's options, help texts and exit statuses (the one place a CLI option is declared)."""

from __future__ import annotations

import argparse
from pathlib import Path

from matcher import __version__
from matcher.cli.audit import cmd_audit_config, cmd_audit_log, cmd_audit_report
from matcher.cli.dev import cmd_demo, cmd_dev_certs, cmd_evaluate, cmd_synth
from matcher.cli.match import cmd_fingerprint, cmd_match, cmd_policy, cmd_tokens
from matcher.cli.serve import cmd_reload, cmd_serve
from matcher.config import PROTOCOLS
from matcher.logs import LOG_FORMATS

EPILOG = """\
Exit status: 0 success; 1 the session failed or was refused, the responder could not be
reached or the TLS handshake failed (the message names the setting to check), or
(policy) the two agencies' match keys differ; 2 a config, records file, other file,
listen address (port in use) or command line that cannot be used;
3 (match --peers) some responders answered and some failed (each is listed).
See README.md for how two agencies set up their configs and certificates."""


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
