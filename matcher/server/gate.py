"""Who may call: the allowlist interceptor (PeerGate), the peer's certificate, the TLS material.

Every call except a health check is refused before its handler runs unless the
client certificate belongs to a ``[[peers]]`` entry (matcher.peer_auth binds names to a
CA or a pin). Refusals are logged with a rate limit; streams other than Match are capped.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import grpc
from cryptography import x509

from matcher.errors import PeerNotAllowed
from matcher.grpc_status import status_code
from matcher.logs import log_fields
from matcher.v1 import matcher_pb2 as pb

if TYPE_CHECKING:
    from matcher.server.service import ResponderServicer

log = logging.getLogger("matcher.server.responder")

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Responder"].full_name


def auth_context(context: grpc.ServicerContext) -> Mapping[str, list[bytes]]:
    """The TLS auth context: property name -> its values (types-grpcio says one bytes value; grpc gives lists)."""
    return cast(Mapping[str, list[bytes]], context.auth_context())


def peer_identity(context: grpc.ServicerContext) -> tuple[str | None, str | None]:
    """The client certificate's subject CN and SHA-256 fingerprint (None without TLS)."""
    auth = auth_context(context)
    pem = next(iter(auth.get("x509_pem_cert") or []), None)
    if not pem:
        return None, None
    cert = x509.load_pem_x509_certificate(pem)
    cns = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    from cryptography.hazmat.primitives.serialization import Encoding

    fingerprint = hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()
    return (str(cns[0].value) if cns else None), fingerprint


@dataclass(repr=False)
class TlsMaterial:
    """PEM bytes of the own certificate, its key, and the CA(s) trusted for the other side."""

    def __repr__(self) -> str:  # never the private key
        return "TlsMaterial(<certificate, private key, CA>)"

    cert: bytes
    key: bytes
    ca: bytes


def certificate_configuration(tls: TlsMaterial) -> grpc.ServerCertificateConfiguration:
    """gRPC's certificate configuration for ``tls`` (own certificate and key, the CA bundle trusted for peers)."""
    return grpc.ssl_server_certificate_configuration([(tls.key, tls.cert)], root_certificates=tls.ca)


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
