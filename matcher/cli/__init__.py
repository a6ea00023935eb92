"""The ``matcher`` command line: serve, match, policy, fingerprint, demo, dev-certs, audit, synth, evaluate.

``main`` runs one command; the options are declared in ``parser.py``, the commands in one module per
group (``serve.py``, ``match.py``, ``audit.py``, ``dev.py``), the operator's output in ``output.py``.
The CLI is the top layer: it may import every package, and none imports it.
"""

from __future__ import annotations

import logging

from matcher.cli.audit import cmd_audit_config, cmd_audit_log, cmd_audit_report
from matcher.cli.dev import cmd_demo, cmd_dev_certs, cmd_evaluate, cmd_synth
from matcher.cli.match import cmd_fingerprint, cmd_match, cmd_policy, cmd_tokens
from matcher.cli.output import _json_logs, _progress_printer, _say
from matcher.cli.parser import EPILOG, build_parser
from matcher.cli.serve import cmd_reload, cmd_serve
from matcher.logs import default_format, setup_logging

__all__ = [
    "EPILOG", "build_parser", "cmd_audit_config", "cmd_audit_log", "cmd_audit_report", "cmd_demo", "cmd_dev_certs",
    "cmd_evaluate", "cmd_fingerprint", "cmd_match", "cmd_policy", "cmd_reload", "cmd_serve", "cmd_synth",
    "cmd_tokens", "main", "_json_logs", "_progress_printer", "_say",
]


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
