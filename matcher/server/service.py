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
from collections.abc import Iterator, Mapping
from concurrent import futures
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, cast

import grpc
from cryptography import x509
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from matcher import peer_auth
from matcher.config import PROTOCOLS, PeerConfig
from matcher.errors import (
    ConfigError,
    KeySpecMismatch,
    LimitExceeded,
    MatcherError,
    PeerNotAllowed,
    ProtocolViolation,
    SessionTimeout,
    UnsupportedProtocol,
)
from matcher.grpc_status import status_code
from matcher.identity.conformance import check_peer
from matcher.logs import log_fields
from matcher.server.state import ResponderState
from matcher.sessions import RESPONDER_SESSIONS
from matcher.sessions.limits import WIRE_VERSION, message_limit
from matcher.v1 import matcher_pb2 as pb
from matcher.v1 import matcher_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    from matcher.server.metrics import ResponderMetrics

log = logging.getLogger("matcher.server.responder")

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Responder"].full_name

#: The one name every caller has under ``--insecure`` (loopback only): budgets and limits apply to it.
INSECURE_PEER = peer_auth.INSECURE_PEER
#: Its daily budget when no [[peers]] entry sets one.
INSECURE_DAILY_BUDGET = 1_000_000


def _auth_context(context: grpc.ServicerContext) -> Mapping[str, list[bytes]]:
    """The TLS auth context: property name -> its values (types-grpcio says one bytes value; grpc gives lists)."""
    return cast(Mapping[str, list[bytes]], context.auth_context())


def peer_identity(context: grpc.ServicerContext) -> tuple[str | None, str | None]:
    """The client certificate's subject CN and SHA-256 fingerprint (None without TLS)."""
    auth = _auth_context(context)
    pem = next(iter(auth.get("x509_pem_cert") or []), None)
    if not pem:
        return None, None
    cert = x509.load_pem_x509_certificate(pem)
    cns = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    from cryptography.hazmat.primitives.serialization import Encoding

    fingerprint = hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()
    return (str(cns[0].value) if cns else None), fingerprint


@dataclass(frozen=True)
class Serving:
    """What one generation of the responder serves with: its state (watchlist, epoch, settings), its
    ``[[peers]]`` and the allowlist and TLS material they are bound to.

    A reload builds a new one aside and swaps it in (:meth:`ResponderServicer.swap`); each
    call takes the generation in force when it starts and keeps it to its end, so a
    session in flight finishes on the state and epoch it started with.
    """

    state: ResponderState
    peers: dict[str, PeerConfig]
    allowlist: peer_auth.PeerAllowlist | None = None
    tls: TlsMaterial | None = None


class ResponderServicer(pb_grpc.ResponderServicer):
    """Serves the policy and matching sessions over one watchlist."""

    def __init__(self, state: ResponderState, insecure: bool = False, metrics: ResponderMetrics | None = None) -> None:
        self._serving = Serving(state, {p.name: p for p in state.config.peers})
        self.insecure = insecure
        self.metrics = metrics  # optional Prometheus hooks (matcher.server.metrics)
        s = state.settings
        self.max_request = s.max_request_size
        self.max_chunk = s.max_chunk_elements
        self.session_timeout = s.session_timeout_seconds
        self.hello_timeout = min(s.hello_timeout_seconds, s.session_timeout_seconds)
        self.max_sessions = s.max_sessions
        self._slots = threading.BoundedSemaphore(s.max_sessions)
        self._active = 0
        self._idle = threading.Condition()
        #: concurrent Match streams per peer (item: one peer must not hold every slot)
        self._per_peer: dict[str, int] = {}
        self._per_peer_lock = threading.Lock()

    # -- the generation in force (see Serving) --------------------------------------
    @property
    def state(self) -> ResponderState:
        """The state new calls are served with."""
        return self._serving.state

    @property
    def allowlist(self) -> peer_auth.PeerAllowlist | None:
        """Set by :meth:`use_tls`; without it (and without --insecure) every peer is refused."""
        return self._serving.allowlist

    @property
    def serving(self) -> Serving:
        """The generation new calls take (a call keeps the one it took)."""
        return self._serving

    def use_tls(self, tls: TlsMaterial) -> None:
        """Bind the allowlist to the trusted CA bundle (ConfigError for a peer whose binding is ambiguous)."""
        sv = self._serving
        self._serving = replace(sv, allowlist=peer_auth.PeerAllowlist(list(sv.state.config.peers), tls.ca), tls=tls)

    def prepare(self, state: ResponderState, tls: TlsMaterial | None) -> Serving:
        """A new generation over ``state`` (its [[peers]] bound to ``tls``'s CA bundle), not yet in force.

        ConfigError for a peer whose binding is ambiguous: the caller keeps the old one serving.
        """
        allowlist = peer_auth.PeerAllowlist(list(state.config.peers), tls.ca) if tls is not None else None
        return Serving(state, {p.name: p for p in state.config.peers}, allowlist, tls)

    def swap(self, serving: Serving) -> Serving:
        """Put ``serving`` in force for calls that start from now on; returns the one it replaces."""
        old, self._serving = self._serving, serving
        if self.metrics is not None:
            self.metrics.use_state(serving.state)
        return old

    def certificate_fetcher(self, initial: TlsMaterial):
        """For ``grpc.dynamic_ssl_server_credentials``: called at each new TLS handshake; returns the
        certificate configuration of the generation in force when it differs from the last one given
        (a reload brought new files), else None (keep it)."""
        given = [initial]
        lock = threading.Lock()

        def fetch() -> grpc.ServerCertificateConfiguration | None:
            tls = self._serving.tls
            with lock:
                if tls is None or tls == given[0]:
                    return None
                given[0] = tls
            return _certificate_configuration(tls)

        return fetch

    def session_cap(self, peer: str, serving: Serving | None = None) -> int:
        """Most concurrent sessions ``peer`` may hold (its own max_sessions, else max_sessions_per_peer)."""
        sv = serving or self._serving
        s = sv.state.settings
        cfg = sv.peers.get(peer)
        own = cfg.max_sessions if cfg is not None and cfg.max_sessions is not None else s.max_sessions_per_peer
        if self.insecure:  # every caller is one pseudo-peer: the tightest configured cap
            own = min([own, *(p.max_sessions for p in sv.peers.values() if p.max_sessions)])
        return min(own, self.max_sessions)

    def _take_peer_slot(self, peer: str, serving: Serving | None = None) -> bool:
        with self._per_peer_lock:
            n = self._per_peer.get(peer, 0)
            if n >= self.session_cap(peer, serving):
                return False
            self._per_peer[peer] = n + 1
            return True

    def _release_peer_slot(self, peer: str) -> None:
        with self._per_peer_lock:
            n = self._per_peer.get(peer, 0) - 1
            if n > 0:
                self._per_peer[peer] = n
            else:
                self._per_peer.pop(peer, None)

    def prove_to(self, context: grpc.ServicerContext) -> None:
        """Answer a requester that pins this responder: send our certificate and a proof in the initial metadata."""
        tls = self._serving.tls
        if tls is None:
            return
        nonce = next((v for k, v in context.invocation_metadata() if k == peer_auth.NONCE_HEADER), None)
        if not isinstance(nonce, bytes) or not 16 <= len(nonce) <= 64:
            return
        _cn, client_fp = peer_identity(context)
        if client_fp is None:
            return
        leaf = peer_auth.load_pem_certs(tls.cert)[0]
        from cryptography.hazmat.primitives.serialization import Encoding

        proof = peer_auth.server_proof(tls.key, nonce, client_fp)
        context.send_initial_metadata(((peer_auth.CERT_HEADER, leaf.public_bytes(Encoding.DER)),
                                       (peer_auth.PROOF_HEADER, proof)))

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no Match handler runs any more (its end row written); False on timeout.

        ``grpc.Server.stop`` cancels the calls but their handler threads may still be
        finishing: the state (session log) must stay open until they have.
        """
        with self._idle:
            return self._idle.wait_for(lambda: self._active == 0, timeout)

    # -- who is asking -------------------------------------------------------------
    def authorise(self, context: grpc.ServicerContext, serving: Serving | None = None) -> str:
        """The ``[[peers]]`` name of the caller; PeerNotAllowed (carrying the certificate subject) otherwise."""
        if self.insecure:
            return INSECURE_PEER
        allowlist = (serving or self._serving).allowlist
        if allowlist is None:
            raise PeerNotAllowed("this responder has no peer allowlist bound to its CA bundle (internal setup error)")
        pem = next(iter(_auth_context(context).get("x509_pem_cert") or []), None)
        name, _who = allowlist.identify(pem)
        return name

    def _policy(self) -> pb.Policy:
        state = self._serving.state
        epoch = state.current()
        ks = state.keyspec
        return pb.Policy(
            protocols=list(state.settings.protocols),
            match_keys=[pb.MatchKeyDef(name=k.name, fields=list(k.fields)) for k in ks.keys],
            key_spec_fingerprint=ks.fingerprint(),
            norm_version=ks.norm_version,
            key_epoch=epoch.key.epoch,
            max_request_size=self.max_request,
            max_chunk_elements=self.max_chunk,
            reveal=state.settings.reveal,
            setup_size=len(epoch.setup),
            setup_id=epoch.setup_id,
            wire_version=WIRE_VERSION,
            norm_conformance_digest=self.state.conformance.digest,
            norm_libraries=self.state.conformance.libraries,
        )

    def GetPolicy(self, request: pb.GetPolicyRequest, context: grpc.ServicerContext) -> pb.Policy:
        try:
            self.authorise(context)  # the PeerGate has refused strangers already; kept as a second check
            if isinstance(request, Undecodable):
                raise ProtocolViolation("the request is not a valid GetPolicyRequest (protobuf decoding failed)")
            return self._policy()
        except MatcherError as exc:
            if self.metrics is not None:
                self.metrics.refused(None, exc)
            context.abort(status_code(exc), str(exc))

    # -- one session ---------------------------------------------------------------
    def _log(self, serving: Serving, **fields: object) -> None:
        """Append a row to the session log, if one is configured (never identity data)."""
        state = serving.state
        if state.session_log is not None:
            state.session_log.append(role="responder", config_fingerprint=state.config_fingerprint, **fields)

    def _charge(self, peer: str, hello: pb.Hello, cost: int | None, serving: Serving) -> None:
        """Per-peer limits: the session size cap, then the daily budget (reserved atomically).

        ``cost`` is what the session is charged (the protocol's ``budget_cost``: the
        responder's work, see docs/security.md); the request size by default.
        """
        peers = serving.peers
        cfg = peers.get(peer)
        budget: int | None
        if self.insecure:
            # --insecure: every caller is one pseudo-peer under the tightest limits of [[peers]]
            set_sizes = [p.max_set_size for p in peers.values() if p.max_set_size is not None]
            budgets = [p.daily_budget for p in peers.values() if p.daily_budget is not None]
            max_set = min(set_sizes) if set_sizes else None
            budget = min(budgets) if budgets else INSECURE_DAILY_BUDGET
        elif cfg is None:
            raise PeerNotAllowed("this peer is not in the responder's allowlist")
        else:
            max_set, budget = cfg.max_set_size, cfg.daily_budget
        if max_set is not None and hello.request_size > max_set:
            raise LimitExceeded(
                f"request of {hello.request_size} elements exceeds the limit of {max_set} "
                f"per session for peer {peer}"
            )
        if budget is not None:
            serving.state.budgets.reserve(peer, hello.request_size if cost is None else cost, budget)

    def _check_hello(self, hello: pb.Hello, state: ResponderState) -> None:
        s = state.settings
        protocol, reveal, _ = _loggable_hello(hello)
        if hello.protocol not in s.protocols:
            raise UnsupportedProtocol(
                f"protocol {protocol} is not offered; this responder offers {', '.join(s.protocols)}"
            )
        mine = state.keyspec.fingerprint()
        if hello.key_spec_fingerprint != mine:
            fp = hello.key_spec_fingerprint
            theirs = fp if _is_hex_digest(fp) else "(not a SHA-256 digest)"
            raise KeySpecMismatch(
                f"match-key spec differs: requester fingerprint {theirs or '(none)'}, "
                f"responder fingerprint {mine}; align [match_keys] and norm_version with the responder's policy"
            )
        # Same key spec, different tokenisation (another library version, a changed table): refuse
        # before any data moves, naming both digests, instead of matching to a silent zero.
        check_peer(self.state.conformance, hello.norm_conformance_digest, hello.norm_libraries, "requester")
        if hello.reveal != s.reveal:
            raise UnsupportedProtocol(f"reveal mode {reveal} requested, this responder runs {s.reveal!r}")
        if hello.request_size == 0:
            raise ProtocolViolation("a session must announce at least one element (Hello.request_size is 0)")
        if hello.request_size > self.max_request:
            raise LimitExceeded(
                f"request of {hello.request_size} elements exceeds this responder's limit of {self.max_request}"
            )
        if hello.wire_version != WIRE_VERSION:
            raise UnsupportedProtocol(
                f"the requester speaks wire version {hello.wire_version}, this responder {WIRE_VERSION}; "
                "upgrade matcher on the requester's side"
            )

    def Match(self, request_iterator: Iterator[pb.MatchRequest], context: grpc.ServicerContext):
        session_id = secrets.token_hex(8)
        started = time.monotonic()
        # The generation in force now serves this session to its end, whatever a reload swaps in meanwhile.
        sv = self._serving
        peer, protocol, reveal, size, received = "?", "?", "", None, 0
        session, refusal = None, None
        detail: str | None
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
        peer_slot = False
        with self._idle:
            self._active += 1
        try:
            peer = self.authorise(context, sv)
            if not slot:
                raise LimitExceeded(
                    f"the responder is serving its maximum of {self.max_sessions} concurrent sessions; try again later"
                )
            peer_slot = self._take_peer_slot(peer, sv)
            if not peer_slot:
                raise LimitExceeded(
                    f"peer {peer} already holds its maximum of {self.session_cap(peer, sv)} concurrent sessions "
                    "(max_sessions_per_peer); finish one first"
                )
            first = inbox.next(
                deadline=started + self.hello_timeout,
                why=f"the responder's limit of {self.hello_timeout:g} s for the Hello (hello_timeout_seconds)",
            )
            if first is None or first.WhichOneof("kind") != "hello":
                raise ProtocolViolation("a session must start with a Hello message")
            hello = first.hello
            protocol, reveal, size = _loggable_hello(hello)
            self._log(sv, event="start", session_id=session_id, peer=peer, protocol=protocol, reveal=reveal,
                      request_size=size)
            self._check_hello(hello, sv.state)
            self._charge(peer, hello, RESPONDER_SESSIONS[protocol].budget_cost(sv.state, hello), sv)
            session = RESPONDER_SESSIONS[protocol](sv.state, hello)
            session.session_id, session.peer = session_id, peer
            # Distinct elements only (README "Repeated elements"): a 64-bit keyed hash per element.
            seen: set[int] | None = set() if session.refuse_repeats else None
            accepted = pb.Accepted(
                session_id=session_id, max_chunk_elements=self.max_chunk, reveal=sv.state.settings.reveal
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
                    while session.expects_more:  # a hit report, the re-blinded setup (bounded by the session)
                        tail = inbox.next()
                        if tail is None:
                            raise ProtocolViolation(f"{session.tail_name} must follow Finish in this reveal mode")
                        yield from session.on_tail(tail)
                    # The session's work is complete: OK even if the call is cancelled (e.g. by a
                    # shutdown) while the Summary is on its way, which closes this generator there.
                    outcome, code, detail = grpc.StatusCode.OK, 0, None
                    summary = pb.Summary(elements_evaluated=received, hit_count=session.summary_hit_count())
                    # Logged before the Summary is handed to gRPC: the generator may be closed
                    # at that yield (a shutdown right after the requester has its answer).
                    log.info(
                        "session %s peer=%s protocol=%s size=%d outcome=OK seconds=%.2f",
                        session_id, peer, protocol, received, time.monotonic() - started,
                        extra=log_fields(event="session_end", session_id=session_id, peer=peer, protocol=protocol,
                                         elements=received, outcome="OK",
                                         seconds=round(time.monotonic() - started, 3)),
                    )
                    yield pb.MatchResponse(summary=summary)
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
            if peer_slot:
                self._release_peer_slot(peer)
            if watchdog.fired and outcome is grpc.StatusCode.CANCELLED:
                outcome, code = grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.DEADLINE_EXCEEDED.value[0]
                detail = f"cancelled by the responder: the requester did not read the replies within {why}"
            if outcome is grpc.StatusCode.CANCELLED or watchdog.fired:
                log.info("session %s peer=%s protocol=%s size=%d outcome=%s: %s",
                         session_id, peer, protocol, received, outcome.name, detail,
                         extra=log_fields(event="session_end", session_id=session_id, peer=peer,
                                          protocol=protocol, elements=received, outcome=outcome.name,
                                          seconds=round(time.monotonic() - started, 3)))
            try:
                self._log(
                    sv, event="end", session_id=session_id, peer=peer, protocol=protocol, reveal=reveal,
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
        self._queue: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=2)
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

    def next(self, deadline: float | None = None, why: str | None = None) -> pb.MatchRequest | None:
        """The next message; ``deadline``/``why`` set an earlier limit for this one (the Hello)."""
        early = deadline is not None and deadline < self.deadline
        if deadline is None or not early:
            deadline, why = self.deadline, self.why
        remaining = deadline - time.monotonic()
        try:
            if remaining <= 0:
                raise queue.Empty
            kind, msg = self._queue.get(timeout=remaining)
        except queue.Empty:
            what = "send its Hello" if early else "complete"
            raise SessionTimeout(f"the session did not {what} within {why}") from None
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


#: Methods a client whose certificate merely chains to a trusted CA may call: health
#: checks for load balancers and probes. ``Health/Watch`` is a stream (it holds a
#: server thread while open) and is for allowlisted peers only.
OPEN_METHODS = frozenset({"/grpc.health.v1.Health/Check"})
MATCH_METHOD = f"/{SERVICE_NAME}/Match"
#: Concurrent streams per peer, and in all, of the other streaming methods (reflection,
#: health Watch): each holds a thread, so they are capped inside the pool's headroom.
OTHER_STREAMS_PER_PEER = 2
OTHER_STREAMS_TOTAL = 4


class PeerGate(grpc.ServerInterceptor):
    """Refuses every call of a peer that is not in ``[[peers]]``, before the service's handler runs.

    Only :data:`OPEN_METHODS` (health checks) are open to any certificate that chains to
    the trusted CA. For every other method the handler is wrapped: the first thing that
    runs on the call's thread is the allowlist check, and a stranger is aborted with
    PERMISSION_DENIED at once (logged with its certificate subject), so it cannot hold a
    thread, whatever it opens (reflection streams included). gRPC's Python server gives
    the peer's certificate only to the handler's context, which is why the check is the
    handler's first step rather than in ``intercept_service`` itself (that runs on the
    server's polling thread and holds none of the pool's threads either way).
    """

    def __init__(self, servicer: ResponderServicer) -> None:
        self.servicer = servicer
        self._lock = threading.Lock()
        self._streams: dict[str, int] = {}
        self._streams_total = 0
        self._log_budget = _LogBudget(REFUSAL_LOG_BURST, REFUSAL_LOG_PER_SECOND)

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method in OPEN_METHODS:
            return handler
        return _guarded(handler, method, self)

    def admit(self, context: grpc.ServicerContext, method: str) -> str:
        """The caller's peer name; aborts the call (PERMISSION_DENIED, logged) for anyone else."""
        try:
            peer = self.servicer.authorise(context)
        except PeerNotAllowed as exc:
            allowed, suppressed = self._log_budget.take()
            if self.servicer.metrics is not None:
                self.servicer.metrics.refused(None, exc)
            if allowed:
                more = f" ({suppressed} more refusals were not logged)" if suppressed else ""
                log.warning("refused %s from %s (certificate subject %s): %s%s", _shown_method(method),
                            context.peer(), exc.subject or "(none)", exc, more,
                            extra=log_fields(event="peer_refused", method=_shown_method(method),
                                             subject=exc.subject, outcome="PERMISSION_DENIED",
                                             reason=type(exc).__name__))
            context.abort(status_code(exc), str(exc))
        self.servicer.prove_to(context)
        return peer

    def open_stream(self, context: grpc.ServicerContext, method: str, peer: str) -> None:
        """Count one more non-Match stream of ``peer``; RESOURCE_EXHAUSTED (logged) over the caps."""
        with self._lock:
            mine = self._streams.get(peer, 0)
            if mine < OTHER_STREAMS_PER_PEER and self._streams_total < OTHER_STREAMS_TOTAL:
                self._streams[peer] = mine + 1
                self._streams_total += 1
                return
        log.warning("refused %s from peer=%s: too many open streams (%d of this peer, %d in all)",
                    _shown_method(method), peer, mine, OTHER_STREAMS_TOTAL,
                    extra=log_fields(event="stream_refused", method=_shown_method(method), peer=peer,
                                     outcome="RESOURCE_EXHAUSTED"))
        context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                      f"at most {OTHER_STREAMS_PER_PEER} open streams of this kind per peer; close one first")

    def close_stream(self, peer: str) -> None:
        with self._lock:
            self._streams_total -= 1
            n = self._streams.get(peer, 0) - 1
            if n > 0:
                self._streams[peer] = n
            else:
                self._streams.pop(peer, None)


#: Refusal lines a burst of strangers may write at once, and per second after that (the
#: lines not written are counted in the next one), so refusals cannot flood the log.
REFUSAL_LOG_BURST = 200
REFUSAL_LOG_PER_SECOND = 20.0


class _LogBudget:
    """A token bucket for log lines: ``take()`` -> (may log, lines suppressed since the last one logged)."""

    def __init__(self, burst: int, per_second: float) -> None:
        self._burst, self._rate = float(burst), per_second
        self._tokens, self._last = float(burst), time.monotonic()
        self._suppressed = 0
        self._lock = threading.Lock()

    def take(self) -> tuple[bool, int]:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
            self._last = now
            if self._tokens < 1:
                self._suppressed += 1
                return False, 0
            self._tokens -= 1
            suppressed, self._suppressed = self._suppressed, 0
            return True, suppressed


def _shown_method(method: str) -> str:
    return method if len(method) <= 100 and method.isascii() and method.isprintable() else "(a method)"


def _guarded(handler: grpc.RpcMethodHandler, method: str, gate: PeerGate) -> grpc.RpcMethodHandler:
    """``handler`` with the allowlist check (and, for streams other than Match, the stream caps) in front."""
    des, ser = handler.request_deserializer, handler.response_serializer
    counted = method != MATCH_METHOD and (handler.request_streaming or handler.response_streaming)

    if handler.unary_unary is not None:
        inner_uu = handler.unary_unary

        def unary_unary(request, context):
            gate.admit(context, method)
            return inner_uu(request, context)

        return grpc.unary_unary_rpc_method_handler(unary_unary, des, ser)

    def streamed(inner):
        def behaviour(request, context):
            peer = gate.admit(context, method)
            if counted:
                gate.open_stream(context, method, peer)
            try:
                result = inner(request, context)
                if handler.response_streaming:
                    yield from result
                else:
                    yield result
            finally:
                if counted:
                    gate.close_stream(peer)

        return behaviour

    def single(inner):  # stream in, one message out
        def behaviour(request_iterator, context):
            peer = gate.admit(context, method)
            if counted:
                gate.open_stream(context, method, peer)
            try:
                return inner(request_iterator, context)
            finally:
                if counted:
                    gate.close_stream(peer)

        return behaviour

    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(streamed(handler.unary_stream), des, ser)
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(single(handler.stream_unary), des, ser)
    return grpc.stream_stream_rpc_method_handler(streamed(handler.stream_stream), des, ser)


def _add_reflection(server: grpc.Server, services: tuple[str, ...]) -> None:
    """Server reflection as ``grpc.reflection.v1`` (what stock tools ask for) and ``v1alpha``.

    grpcio-reflection ships only v1alpha; v1 has the same messages under another package,
    so the same servicer answers both, and the v1 file is added to the descriptor pool
    (built from v1alpha's by renaming the package) so v1 clients can also describe it.
    """
    from google.protobuf import descriptor_pb2, descriptor_pool
    from grpc_reflection.v1alpha import reflection_pb2

    pool = descriptor_pool.Default()
    try:
        pool.FindServiceByName(REFLECTION_V1)
    except KeyError:
        fdp = descriptor_pb2.FileDescriptorProto()
        reflection_pb2.DESCRIPTOR.CopyToProto(fdp)
        fdp.name, fdp.package = "grpc/reflection/v1/reflection.proto", "grpc.reflection.v1"
        for msg in fdp.message_type:
            for f in (f for f in msg.field if f.HasField("type_name")):
                f.type_name = f.type_name.replace(".grpc.reflection.v1alpha.", ".grpc.reflection.v1.")
        for svc in fdp.service:
            for m in svc.method:
                m.input_type = m.input_type.replace(".grpc.reflection.v1alpha.", ".grpc.reflection.v1.")
                m.output_type = m.output_type.replace(".grpc.reflection.v1alpha.", ".grpc.reflection.v1.")
        fdp.options.Clear()
        pool.Add(fdp)
    names = (*services, REFLECTION_V1, reflection.SERVICE_NAME)
    servicer = reflection.ReflectionServicer(names, pool=pool)
    handler = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    for service in (REFLECTION_V1, reflection.SERVICE_NAME):
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(service, {"ServerReflectionInfo": handler}),))


REFLECTION_V1 = "grpc.reflection.v1.ServerReflection"


@dataclass(repr=False)
class TlsMaterial:
    """PEM bytes of the own certificate, its key, and the CA(s) trusted for the other side."""

    def __repr__(self) -> str:  # never the private key
        return "TlsMaterial(<certificate, private key, CA>)"

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


def _certificate_configuration(tls: TlsMaterial) -> grpc.ServerCertificateConfiguration:
    return grpc.ssl_server_certificate_configuration([(tls.key, tls.cert)], root_certificates=tls.ca)


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
    if tls is not None:
        servicer.use_tls(tls)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="matcher-session"),
        options=server_options(servicer),
        maximum_concurrent_rpcs=threads,
        interceptors=[PeerGate(servicer)],
    )
    _add_responder_service(servicer, server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    _add_reflection(server, (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name))
    try:
        if tls is None:
            port = server.add_insecure_port(listen)
        else:
            # Dynamic credentials: each new handshake asks the servicer whether a reload brought
            # new certificates (or a new CA bundle); connections already open keep theirs.
            creds = grpc.dynamic_ssl_server_credentials(
                _certificate_configuration(tls), servicer.certificate_fetcher(tls),
                require_client_authentication=True,
            )
            port = server.add_secure_port(listen, creds)
    except RuntimeError:  # grpc's "Failed to bind to address"
        port = 0
    if port == 0:
        raise ConfigError(
            f"cannot listen on {listen}: the port is in use (another responder or program listens there) or the "
            "address is not one of this machine's; stop the other program, or choose another address with "
            "[responder] listen or --listen"
        )
    return server, port, health_servicer
