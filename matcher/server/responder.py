"""Running a responder: load the watchlist, build the epoch state, serve it over gRPC."""

from __future__ import annotations

import ipaddress
import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2

from matcher.server.budgets import BUDGET_FILE, BudgetLedger
from matcher.config import RequesterConfig, ResponderConfig
from matcher.errors import ConfigError
from matcher.identity.records import LoadResult, load_records
from matcher.storage.secrets_store import check_private
from matcher.server.state import ResponderState
from matcher.server.service import INSECURE_PEER, ResponderServicer, TlsMaterial, build_server

log = logging.getLogger("matcher.server.responder")


def load_watchlist(
    config: ResponderConfig, rejects_path: Path | None = None, progress: Callable[[str], None] | None = None
) -> LoadResult:
    """The responder's records with their tokens; bad rows go to the rejects file."""
    s = config.responder
    rejects = rejects_path or s.watchlist.with_name(s.watchlist.stem + ".rejects.csv")
    return load_records(
        s.watchlist, config.records.csv_format(), config.key_spec(), require_case_ref=True, rejects_path=rejects,
        progress=(lambda n: progress(f"loading watchlist: {n} rows read")) if progress else None,
    )


def require_keyed_hash_opt_in(config: ResponderConfig | RequesterConfig) -> None:
    """Refuse keyed-hash unless the config says ``[keyed_hash] allow_keyed_hash = true``."""
    if config.keyed_hash is None or not config.keyed_hash.allow_keyed_hash:
        raise ConfigError(
            "keyed-hash protects against outsiders only (either agency can test guesses against the other's tags); "
            "it is offered only with [keyed_hash] allow_keyed_hash = true"
        )


def read_tls(config: ResponderConfig) -> TlsMaterial:
    """The responder's certificate, key (must be 0600) and the CA of its peers."""
    tls = config.tls
    if tls is None:
        raise ConfigError("no [tls] table: mutual TLS needs cert, key and ca (or run with --insecure for development)")
    try:
        check_private(tls.key)
        return TlsMaterial(tls.cert.read_bytes(), tls.key.read_bytes(), tls.ca.read_bytes())
    except OSError as exc:
        raise ConfigError(f"cannot read TLS file: {exc}") from None


@dataclass
class RunningResponder:
    """A started responder; ``stop()`` shuts it down gracefully."""

    server: grpc.Server
    port: int
    state: ResponderState
    health: health.HealthServicer
    watchlist_summary: str  # rows read, used and rejected (the records themselves are not kept)
    servicer: ResponderServicer | None = None
    scratch: Path | None = None  # --insecure: the throw-away state folder, removed at stop

    def stop(self, grace: float = 5.0) -> None:
        """Stop taking sessions, let running ones finish for ``grace`` seconds, then cancel them.

        The session log is closed only once every cancelled session has written its end row.
        """
        self.health.enter_graceful_shutdown()
        self.server.stop(grace).wait()
        if self.servicer is not None and not self.servicer.wait_idle(10.0):
            log.warning("sessions still running 10 s after shutdown; closing the state anyway")
        self.state.close()
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)


def is_loopback(listen: str) -> bool:
    """Whether a gRPC listen address (``host:port``, ``[v6]:port``) binds only to loopback."""
    host = listen.rsplit(":", 1)[0] if ":" in listen else listen
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def insecure_config(config: ResponderConfig, listen: str) -> tuple[ResponderConfig, Path]:
    """The config ``--insecure`` runs under: loopback only, a throw-away state folder (and so key epoch).

    ConfigError when ``listen`` is not a loopback address. Every limit of the config
    stays; the budgets are kept in the real state folder under the pseudo-peer
    ``(insecure)`` (see ResponderServicer), so a development run cannot spend them
    away by restarting within the day.
    """
    if not is_loopback(listen):
        raise ConfigError(
            f"--insecure serves plaintext without peer authentication and binds only to loopback; "
            f"{listen!r} is not a loopback address: use --listen 127.0.0.1:PORT, or drop --insecure and use mTLS"
        )
    scratch = Path(tempfile.mkdtemp(prefix="matcher-insecure-"))  # mkdtemp: mode 0700
    settings = config.responder.model_copy(update={"state_dir": scratch})
    return config.model_copy(update={"responder": settings}), scratch


def start_responder(
    config: ResponderConfig,
    *,
    insecure: bool = False,
    listen: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> RunningResponder:
    """Load, set up and start serving; returns once the port is bound."""
    if not config.peers and not insecure:
        raise ConfigError("no [[peers]] configured: nobody would be allowed to match; add the requester agencies")
    listen = listen or config.responder.listen
    production_state = config.responder.state_dir
    scratch = None
    if insecure:
        config, scratch = insecure_config(config, listen)
    tls = None if insecure else read_tls(config)
    watchlist = load_watchlist(config, progress=progress)
    if progress:
        progress(watchlist.summary())
    state = ResponderState(config, watchlist, progress=progress)
    if insecure:
        production_state.mkdir(mode=0o700, parents=True, exist_ok=True)
        state.budgets = BudgetLedger(production_state / BUDGET_FILE)
    if "keyed-hash" in config.responder.protocols:
        require_keyed_hash_opt_in(config)
        state.keyed_hash_index()  # fail now, not in a session, if the secret is missing
    servicer = ResponderServicer(state, insecure=insecure)
    server, port, health_servicer = build_server(servicer, listen, tls)
    server.start()
    if insecure:
        epoch = state.current().key.epoch
        log.warning(
            "INSECURE development mode: plaintext gRPC without peer authentication on %s (port %d, loopback only); "
            "throw-away key epoch %s in %s; every caller is the peer %s under the tightest [[peers]] limits",
            listen, port, epoch, scratch, INSECURE_PEER,
        )
        if state.session_log is not None:
            state.session_log.append(
                event="insecure", role="responder", peer=INSECURE_PEER, config_fingerprint=state.config_fingerprint,
                detail=f"serve --insecure on loopback port {port}, throw-away key epoch {epoch}",
            )
    health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    return RunningResponder(server, port, state, health_servicer, watchlist.summary(), servicer, scratch)
