"""The responder's gRPC service: policy, one ``Match`` stream per session, mTLS, health.

The session lives exactly as long as its stream: there is no session table, so a
cancelled call, a passed deadline or a dropped connection frees everything.
Every received element goes through the ecdh core's checks; a bad one ends the
session with INVALID_ARGUMENT and the server goes on serving others.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import secrets
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass
from typing import TYPE_CHECKING

import grpc
from cryptography import x509
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from matcher.config import PROTOCOLS, PeerConfig
from matcher.errors import (
    KeySpecMismatch,
    LimitExceeded,
    MatcherError,
    PeerNotAllowed,
    ProtocolViolation,
    SessionTimeout,
    UnsupportedProtocol,
)
from matcher.grpc_status import status_code
from matcher.server.state import ResponderState
from matcher.logs import log_fields
from matcher.sessions import RESPONDER_SESSIONS
from matcher.sessions.limits import message_limit
from matcher.v1 import matcher_pb2 as pb
from matcher.v1 import matcher_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    from matcher.server.metrics import ResponderMetrics

log = logging.getLogger("matcher.server.responder")

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Responder"].full_name


def peer_identity(context: grpc.ServicerContext) -> tuple[str | None, str | None]:
    """The client certificate's subject CN and SHA-256 fingerprint (None without TLS)."""
    auth = context.auth_context()
    pem = (auth.get("x509_pem_cert") or [None])[0]
    if not pem:
        return None, None
    cert = x509.load_pem_x509_certificate(pem)
    cns = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    from cryptography.hazmat.primitives.serialization import Encoding

    fingerprint = hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()
    return (str(cns[0].value) if cns else None), fingerprint


class ResponderServicer(pb_grpc.ResponderServicer):
    """Serves the policy and matching sessions over one watchlist."""

    def __init__(self, state: ResponderState, insecure: bool = False, metrics: ResponderMetrics | None = None) -> None:
        self.state = state
        self.insecure = insecure
        self.metrics = metrics  # optional Prometheus hooks (matcher.server.metrics)
        s = state.settings
        self.max_request = s.max_request_size
        self.max_chunk = s.max_chunk_elements
        self.session_timeout = s.session_timeout_seconds
        self.max_sessions = s.max_sessions
        self._slots = threading.BoundedSemaphore(s.max_sessions)
        self._active = 0
        self._idle = threading.Condition()
        self._peers: dict[str, PeerConfig] = {p.name: p for p in state.config.peers}

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no Match handler runs any more (its end row written); False on timeout.

        ``grpc.Server.stop`` cancels the calls but their handler threads may still be
        finishing: the state (session log) must stay open until they have.
        """
        with self._idle:
            return self._idle.wait_for(lambda: self._active == 0, timeout)

    # -- who is asking -------------------------------------------------------------
    def _authorise(self, context: grpc.ServicerContext) -> str:
        if self.insecure:
            return "insecure:" + context.peer()
        cn, fingerprint = peer_identity(context)
        for peer in self.state.config.peers:
            if cn == peer.common_name and (peer.cert_sha256 is None or secrets.compare_digest(peer.cert_sha256, fingerprint or "")):
                return peer.name
        raise PeerNotAllowed(
            "this client certificate is not in the responder's peer allowlist; "
            "ask the responder agency to add it under [[peers]]"
        )

    def _policy(self) -> pb.Policy:
        epoch = self.state.current()
        ks = self.state.keyspec
        return pb.Policy(
            protocols=list(self.state.settings.protocols),
            match_keys=[pb.MatchKeyDef(name=k.name, fields=list(k.fields)) for k in ks.keys],
            key_spec_fingerprint=ks.fingerprint(),
            norm_version=ks.norm_version,
            key_epoch=epoch.key.epoch,
            max_request_size=self.max_request,
            max_chunk_elements=self.max_chunk,
            reveal=self.state.settings.reveal,
            setup_size=len(epoch.setup),
            setup_id=epoch.setup_id,
        )

    def GetPolicy(self, request: pb.GetPolicyRequest, context: grpc.ServicerContext) -> pb.Policy:
        try:
            self._authorise(context)
            if isinstance(request, Undecodable):
                raise ProtocolViolation("the request is not a valid GetPolicyRequest (protobuf decoding failed)")
            return self._policy()
        except MatcherError as exc:
            if self.metrics is not None:
                self.metrics.refused(None, exc)
            context.abort(status_code(exc), str(exc))

    # -- one session ---------------------------------------------------------------
    def _log(self, **fields: object) -> None:
        """Append a row to the session log, if one is configured (never identity data)."""
        if self.state.session_log is not None:
            self.state.session_log.append(role="responder", config_fingerprint=self.state.config_fingerprint, **fields)

    def _charge(self, peer: str, hello: pb.Hello) -> None:
        """Per-peer limits: the session size cap, then the daily budget (reserved atomically)."""
        cfg = self._peers.get(peer)
        if cfg is None:  # --insecure development mode: no peer, no budget
            return
        if cfg.max_set_size is not None and hello.request_size > cfg.max_set_size:
            raise LimitExceeded(
                f"request of {hello.request_size} elements exceeds the limit of {cfg.max_set_size} "
                f"per session for peer {peer}"
            )
        if cfg.daily_budget is not None:
            self.state.budgets.reserve(peer, hello.request_size, cfg.daily_budget)

    def _check_hello(self, hello: pb.Hello) -> None:
        s = self.state.settings
        protocol, reveal, _ = _loggable_hello(hello)
        if hello.protocol not in s.protocols:
            raise UnsupportedProtocol(
                f"protocol {protocol} is not offered; this responder offers {', '.join(s.protocols)}"
            )
        mine = self.state.keyspec.fingerprint()
        if hello.key_spec_fingerprint != mine:
            theirs = hello.key_spec_fingerprint if _is_hex_digest(hello.key_spec_fingerprint) else "(not a SHA-256 digest)"
            raise KeySpecMismatch(
                f"match-key spec differs: requester fingerprint {theirs or '(none)'}, "
                f"responder fingerprint {mine}; align [match_keys] and norm_version with the responder's policy"
            )
        if hello.reveal != s.reveal:
            raise UnsupportedProtocol(f"reveal mode {reveal} requested, this responder runs {s.reveal!r}")
        if hello.request_size == 0:
            raise ProtocolViolation("a session must announce at least one element (Hello.request_size is 0)")
        if hello.request_size > self.max_request:
            raise LimitExceeded(
                f"request of {hello.request_size} elements exceeds this responder's limit of {self.max_request}"
            )

    def Match(self, request_iterator: Iterator[pb.MatchRequest], context: grpc.ServicerContext):
        session_id = secrets.token_hex(8)
        started = time.monotonic()
        peer, protocol, reveal, size, received = "?", "?", "", None, 0
        session, refusal = None, None
        outcome, code, detail = grpc.StatusCode.CANCELLED, 1, "the requester cancelled the session or disconnected"
        # Server-side cap, whatever deadline the requester set (or none): see _Inbox and _Watchdog.
        cap = self.session_timeout
        client_left = context.time_remaining()
        limit = min(cap, client_left) if client_left else cap
        why = (
            f"the responder's limit of {cap:g} s per session (session_timeout_seconds)"
            if limit >= cap else "the requester's deadline"
        )
        inbox = _Inbox(request_iterator, started + limit, why)
        watchdog = _Watchdog(context, limit + WATCHDOG_GRACE_SECONDS)
        slot = self._slots.acquire(blocking=False)
        with self._idle:
            self._active += 1
        try:
            peer = self._authorise(context)
            if not slot:
                raise LimitExceeded(
                    f"the responder is serving its maximum of {self.max_sessions} concurrent sessions; try again later"
                )
            first = inbox.next()
            if first is None or first.WhichOneof("kind") != "hello":
                raise ProtocolViolation("a session must start with a Hello message")
            hello = first.hello
            protocol, reveal, size = _loggable_hello(hello)
            self._log(event="start", session_id=session_id, peer=peer, protocol=protocol, reveal=reveal,
                      request_size=size)
            self._check_hello(hello)
            self._charge(peer, hello)
            session = RESPONDER_SESSIONS[protocol](self.state, hello)
            session.session_id, session.peer = session_id, peer
            # Distinct elements only (README "Repeated elements"): a 64-bit keyed hash per element.
            seen: set[int] | None = set() if session.refuse_repeats else None
            accepted = pb.Accepted(
                session_id=session_id, max_chunk_elements=self.max_chunk, reveal=self.state.settings.reveal
            )
            session.accepted(accepted)
            yield pb.MatchResponse(accepted=accepted)
            yield from session.opening()
            while (req := inbox.next()) is not None:
                kind = req.WhichOneof("kind")
                if kind == "blinded":
                    chunk = req.blinded
                    n = len(chunk.elements)
                    if chunk.offset != received:
                        raise ProtocolViolation(f"chunk offset {chunk.offset} out of order; expected {received}")
                    if n == 0 or n > self.max_chunk:
                        raise ProtocolViolation(f"chunk of {n} elements; allowed 1 to {self.max_chunk}")
                    if received + n > hello.request_size:
                        raise ProtocolViolation(f"more elements than announced in Hello ({hello.request_size})")
                    if seen is not None:
                        _refuse_repeats(seen, chunk.elements, received)
                    yield from session.on_elements(chunk.elements, received)
                    received += n
                elif kind == "finish":
                    if req.finish.elements_sent != received or received != hello.request_size:
                        raise ProtocolViolation(
                            f"Finish after {received} elements, but {hello.request_size} were announced"
                        )
                    yield from session.on_finish()
                    if session.expects_report:
                        report = inbox.next()
                        if report is None or report.WhichOneof("kind") != "hit_report":
                            raise ProtocolViolation("a HitReport must follow Finish in this reveal mode")
                        yield from session.on_report(report.hit_report)
                    # The session's work is complete: OK even if the call is cancelled (e.g. by a
                    # shutdown) while the Summary is on its way, which closes this generator there.
                    outcome, code, detail = grpc.StatusCode.OK, 0, None
                    # logged before the Summary is yielded: once the requester has it, it may close
                    # the call, and gRPC then never resumes this generator past the yield
                    log.info(
                        "session %s peer=%s protocol=%s size=%d outcome=OK seconds=%.2f",
                        session_id, peer, protocol, received, time.monotonic() - started,
                        extra=log_fields(event="session_end", session_id=session_id, peer=peer, protocol=protocol,
                                         elements=received, outcome="OK",
                                         seconds=round(time.monotonic() - started, 3)),
                    )
                    yield pb.MatchResponse(
                        summary=pb.Summary(elements_evaluated=received, hit_count=session.summary_hit_count())
                    )
                    return
                else:
                    raise ProtocolViolation(f"unexpected {kind or 'empty'} message during a session")
            if inbox.peer_gone or not _still_active(context):
                return  # cancelled or disconnected (not a half-close): logged as CANCELLED below
            raise ProtocolViolation("the stream ended before Finish")
        except MatcherError as exc:
            outcome, code, detail, refusal = status_code(exc), status_code(exc).value[0], str(exc), exc
            log.warning(
                "session %s peer=%s protocol=%s size=%d outcome=%s: %s",
                session_id, peer, protocol, received, exc.status, exc,
                extra=log_fields(event="session_end", session_id=session_id, peer=peer, protocol=protocol,
                                 elements=received, outcome=exc.status,
                                 seconds=round(time.monotonic() - started, 3), reason=type(exc).__name__),
            )
            context.abort(status_code(exc), str(exc))
        except Exception:
            outcome, code, detail = grpc.StatusCode.INTERNAL, 13, "internal error (see the service's log)"
            log.exception("session %s peer=%s: internal error", session_id, peer)
            raise
        finally:
            inbox.close()
            watchdog.close()
            if slot:
                self._slots.release()
            if watchdog.fired and outcome is grpc.StatusCode.CANCELLED:
                outcome, code = grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.DEADLINE_EXCEEDED.value[0]
                detail = f"cancelled by the responder: the requester did not read the replies within {why}"
            try:
                self._log(
                    event="end", session_id=session_id, peer=peer, protocol=protocol, reveal=reveal,
                    request_size=size, elements=received,
                    hit_count=session.hit_count if session is not None else None,
                    outcome=outcome.name, status_code=code, detail=detail,
                    seconds=round(time.monotonic() - started, 3),
                )
            except Exception as exc:  # the session is over either way; say so without its data
                log.error("session %s: its end row could not be written to the session log (%s)",
                          session_id, type(exc).__name__)
            finally:
                if self.metrics is not None:
                    self.metrics.session_ended(peer, protocol, outcome.name, received,
                                               time.monotonic() - started, refusal)
                with self._idle:
                    self._active -= 1
                    self._idle.notify_all()


_KNOWN_PROTOCOLS = frozenset(PROTOCOLS)
_KNOWN_REVEALS = frozenset({"requester", "cardinality", "both"})
_MAX_LOGGED_SIZE = 1 << 62  # SQLite INTEGER holds 63 bits


def _is_hex_digest(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def _shown(name: str) -> str:
    """A short, plain name quoted as sent; anything else as "(unknown)"."""
    plain = 0 < len(name) <= 32 and all(c.isascii() and (c.isalnum() or c in "-_") for c in name)
    return repr(name) if plain else "(unknown)"


def _loggable_hello(hello: pb.Hello) -> tuple[str, str, int | None]:
    """Protocol, reveal mode and size as they may be written to logs and messages.

    These come from the peer before any check: only known names and a bounded size
    are written; anything else is replaced, so a peer cannot inject lines or grow the
    session log.
    """
    protocol = hello.protocol if hello.protocol in _KNOWN_PROTOCOLS else _shown(hello.protocol)
    reveal = hello.reveal if hello.reveal in _KNOWN_REVEALS else _shown(hello.reveal)
    size = hello.request_size if hello.request_size <= _MAX_LOGGED_SIZE else None
    return protocol, reveal, size


def _still_active(context: grpc.ServicerContext) -> bool:
    """Whether the call is still alive: a cancelled call can end the request stream like a half-close."""
    waited = 0.0
    while True:  # the cancellation may be processed just after the end of the stream
        if not context.is_active():
            return False
        if waited >= CANCEL_SETTLE_SECONDS:
            return True
        time.sleep(0.01)
        waited += 0.01


#: How long a stream that ended before Finish is watched for a cancellation that follows it.
CANCEL_SETTLE_SECONDS = 0.1


#: Seconds past the session cap after which a session still blocked (e.g. sending to a
#: peer that does not read) is cancelled by the watchdog.
WATCHDOG_GRACE_SECONDS = 2.0


def _refuse_repeats(seen: set[int], elements, offset: int) -> None:
    """Refuse an element equal to an earlier one of the same session (honest clients send distinct tokens).

    ``hash(bytes)`` is SipHash under the process's random key: 64 bits per element
    (about 70 bytes of memory each while the session runs), and a peer cannot craft
    a collision that would make an honest session be refused.
    """
    for i, e in enumerate(elements):
        h = hash(bytes(e))
        if h in seen:
            raise ProtocolViolation(
                f"element {offset + i} repeats an earlier element of this session; "
                "every element must be distinct (the client sends each token once)"
            )
        seen.add(h)


class _Inbox:
    """The request stream, read on its own thread so that the session can wait with a deadline.

    Holds at most two messages (back-pressure reaches the peer through gRPC flow
    control). :meth:`next` returns the next message, None at the end of the stream,
    or raises SessionTimeout when the session's deadline passes first.
    """

    def __init__(self, requests: Iterator[pb.MatchRequest], deadline: float, why: str) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=2)
        self._stop = threading.Event()
        self.deadline, self.why = deadline, why
        #: the peer cancelled or disconnected (the stream ended with an error, not a half-close)
        self.peer_gone = False
        self._thread = threading.Thread(target=self._pump, args=(requests,), name="matcher-inbox", daemon=True)
        self._thread.start()

    def _put(self, item: tuple[str, object]) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.25)
                return True
            except queue.Full:
                continue
        return False

    def _pump(self, requests: Iterator[pb.MatchRequest]) -> None:
        end: tuple[str, object] = ("end", None)
        try:
            for msg in requests:
                if not self._put(("msg", msg)):
                    return
        except Exception:  # grpc.RpcError: cancelled, deadline passed or connection lost
            end = ("gone", None)
        self._put(end)

    def next(self) -> pb.MatchRequest | None:
        remaining = self.deadline - time.monotonic()
        try:
            if remaining <= 0:
                raise queue.Empty
            kind, msg = self._queue.get(timeout=remaining)
        except queue.Empty:
            raise SessionTimeout(f"the session did not complete within {self.why}") from None
        if kind == "gone":
            self.peer_gone = True
        if isinstance(msg, Undecodable):
            raise ProtocolViolation("a message is not a valid MatchRequest (protobuf decoding failed)")
        return msg  # type: ignore[return-value]

    def close(self) -> None:
        self._stop.set()


class _Watchdog:
    """Cancels an RPC that is still running at its deadline (e.g. blocked sending to a peer that never reads)."""

    def __init__(self, context: grpc.ServicerContext, seconds: float) -> None:
        self.fired = False
        self._context = context
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        self.fired = True
        self._context.cancel()

    def close(self) -> None:
        self._timer.cancel()


class Undecodable:
    """Stands for a received message that is not valid protobuf (see :func:`_lenient`)."""

    def WhichOneof(self, _group: str) -> str:  # noqa: N802 - the protobuf method's name
        return "undecodable"


def _lenient(message_type):
    """A request deserializer that never fails: gRPC would end the call with INTERNAL
    ("Exception deserializing request!"); the service answers INVALID_ARGUMENT instead."""

    def parse(data: bytes):
        try:
            return message_type.FromString(data)
        except Exception:  # google.protobuf.message.DecodeError and friends
            return Undecodable()

    return parse


def _add_responder_service(servicer: ResponderServicer, server: grpc.Server) -> None:
    """Like the generated ``add_ResponderServicer_to_server``, with lenient request parsing."""
    handlers = {
        "GetPolicy": grpc.unary_unary_rpc_method_handler(
            servicer.GetPolicy, request_deserializer=_lenient(pb.GetPolicyRequest),
            response_serializer=pb.Policy.SerializeToString,
        ),
        "Match": grpc.stream_stream_rpc_method_handler(
            servicer.Match, request_deserializer=_lenient(pb.MatchRequest),
            response_serializer=pb.MatchResponse.SerializeToString,
        ),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
    server.add_registered_method_handlers(SERVICE_NAME, handlers)


@dataclass
class TlsMaterial:
    """PEM bytes of the own certificate, its key, and the CA(s) trusted for the other side."""

    cert: bytes
    key: bytes
    ca: bytes


#: Headroom above ``max_sessions`` for GetPolicy, health checks and reflection.
EXTRA_RPCS = 8


def server_options(servicer: ResponderServicer) -> list[tuple[str, int]]:
    """gRPC server options: message size, keepalive, and a hard cap on a connection's life.

    * keepalive: the server pings an idle-looking peer every 60 s and drops the
      connection when no answer comes within 20 s (a peer that vanished without a
      FIN frees its sessions); it tolerates client pings every 30 s.
    * ``max_connection_idle_ms``: a connection with no call for 10 minutes is closed.
    * ``max_connection_age_ms`` = ``session_timeout_seconds``, with the same again as
      grace: a connection is asked to go away (GOAWAY; new calls open a new one)
      after the session cap, and closed by force after twice that, which ends any
      call the session watchdog could not (the last resort behind _Inbox and _Watchdog).
    """
    limit = message_limit(servicer.max_chunk)
    cap_ms = int(servicer.session_timeout * 1000)
    return [
        ("grpc.max_receive_message_length", limit),
        ("grpc.max_send_message_length", limit),
        ("grpc.so_reuseport", 0),
        ("grpc.keepalive_time_ms", 60_000),
        ("grpc.keepalive_timeout_ms", 20_000),
        ("grpc.http2.min_recv_ping_interval_without_data_ms", 30_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.max_connection_idle_ms", 600_000),
        ("grpc.max_connection_age_ms", cap_ms),
        ("grpc.max_connection_age_grace_ms", cap_ms + int(WATCHDOG_GRACE_SECONDS * 1000)),
    ]


def build_server(
    servicer: ResponderServicer,
    listen: str,
    tls: TlsMaterial | None,
    max_workers: int | None = None,
) -> tuple[grpc.Server, int, health.HealthServicer]:
    """A gRPC server with the Responder service, health checking and reflection.

    With ``tls`` the server requires a client certificate chaining to ``tls.ca``
    (mutual TLS). Returns the server (not started), the bound port and the health
    servicer (to flip to NOT_SERVING on shutdown). A session holds one pool thread
    for its whole life, so the pool has ``max_sessions`` threads plus headroom
    (``max_workers`` overrides it).
    """
    threads = max_workers or servicer.max_sessions + EXTRA_RPCS
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="matcher-session"),
        options=server_options(servicer),
        maximum_concurrent_rpcs=threads,
    )
    _add_responder_service(servicer, server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME), server
    )
    if tls is None:
        port = server.add_insecure_port(listen)
    else:
        creds = grpc.ssl_server_credentials(
            [(tls.key, tls.cert)], root_certificates=tls.ca, require_client_auth=True
        )
        port = server.add_secure_port(listen, creds)
    if port == 0:
        raise OSError(f"cannot listen on {listen}")
    return server, port, health_servicer
