"""The ``matcher`` command line: serve, match, policy, fingerprint, demo, dev-certs, audit, synth, evaluate.

``main`` runs one command; the options are declared in ``parser.py``, the commands in one module per
group (``serve.py``, ``match.py``, ``audit.py``, ``dev.py``), the operator's output in ``output.py``.
The CLI is the top layer: it may import every package, and none imports it.
"""

from __future__ import annotations

import logging
import os
import sys

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
    "cmd_tokens", "entry", "main", "_json_logs", "_progress_printer", "_say",
]


def entry() -> None:
    """The ``matcher`` console script (and ``python -m matcher.cli``): :func:`main`, then exit.

    A command that built a large heap (``match`` with a million records holds about ten
    million objects at its end) hands it to ``held`` instead of letting it go: the process
    then ends with ``os._exit`` after flushing its output and logs, and the kernel frees the
    memory at once, where CPython's teardown would free the objects one by one (0.3 s, the
    last of a 1M match, on one core). Everything the command writes is closed before it
    returns (hits file, session log, setup cache); a process with child processes (worker
    pools, a local Dask cluster) exits the orderly way, as does every command that held nothing.
    """
    held: list[object] = []
    status = main(held=held)
    if held and not _has_children():
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):  # a closed or broken pipe: the orderly way reports it
            sys.exit(status)
        logging.shutdown()
        os._exit(status)
    sys.exit(status)


def _has_children() -> bool:
    """True while this process has child processes that an orderly exit would stop and wait for."""
    mp = sys.modules.get("multiprocessing")
    return mp is not None and bool(mp.active_children())


def main(argv: list[str] | None = None, *, held: list[object] | None = None) -> int:
    """Run one command; returns its exit status (errors become messages that name cause and fix).

    ``held``: where a command may put what it built, to be dropped by the process's exit
    rather than freed (see :func:`entry`); None (tests, embedding) frees everything as usual.
    """
    args = build_parser().parse_args(argv)
    args.held = held
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
