"""The responder's gRPC service: policy, one ``Match`` stream per session, mTLS, health.

The session lives exactly as long as its stream: there is no session table, so a
cancelled call, a passed deadline or a dropped connection frees everything.
Every received element goes through the ecdh core's checks; a bad one ends the
session with INVALID_ARGUMENT and the server goes on serving others.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import grpc

from matcher import peer_auth
from matcher.config import PeerConfig
from matcher.errors import LimitExceeded, MatcherError, PeerNotAllowed, ProtocolViolation
from matcher.grpc_status import status_code
from matcher.logs import log_fields
from matcher.server.build import build_server, server_options
from matcher.server.gate import (
    SERVICE_NAME,
    PeerGate,
    TlsMaterial,
    _LogBudget,  # noqa: F401  (re-exported for tests)
    auth_context,
    certificate_configuration,
    peer_identity,
)
from matcher.server.state import ResponderState
from matcher.server.streams import WATCHDOG_GRACE_SECONDS, Inbox, Undecodable, Watchdog, lenient
from matcher.sessions.responder import ResponderMachine, loggable_hello, policy
from matcher.v1 import matcher_pb2 as pb
from matcher.v1 import matcher_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    from matcher.server.metrics import ResponderMetrics

#: the names other modules and tests import from here (the servicer's neighbours)
__all__ = [
    "INSECURE_DAILY_BUDGET", "INSECURE_PEER", "SERVICE_NAME", "PeerGate", "ResponderServicer", "TlsMaterial",
    "build_server", "server_options",
]
_lenient = lenient  # the request deserializer, under its former name

log = logging.getLogger("matcher.server.responder")

#: The one name every caller has under ``--insecure`` (loopback only): budgets and limits apply to it.
INSECURE_PEER = peer_auth.INSECURE_PEER
#: Its daily budget when no [[peers]] entry sets one.
INSECURE_DAILY_BUDGET = 1_000_000


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
            return certificate_configuration(tls)

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
        pem = next(iter(auth_context(context).get("x509_pem_cert") or []), None)
        name, _who = allowlist.identify(pem)
        return name

    def _policy(self) -> pb.Policy:
        return policy(self._serving.state)

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

    def Match(self, request_iterator: Iterator[pb.MatchRequest], context: grpc.ServicerContext):
        """One session: the rules are the session machine's (matcher.sessions.responder); here
        the peer, slots, deadlines, budget, logging, metrics and status codes."""
        session_id = secrets.token_hex(8)
        started = time.monotonic()
        # The generation in force now serves this session to its end, whatever a reload swaps in meanwhile.
        sv = self._serving
        peer, protocol, reveal, size = "?", "?", "", None
        machine, refusal = ResponderMachine(sv.state), None
        detail: str | None
        outcome, code, detail = grpc.StatusCode.CANCELLED, 1, "the requester cancelled the session or disconnected"
        # Server-side cap, whatever deadline the requester set (or none): see Inbox and Watchdog.
        cap = self.session_timeout
        client_left = context.time_remaining()
        limit = min(cap, client_left) if client_left else cap
        why = (
            f"the responder's limit of {cap:g} s per session (session_timeout_seconds)"
            if limit >= cap else "the requester's deadline"
        )
        inbox = Inbox(request_iterator, started + limit, why)
        watchdog = Watchdog(context, limit + WATCHDOG_GRACE_SECONDS)
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

            def start(hello: pb.Hello) -> None:  # the start row, written before the Hello's checks
                nonlocal protocol, reveal, size
                protocol, reveal, size = loggable_hello(hello)
                self._log(sv, event="start", session_id=session_id, peer=peer, protocol=protocol, reveal=reveal,
                          request_size=size)

            hello = machine.on_hello(first, start)
            self._charge(peer, hello, machine.budget_cost(), sv)
            yield from machine.accept(session_id, peer)
            while (req := inbox.next()) is not None:
                for resp in machine.receive(req):
                    if resp.WhichOneof("kind") == "summary":
                        # The session's work is complete: OK even if the call is cancelled (e.g. by a
                        # shutdown, or the requester leaving once it has the Summary) while the Summary
                        # is on its way, which closes this generator at the yield; so it is logged first.
                        outcome, code, detail = grpc.StatusCode.OK, 0, None
                        log.info(
                            "session %s peer=%s protocol=%s size=%d outcome=OK seconds=%.2f",
                            session_id, peer, protocol, machine.received, time.monotonic() - started,
                            extra=log_fields(event="session_end", session_id=session_id, peer=peer,
                                             protocol=protocol, elements=machine.received, outcome="OK",
                                             seconds=round(time.monotonic() - started, 3)),
                        )
                    yield resp
                if machine.done:
                    return
            if not machine.awaiting_tail and (inbox.peer_gone or not _still_active(context)):
                return  # cancelled or disconnected (not a half-close): logged as CANCELLED below
            machine.stream_ended()
        except MatcherError as exc:
            outcome, code, detail, refusal = status_code(exc), status_code(exc).value[0], str(exc), exc
            log.warning(
                "session %s peer=%s protocol=%s size=%d outcome=%s: %s",
                session_id, peer, protocol, machine.received, exc.status, exc,
                extra=log_fields(event="session_end", session_id=session_id, peer=peer, protocol=protocol,
                                 elements=machine.received, outcome=exc.status,
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
                         session_id, peer, protocol, machine.received, outcome.name, detail,
                         extra=log_fields(event="session_end", session_id=session_id, peer=peer,
                                          protocol=protocol, elements=machine.received, outcome=outcome.name,
                                          seconds=round(time.monotonic() - started, 3)))
            try:
                self._log(
                    sv, event="end", session_id=session_id, peer=peer, protocol=protocol, reveal=reveal,
                    request_size=size, elements=machine.received,
                    hit_count=machine.hit_count,
                    outcome=outcome.name, status_code=code, detail=detail,
                    seconds=round(time.monotonic() - started, 3),
                )
            except Exception as exc:  # the session is over either way; say so without its data
                log.error("session %s: its end row could not be written to the session log (%s)",
                          session_id, type(exc).__name__)
            finally:
                if self.metrics is not None:
                    self.metrics.session_ended(peer, protocol, outcome.name, machine.received,
                                               time.monotonic() - started, refusal)
                with self._idle:
                    self._active -= 1
                    self._idle.notify_all()


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
