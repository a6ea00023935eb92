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
        self.hello_timeout = min(s.hello_timeout_seconds, s.session_timeout_seconds)
        self.max_sessions = s.max_sessions
        self._slots = threading.BoundedSemaphore(s.max_sessions)
        self._active = 0
        self._idle = threading.Condition()
        self._peers: dict[str, PeerConfig] = {p.name: p for p in state.config.peers}
        #: concurrent Match streams per peer (item: one peer must not hold every slot)
        self._per_peer: dict[str, int] = {}
        self._per_peer_lock = threading.Lock()
        #: set by :meth:`use_tls`; without it (and without --insecure) every peer is refused
        self.allowlist: peer_auth.PeerAllowlist | None = None
        self._tls: TlsMaterial | None = None

    def use_tls(self, tls: TlsMaterial) -> None:
        """Bind the allowlist to the trusted CA bundle (ConfigError for a peer whose binding is ambiguous)."""
        self.allowlist = peer_auth.PeerAllowlist(list(self.state.config.peers), tls.ca)
        self._tls = tls

    def session_cap(self, peer: str) -> int:
        """Most concurrent sessions ``peer`` may hold (its own max_sessions, else max_sessions_per_peer)."""
        s = self.state.settings
        cfg = self._peers.get(peer)
        own = cfg.max_sessions if cfg is not None and cfg.max_sessions is not None else s.max_sessions_per_peer
        if self.insecure:  # every caller is one pseudo-peer: the tightest configured cap
            own = min([own, *(p.max_sessions for p in self._peers.values() if p.max_sessions)])
        return min(own, s.max_sessions)

    def _take_peer_slot(self, peer: str) -> bool:
        with self._per_peer_lock:
            n = self._per_peer.get(peer, 0)
            if n >= self.session_cap(peer):
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
        if self._tls is None:
            return
        nonce = next((v for k, v in context.invocation_metadata() if k == peer_auth.NONCE_HEADER), None)
        if not isinstance(nonce, bytes) or not 16 <= len(nonce) <= 64:
            return
        _cn, client_fp = peer_identity(context)
        if client_fp is None:
            return
        leaf = peer_auth.load_pem_certs(self._tls.cert)[0]
        from cryptography.hazmat.primitives.serialization import Encoding

        proof = peer_auth.server_proof(self._tls.key, nonce, client_fp)
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
    def authorise(self, context: grpc.ServicerContext) -> str:
        """The ``[[peers]]`` name of the caller; PeerNotAllowed (carrying the certificate subject) otherwise."""
        if self.insecure:
            return INSECURE_PEER
        if self.allowlist is None:
            raise PeerNotAllowed("this responder has no peer allowlist bound to its CA bundle (internal setup error)")
        pem = (context.auth_context().get("x509_pem_cert") or [None])[0]
        name, _who = self.allowlist.identify(pem)
        return name

    def _policy(self) -> pb.Policy:
        return policy(self.state)

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
    def _log(self, **fields: object) -> None:
        """Append a row to the session log, if one is configured (never identity data)."""
        if self.state.session_log is not None:
            self.state.session_log.append(role="responder", config_fingerprint=self.state.config_fingerprint, **fields)

    def _charge(self, peer: str, hello: pb.Hello, cost: int | None = None) -> None:
        """Per-peer limits: the session size cap, then the daily budget (reserved atomically).

        ``cost`` is what the session is charged (the protocol's ``budget_cost``: the
        responder's work, see docs/security.md); the request size by default.
        """
        cfg = self._peers.get(peer)
        if self.insecure:
            # --insecure: every caller is one pseudo-peer under the tightest limits of [[peers]]
            set_sizes = [p.max_set_size for p in self._peers.values() if p.max_set_size is not None]
            budgets = [p.daily_budget for p in self._peers.values() if p.daily_budget is not None]
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
            self.state.budgets.reserve(peer, hello.request_size if cost is None else cost, budget)

    def Match(self, request_iterator: Iterator[pb.MatchRequest], context: grpc.ServicerContext):
        """One session: the rules are the session machine's (matcher.sessions.responder); here
        the peer, slots, deadlines, budget, logging, metrics and status codes."""
        session_id = secrets.token_hex(8)
        started = time.monotonic()
        peer, protocol, reveal, size = "?", "?", "", None
        machine, refusal = ResponderMachine(self.state), None
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
            peer = self.authorise(context)
            if not slot:
                raise LimitExceeded(
                    f"the responder is serving its maximum of {self.max_sessions} concurrent sessions; try again later"
                )
            peer_slot = self._take_peer_slot(peer)
            if not peer_slot:
                raise LimitExceeded(
                    f"peer {peer} already holds its maximum of {self.session_cap(peer)} concurrent sessions "
                    "(max_sessions_per_peer); finish one first"
                )
            first = inbox.next(
                deadline=started + self.hello_timeout,
                why=f"the responder's limit of {self.hello_timeout:g} s for the Hello (hello_timeout_seconds)",
            )

            def start(hello: pb.Hello) -> None:  # the start row, written before the Hello's checks
                nonlocal protocol, reveal, size
                protocol, reveal, size = loggable_hello(hello)
                self._log(event="start", session_id=session_id, peer=peer, protocol=protocol, reveal=reveal,
                          request_size=size)

            hello = machine.on_hello(first, start)
            self._charge(peer, hello, machine.budget_cost())
            yield from machine.accept(session_id, peer)
            while (req := inbox.next()) is not None:
                for resp in machine.receive(req):
                    if resp.WhichOneof("kind") == "summary":
                        # The session's work is complete: OK even if the call is cancelled (e.g. by a
                        # shutdown) while the Summary is on its way, which closes this generator there.
                        outcome, code, detail = grpc.StatusCode.OK, 0, None
                    yield resp
                if machine.done:
                    log.info(
                        "session %s peer=%s protocol=%s size=%d outcome=OK seconds=%.2f",
                        session_id, peer, protocol, machine.received, time.monotonic() - started,
                        extra=log_fields(event="session_end", session_id=session_id, peer=peer, protocol=protocol,
                                         elements=machine.received, outcome="OK",
                                         seconds=round(time.monotonic() - started, 3)),
                    )
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
                    event="end", session_id=session_id, peer=peer, protocol=protocol, reveal=reveal,
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
