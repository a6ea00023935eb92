"""Running a responder: load the watchlist, build the epoch state, serve it over gRPC."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2

from matcher.config import ResponderConfig, load_responder_config, require_keyed_hash_opt_in  # noqa: F401
from matcher.errors import ConfigError, MatcherError
from matcher.identity.conformance import require_conformant
from matcher.identity.records import LoadResult, TokenisedRecord, load_records
from matcher.identity.sql_source import SqlSource
from matcher.logs import log_fields
from matcher.parallel import Workers, gc_paused, short_gil_switch
from matcher.peer_auth import PeerAllowlist
from matcher.server.metrics import ResponderMetrics
from matcher.server.service import INSECURE_PEER, ResponderServicer, TlsMaterial, build_server
from matcher.server.state import ResponderState, setup_ahead
from matcher.storage.secrets_store import check_private

log = logging.getLogger("matcher.server.responder")


def load_watchlist(
    config: ResponderConfig, rejects_path: Path | None = None, progress: Callable[[str], None] | None = None,
    on_records: Callable[[list[TokenisedRecord]], None] | None = None,
) -> LoadResult:
    """The responder's records with their tokens, from its CSV watchlist or its database
    ``[records] source``; bad rows go to the rejects file. ``on_records``: see :func:`load_records`."""
    s = config.responder
    source: Path | SqlSource | None = config.records.sql_source()
    if source is not None:
        rejects = rejects_path or config.records.rejects
    else:
        assert s.watchlist is not None  # the config requires a watchlist file or a database source
        source = s.watchlist
        rejects = rejects_path or s.watchlist.with_name(s.watchlist.stem + ".rejects.csv")
    return load_records(
        source, config.records.csv_format(), config.key_spec(), require_case_ref=True, rejects_path=rejects,
        progress=(lambda n: progress(f"loading watchlist: {n} rows read")) if progress else None,
        on_records=on_records,
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
    _reload_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def reload(
        self, config_path: str | os.PathLike[str], progress: Callable[[str], None] | None = None
    ) -> ReloadResult:
        """Reload the config and the watchlist from its source; swap them in if everything is usable.

        The new generation (config, [[peers]] and their budgets, TLS files, watchlist,
        key epoch and setup) is built aside while the old one goes on serving, then
        swapped in for sessions that start from then on; sessions in flight finish on the
        generation they started with. A new TLS certificate is used from the next
        handshake. Anything that fails (an invalid config, an unreadable watchlist or TLS
        file, a setting that needs a restart) leaves the old generation serving; the
        result says why, and so does the log. One reload at a time.
        """
        with self._reload_lock:
            old = self.state
            try:
                detail, serving, summary = self._prepare_reload(Path(config_path), old, progress)
            except MatcherError as exc:
                why = str(exc)
            except OSError as exc:
                why = f"{type(exc).__name__}: {exc.strerror or exc}"
            except Exception as exc:  # a bug must not take down the serving generation either
                log.exception("reload failed unexpectedly")
                why = f"internal error ({type(exc).__name__}; see the service's log)"
            else:
                assert self.servicer is not None
                self.servicer.swap(serving)
                self.state, self.watchlist_summary = serving.state, summary
                log.info("reloaded: %s", detail, extra=log_fields(event="reloaded", outcome="OK"))
                return ReloadResult(True, detail)
            log.error("reload failed, the previous configuration and watchlist go on serving: %s", why,
                      extra=log_fields(event="reload_failed", outcome="FAILED"))
            return ReloadResult(False, why)

    def _prepare_reload(self, path: Path, old: ResponderState, progress: Callable[[str], None] | None):
        config = load_responder_config(path)
        insecure = self.servicer is not None and self.servicer.insecure
        changed = [k for k in RESTART_ONLY if getattr(config.responder, k) != getattr(old.settings, k)]
        if (config.metrics is None) != (old.config.metrics is None) or (
                config.metrics is not None and config.metrics != old.config.metrics):
            changed.append("[metrics]")
        if changed:
            raise ConfigError(
                f"{path}: {', '.join(changed)} changed, which takes a restart (matcher serve), not a reload; "
                "restart the server, or put the old value back to reload the rest"
            )
        if not config.peers and not insecure:
            raise ConfigError(f"{path}: no [[peers]] configured: nobody would be allowed to match")
        require_conformant(config.key_spec().norm_version)  # as at start: a broken installation never serves
        tls = None if insecure else read_tls(config)
        # the new epoch's setup, aside (the records are freed before it is built)
        state = ResponderState(config, load_watchlist(config, progress=progress), progress=progress, shared=old,
                               release_records=True)
        summary = state.watchlist_summary
        if "keyed-hash" in config.responder.protocols:
            require_keyed_hash_opt_in(config)
            state.keyed_hash_index()
        assert self.servicer is not None
        serving = self.servicer.prepare(state, tls)
        epoch = state.current().key.epoch
        detail = (f"{summary}; key epoch {epoch}; {len(config.peers)} peer(s)"
                  f"{'' if tls is None else '; TLS files read'}")
        return detail, serving, summary

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


#: [responder] settings a running server cannot change (the port, its folders and log, its
#: worker pool, gRPC's message and thread limits): a reload that changes one is refused.
RESTART_ONLY: tuple[str, ...] = (
    "listen", "state_dir", "session_log", "session_log_retention_days", "workers", "dask_scheduler", "dask_tls",
    "max_sessions", "max_chunk_elements", "max_request_size", "session_timeout_seconds", "hello_timeout_seconds",
)


@dataclass(frozen=True)
class ReloadResult:
    """The outcome of :meth:`RunningResponder.reload`: ``detail`` is what was loaded, or why not."""

    ok: bool
    detail: str


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
    workers: Workers | None = None
    try:
        # The worker pool starts now, so that the setup's group operations run on it while
        # the watchlist is read (setup_ahead), not after it.
        s = config.responder
        workers = Workers(s.workers, s.dask_scheduler, s.dask_tls)
        ahead = setup_ahead(s, scratch or s.state_dir, workers)
        # The state frees the records once it has their tokens, before the setup. The cyclic
        # garbage collector is paused meanwhile (millions of new objects, no cycles: its passes
        # over them cost seconds at 1M records).
        # While the watchlist is read, a short GIL switch interval lets the process pool's
        # threads move batches to and from the workers (parallel.short_gil_switch).
        with gc_paused(), short_gil_switch() if ahead is not None else contextlib.nullcontext():
            on_records = ahead.feed if ahead is not None else None
            state = ResponderState(
                config, load_watchlist(config, progress=progress, on_records=on_records),
                progress=progress, epoch_dir=scratch, workers=workers, ahead=ahead, release_records=True,
            )
        workers = None  # the state closes it
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
        if workers is not None:
            workers.close()
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
    return RunningResponder(server, port, state, health_servicer, state.watchlist_summary, servicer, metrics,
                            metrics_port, scratch)


def _with_port(listen: str, port: int) -> str:
    return f"{listen.rpartition(':')[0]}:{port}"
