"""The responder's gRPC service: policy, one ``Match`` stream per session, mTLS, health.

The session lives exactly as long as its stream: there is no session table, so a
cancelled call, a passed deadline or a dropped connection frees everything.
Every received element goes through the ecdh core's checks; a bad one ends the
session with INVALID_ARGUMENT and the server goes on serving others.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass

import grpc
from cryptography import x509
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from matcher.config import ResponderConfig
from matcher.errors import (
    KeySpecMismatch,
    LimitExceeded,
    MatcherError,
    PeerNotAllowed,
    ProtocolViolation,
    UnsupportedProtocol,
)
from matcher.match_keys import KeySpec
from matcher.protocols import ecdh
from matcher.records import LoadResult
from matcher.secrets_store import EpochKey, load_or_rotate
from matcher.sessions import RESPONDER_SESSIONS
from matcher.v1 import matcher_pb2 as pb
from matcher.v1 import matcher_pb2_grpc as pb_grpc

log = logging.getLogger("matcher.responder")

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Responder"].full_name


def message_limit(max_chunk_elements: int) -> int:
    """Largest gRPC message either side accepts: one full chunk of points plus framing."""
    return max(2 << 20, max_chunk_elements * (ecdh.POINT_BYTES + 8) + 4096)


@dataclass
class Epoch:
    """One key epoch: its key and the setup derived from the watchlist under it."""

    key: EpochKey
    setup: ecdh.ResponderSetup


class ResponderState:
    """The watchlist's tokens and the current epoch, rotated when the configured time has passed."""

    def __init__(self, config: ResponderConfig, watchlist: LoadResult, progress=None) -> None:
        self.config = config
        self.keyspec: KeySpec = config.key_spec()
        self.settings = config.responder
        self._entries = [
            (token, r.case_ref.encode("utf-8")) for r in watchlist.records for token in r.tokens.values()
        ]
        self._progress = progress
        self._lock = threading.Lock()
        self._epoch: Epoch | None = None
        self.current()

    @property
    def entries(self) -> list[tuple[bytes, bytes]]:
        """(token, case reference) of every watchlist record's tokens (protocols without a setup)."""
        return self._entries

    @property
    def setup_size_hint(self) -> int:
        return len(self._epoch.setup) if self._epoch else 0

    def current(self) -> Epoch:
        """The epoch in force now, starting a new one (new key, new setup) when due."""
        with self._lock:
            now = time.time()
            if self._epoch is None or self._epoch.key.expired(self.settings.key_rotation_days, now):
                key, fresh = load_or_rotate(self.settings.state_dir, self.settings.key_rotation_days, now)
                tag_len = ecdh.tag_length(len(self._entries), self.settings.max_request_size)
                if self._progress:
                    self._progress(f"computing setup for {len(self._entries)} watchlist tokens (epoch {key.epoch})")
                setup = ecdh.responder_setup(
                    key.key, self._entries, tag_len, with_labels=self.settings.reveal == "requester"
                )
                log.info("key epoch %s in force (%s), setup of %d entries", key.epoch, "new" if fresh else "loaded", len(setup))
                self._epoch = Epoch(key, setup)
            return self._epoch


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

    def __init__(self, state: ResponderState, insecure: bool = False) -> None:
        self.state = state
        self.insecure = insecure
        s = state.settings
        self.max_request = s.max_request_size
        self.max_chunk = s.max_chunk_elements

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
        )

    def GetPolicy(self, request: pb.GetPolicyRequest, context: grpc.ServicerContext) -> pb.Policy:
        try:
            self._authorise(context)
            return self._policy()
        except MatcherError as exc:
            context.abort(exc.status, str(exc))

    # -- one session ---------------------------------------------------------------
    def _check_hello(self, hello: pb.Hello) -> None:
        s = self.state.settings
        if hello.protocol not in s.protocols:
            raise UnsupportedProtocol(
                f"protocol {hello.protocol!r} is not offered; this responder offers {', '.join(s.protocols)}"
            )
        mine = self.state.keyspec.fingerprint()
        if hello.key_spec_fingerprint != mine:
            raise KeySpecMismatch(
                f"match-key spec differs: requester fingerprint {hello.key_spec_fingerprint or '(none)'}, "
                f"responder fingerprint {mine}; align [match_keys] and norm_version with the responder's policy"
            )
        if hello.reveal != s.reveal:
            raise UnsupportedProtocol(f"reveal mode {hello.reveal!r} requested, this responder runs {s.reveal!r}")
        if hello.request_size > self.max_request:
            raise LimitExceeded(
                f"request of {hello.request_size} elements exceeds this responder's limit of {self.max_request}"
            )

    def Match(self, request_iterator: Iterator[pb.MatchRequest], context: grpc.ServicerContext):
        session_id = secrets.token_hex(8)
        started = time.monotonic()
        peer, protocol, received = "?", "?", 0
        try:
            peer = self._authorise(context)
            first = next(request_iterator, None)
            if first is None or first.WhichOneof("kind") != "hello":
                raise ProtocolViolation("a session must start with a Hello message")
            hello = first.hello
            self._check_hello(hello)
            protocol = hello.protocol
            session = RESPONDER_SESSIONS[protocol](self.state, hello)
            accepted = pb.Accepted(
                session_id=session_id, max_chunk_elements=self.max_chunk, reveal=self.state.settings.reveal
            )
            session.accepted(accepted)
            yield pb.MatchResponse(accepted=accepted)
            yield from session.opening()
            for req in request_iterator:
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
                    yield from session.on_elements(chunk.elements, received)
                    received += n
                elif kind == "finish":
                    if req.finish.elements_sent != received or received != hello.request_size:
                        raise ProtocolViolation(
                            f"Finish after {received} elements, but {hello.request_size} were announced"
                        )
                    yield from session.on_finish()
                    yield pb.MatchResponse(summary=pb.Summary(elements_evaluated=received))
                    log.info(
                        "session %s peer=%s protocol=%s size=%d outcome=OK seconds=%.2f",
                        session_id, peer, protocol, received, time.monotonic() - started,
                    )
                    return
                else:
                    raise ProtocolViolation(f"unexpected {kind or 'empty'} message during a session")
            raise ProtocolViolation("the stream ended before Finish")
        except MatcherError as exc:
            log.warning(
                "session %s peer=%s protocol=%s size=%d outcome=%s: %s",
                session_id, peer, protocol, received, exc.status.name, exc,
            )
            context.abort(exc.status, str(exc))


@dataclass
class TlsMaterial:
    """PEM bytes of the own certificate, its key, and the CA(s) trusted for the other side."""

    cert: bytes
    key: bytes
    ca: bytes


def build_server(
    servicer: ResponderServicer,
    listen: str,
    tls: TlsMaterial | None,
    max_workers: int = 16,
) -> tuple[grpc.Server, int, health.HealthServicer]:
    """A gRPC server with the Responder service, health checking and reflection.

    With ``tls`` the server requires a client certificate chaining to ``tls.ca``
    (mutual TLS). Returns the server (not started), the bound port and the health
    servicer (to flip to NOT_SERVING on shutdown).
    """
    limit = message_limit(servicer.max_chunk)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="matcher-session"),
        options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", limit),
            ("grpc.so_reuseport", 0),
        ],
        maximum_concurrent_rpcs=max_workers,
    )
    pb_grpc.add_ResponderServicer_to_server(servicer, server)
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
