"""``matcher serve`` (the responder: signals, reloads, graceful stop) and ``matcher reload``."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time

from matcher.cli.output import _say
from matcher.logs import log_fields


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
    if "paillier" in cfg.responder.protocols:
        from matcher.protocols import modexp_backend

        logging.info("paillier arithmetic: %s", modexp_backend.describe(), extra=log_fields(event="paillier_backend"))
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
