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

from matcher.config import ResponderConfig, require_keyed_hash_opt_in  # noqa: F401  (re-exported)
from matcher.errors import ConfigError
from matcher.identity.conformance import require_conformant
from matcher.identity.records import LoadResult, load_records
from matcher.logs import log_fields
from matcher.peer_auth import PeerAllowlist
from matcher.server.metrics import ResponderMetrics
from matcher.server.service import INSECURE_PEER, ResponderServicer, TlsMaterial, build_server
from matcher.server.state import ResponderState
from matcher.storage.secrets_store import check_private

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
    metrics: ResponderMetrics | None = None  # with [metrics]: the Prometheus endpoint
    metrics_port: int | None = None
    scratch: Path | None = None  # --insecure: the throw-away state folder, removed at stop

    def stop(self, grace: float = 5.0) -> None:
        """Stop taking sessions, let running ones finish for ``grace`` seconds, then cancel them.

        The session log is closed only once every cancelled session has written its end row.
        """
        self.health.enter_graceful_shutdown()
        if self.metrics is not None:
            self.metrics.close()
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


def insecure_epoch_dir(listen: str) -> Path:
    """``--insecure``: check that ``listen`` is loopback, and make the throw-away folder of its key epoch.

    ConfigError when ``listen`` is not a loopback address. Only the epoch key and its
    setup live in the throw-away folder (mode 0700, removed at stop); budgets, the
    session log and its key stay in the real state folder, so the limits hold across
    restarts and the runs are on the record.
    """
    if not is_loopback(listen):
        raise ConfigError(
            f"--insecure serves plaintext without peer authentication and binds only to loopback; "
            f"{listen!r} is not a loopback address: use --listen 127.0.0.1:PORT, or drop --insecure and use mTLS"
        )
    return Path(tempfile.mkdtemp(prefix="matcher-insecure-"))  # mkdtemp: mode 0700


def start_responder(
    config: ResponderConfig,
    *,
    insecure: bool = False,
    listen: str | None = None,
    progress: Callable[[str], None] | None = None,
    metrics_listen: str | None = None,
) -> RunningResponder:
    """Load, set up and start serving; returns once the port is bound.

    With a ``[metrics]`` table the Prometheus endpoint is started too (``metrics_listen``
    overrides its address, e.g. port 0 in tests).
    """
    if not config.peers and not insecure:
        raise ConfigError("no [[peers]] configured: nobody would be allowed to match; add the requester agencies")
    listen = listen or config.responder.listen
    tls = None if insecure else read_tls(config)
    if tls is not None:  # an ambiguous peer binding fails now, before the watchlist is loaded
        PeerAllowlist(list(config.peers), tls.ca)
    require_conformant(config.key_spec().norm_version)  # a broken installation never serves
    scratch = insecure_epoch_dir(listen) if insecure else None
    state = None
    metrics = None
    try:
        watchlist = load_watchlist(config, progress=progress)
        if progress:
            progress(watchlist.summary())
        state = ResponderState(config, watchlist, progress=progress, epoch_dir=scratch)
        if "keyed-hash" in config.responder.protocols:
            require_keyed_hash_opt_in(config)
            state.keyed_hash_index()  # fail now, not in a session, if the secret is missing
        if config.metrics is not None:
            metrics = ResponderMetrics(state)
        servicer = ResponderServicer(state, insecure=insecure, metrics=metrics)
        server, port, health_servicer = build_server(servicer, listen, tls)
        metrics_port = None
        if metrics is not None:
            assert config.metrics is not None  # metrics exist only with a [metrics] table
            metrics.active_sessions = lambda: servicer._active
            try:
                metrics_port = metrics.serve(metrics_listen or config.metrics.listen)
            except OSError as exc:
                raise ConfigError(
                    f"[metrics] listen {metrics_listen or config.metrics.listen}: cannot listen ({exc})"
                ) from None
            log.info("metrics on http://%s/metrics", _with_port(metrics_listen or config.metrics.listen, metrics_port),
                     extra=log_fields(event="metrics_listening", port=metrics_port))
        server.start()
    except BaseException:
        if metrics is not None:
            metrics.close()
        if state is not None:
            state.close()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
        raise
    if insecure:
        epoch = state.current().key.epoch
        log.warning(
            "INSECURE development mode: plaintext gRPC without peer authentication on %s (port %d, loopback only); "
            "throw-away key epoch %s in %s; every caller is the peer %s under the tightest [[peers]] limits",
            listen, port, epoch, scratch, INSECURE_PEER,
            extra=log_fields(event="insecure_mode", port=port, key_epoch=epoch),
        )
        if state.session_log is not None:
            state.session_log.append(
                event="insecure", role="responder", peer=INSECURE_PEER, config_fingerprint=state.config_fingerprint,
                detail=f"serve --insecure on loopback port {port}, throw-away key epoch {epoch}",
            )
    health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    return RunningResponder(server, port, state, health_servicer, watchlist.summary(), servicer, metrics, metrics_port,
                            scratch)


def _with_port(listen: str, port: int) -> str:
    return f"{listen.rpartition(':')[0]}:{port}"
