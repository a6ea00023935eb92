"""``MatchClient``: the requester half of a session over gRPC.

An agency system calls it from Python, in one call from a requester config::

    from clients import MatchClient
    with MatchClient.from_config("requester.toml") as client:
        run = client.match_csv("persons.csv", out="hits.csv")

or with its own records and TLS files::

    from clients import MatchClient, TlsFiles
    with MatchClient("responder.example:50051", tls=TlsFiles.load(cert, key, ca)) as client:
        result = client.match(records, keyspec)
    for hit in result.hits:  # one per (record, case reference)
        print(hit.record_id, hit.strength, hit.case_ref)

Tokens never leave this process in the clear: the client sends ``a·H(t)`` under a
fresh session key and turns the responder's reply into hits locally.
"""

from __future__ import annotations

import os
import queue
import secrets
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import grpc

from clients.connection import ConnectionFailed, MatchFailed, TlsFiles, connection_failure  # noqa: F401 (re-exported)
from clients.sessions import REQUESTER_SESSIONS
from clients.sessions.base import Hit, MatchResult  # noqa: F401  (Hit re-exported by clients)
from matcher import peer_auth
from matcher.errors import (
    KeySpecMismatch,
    LimitExceeded,
    MatcherError,
    NormalisationMismatch,
    PinMismatch,
    UnsupportedProtocol,
)
from matcher.identity.conformance import check_peer, conformance
from matcher.identity.match_keys import KeySpec
from matcher.identity.records import TokenisedRecord
from matcher.parallel import Workers, gc_paused
from matcher.sessions.limits import WIRE_VERSION, message_limit
from matcher.sessions.requester import RequesterMachine
from matcher.storage.setup_cache import RequesterSetupCache
from matcher.v1 import matcher_pb2 as pb
from matcher.v1 import matcher_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    from matcher.config import RequesterConfig
    from matcher.requester import RequesterRun

Progress = Callable[[str, int, int], None]


class MatchClient:
    """A connection to one responder; thread-safe for sequential sessions."""

    def __init__(
        self,
        target: str,
        *,
        tls: TlsFiles | None = None,
        server_name: str | None = None,
        insecure: bool = False,
        timeout: float = 3600.0,
        chunk_elements: int = 4096,
        workers: Workers | int = 0,
        setup_cache: str | os.PathLike[str] | None = None,
        responder_spki_sha256: str | None = None,
        responder_cert_sha256: str | None = None,
    ) -> None:
        """``workers``: a Workers to share, or a process count (0 = all cores, 1 = none).

        ``setup_cache``: a folder where responders' ecdh setups are kept per epoch, so a
        repeated query against an unchanged watchlist does not download it again.

        ``responder_spki_sha256`` / ``responder_cert_sha256``: pin the responder's key or
        certificate (hex SHA-256). Every call then asks the responder to prove, with that
        key, that it is the end of this connection; nothing is sent before the proof
        verifies, and a mismatch raises PinMismatch.
        """
        if tls is None and not insecure:
            raise ValueError("a TlsFiles is required (insecure=True only for development)")
        if (responder_spki_sha256 or responder_cert_sha256) and tls is None:
            raise ValueError("a responder pin needs mutual TLS (it cannot be checked with insecure=True)")
        self._pins = (responder_spki_sha256, responder_cert_sha256)
        self._pinned = bool(responder_spki_sha256 or responder_cert_sha256)
        self._own_cert = tls.cert if tls is not None else b""
        options: list[tuple[str, int | str]] = [
            ("grpc.max_receive_message_length", message_limit(65536)),
            ("grpc.max_send_message_length", message_limit(chunk_elements)),
        ]
        if server_name:
            options.append(("grpc.ssl_target_name_override", server_name))
        if tls is None:
            self._channel = grpc.insecure_channel(target, options=options)
        else:
            creds = grpc.ssl_channel_credentials(
                root_certificates=tls.ca, private_key=tls.key, certificate_chain=tls.cert
            )
            self._channel = grpc.secure_channel(target, creds, options=options)
        self._stub = pb_grpc.ResponderStub(self._channel)
        self.timeout = timeout
        self.chunk_elements = chunk_elements
        self.target = target
        self.server_name = server_name
        self.config: RequesterConfig | None = None  # set by from_config
        self.insecure = insecure
        self.setup_cache = RequesterSetupCache(Path(setup_cache)) if setup_cache else None
        self._own_workers = not isinstance(workers, Workers)
        self._workers_spec = workers
        self._workers: Workers | None = workers if isinstance(workers, Workers) else None

    @classmethod
    def from_config(
        cls, config: str | os.PathLike[str] | RequesterConfig, peer: str | None = None, *, insecure: bool = False
    ) -> MatchClient:
        """A client for the responder of a requester config: the recipe for agency systems.

        ``config`` is a requester TOML file (or a loaded RequesterConfig): its ``[tls]``
        files, ``[requester] server_name``, timeouts and workers are used, and ``peer``
        defaults to ``[requester] peer``. Use :meth:`match_csv` to match a records file::

            with MatchClient.from_config("requester.toml") as client:
                run = client.match_csv("persons.csv", out="hits.csv")

        Raises ConfigError naming the setting when something is missing or unreadable.
        """
        from matcher.config import RequesterConfig, load_requester_config
        from matcher.errors import ConfigError
        from matcher.requester import client_for

        cfg = config if isinstance(config, RequesterConfig) else load_requester_config(config)
        target = peer or cfg.requester.peer
        if not target:
            raise ConfigError("no responder given: pass peer='HOST:PORT' or set [requester] peer in the config")
        client = client_for(cfg, target, insecure=insecure)
        client.config = cfg
        client.insecure = insecure
        return client

    def match_csv(
        self,
        records: str | os.PathLike[str],
        *,
        out: str | os.PathLike[str] | None = None,
        rejects: str | os.PathLike[str] | None = None,
        progress: Progress | None = None,
    ) -> RequesterRun:
        """Load ``records`` with the config's column mapping, run one session, write ``out`` (the hits file).

        Only on a client made by :meth:`from_config`. Dropped fields and rejected rows
        go to ``rejects`` (default ``RECORDS.rejects.csv``); the session is recorded in
        ``[requester] session_log`` when one is set. Returns ``.loaded`` (LoadResult,
        with ``summary()``) and ``.result`` (MatchResult, one Hit per record and case
        reference). The format of ``out`` is in docs/hits-file.md.
        """
        from matcher.requester import run_match

        if self.config is None:
            raise ValueError("match_csv needs a client made by MatchClient.from_config (it uses the config)")
        return run_match(self.config, records, self.target, out=out, rejects_path=rejects, insecure=self.insecure,
                         progress=progress, client=self)

    @property
    def workers(self) -> Workers:
        """The worker pool, started on first use (a small session never starts it)."""
        if self._workers is None:
            self._workers = Workers(self._workers_spec)  # type: ignore[arg-type]
        return self._workers

    def __enter__(self) -> MatchClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()
        if self._own_workers and self._workers is not None:
            self._workers.close()
            self._workers = None

    def get_policy(self) -> pb.Policy:
        """The responder's policy (protocols, limits, key spec and fingerprint, epoch)."""
        try:
            if not self._pinned:
                return self._stub.GetPolicy(pb.GetPolicyRequest(), timeout=min(self.timeout, 30.0))
            nonce = secrets.token_bytes(32)
            policy, call = self._stub.GetPolicy.with_call(
                pb.GetPolicyRequest(), timeout=min(self.timeout, 30.0), metadata=((peer_auth.NONCE_HEADER, nonce),)
            )
            self._check_pin(call.initial_metadata(), nonce)
            return policy
        except grpc.RpcError as exc:
            failed = connection_failure(self.target, self.server_name, exc.code(), exc.details() or "")
            raise failed or MatchFailed(exc.code(), exc.details() or "") from None

    def _check_pin(self, metadata, nonce: bytes) -> None:
        """PinMismatch unless the responder proved it holds the pinned key (see matcher.peer_auth)."""
        got = dict(metadata or ())
        cert, proof = got.get(peer_auth.CERT_HEADER), got.get(peer_auth.PROOF_HEADER)
        if not isinstance(cert, bytes) or not isinstance(proof, bytes):
            raise PinMismatch(
                "the responder sent no proof of its pinned key (responder_spki_sha256 / responder_cert_sha256 is "
                "set, but the responder does not answer the pin check); no data was sent"
            )
        peer_auth.check_server_proof(cert, proof, nonce, self._own_cert, *self._pins)

    def match(
        self,
        records: Sequence[TokenisedRecord],
        keyspec: KeySpec,
        *,
        protocol: str = "ecdh",
        reveal: str = "requester",
        progress: Progress | None = None,
        **session_options: object,
    ) -> MatchResult:
        """Run one session: which of ``records`` does the responder hold, by which keys.

        ``session_options`` go to the protocol's requester half (keyed-hash: ``secret=``).
        Raises KeySpecMismatch before any data moves when the responder's match keys
        differ, and MatchFailed with the responder's status code when it refuses.
        """
        policy = self.get_policy()
        mine = keyspec.fingerprint()
        if policy.key_spec_fingerprint != mine:
            raise KeySpecMismatch(
                f"match-key spec differs: requester fingerprint {mine}, responder fingerprint "
                f"{policy.key_spec_fingerprint}; the responder's keys are "
                + ", ".join(f"{k.name}=[{', '.join(k.fields)}]" for k in policy.match_keys)
                + f" under normalisation {policy.norm_version}"
            )
        if policy.wire_version != WIRE_VERSION:
            raise UnsupportedProtocol(
                f"the responder speaks wire version {policy.wire_version}, this client {WIRE_VERSION}: "
                "both agencies must run a matcher with the same wire version"
            )
        # Tokenisation: this installation must reproduce its own vectors, and the responder's.
        norm = conformance(keyspec.norm_version)
        check_peer(norm, policy.norm_conformance_digest, policy.norm_libraries, "responder")
        if not norm.ok:
            raise NormalisationMismatch(norm.problem())
        if protocol not in REQUESTER_SESSIONS:
            raise UnsupportedProtocol(f"protocol {protocol!r} is not known to this client")
        if protocol not in policy.protocols:
            raise UnsupportedProtocol(
                f"protocol {protocol!r} is not offered by this responder (it offers {', '.join(policy.protocols)})"
            )
        session_type = REQUESTER_SESSIONS[protocol]
        session = session_type(records, keyspec, reveal, workers=self.workers, **session_options)
        session.use_policy(policy, self.target, self.setup_cache)
        if policy.max_request_size and session.request_size > policy.max_request_size:
            raise LimitExceeded(
                f"this request has {session.request_size} elements; the responder accepts at most "
                f"{policy.max_request_size} per session: split the records into smaller files"
            )
        chunk = max(1, min(self.chunk_elements, policy.max_chunk_elements or self.chunk_elements))
        machine = RequesterMachine(session, pb.Hello(
            protocol=protocol, key_spec_fingerprint=mine, reveal=reveal, wire_version=WIRE_VERSION,
            norm_conformance_digest=norm.digest, norm_libraries=norm.libraries,
        ), chunk)
        failure: list[BaseException] = []
        sent = [0]
        tails: queue.Queue[list[pb.MatchRequest] | None] = queue.Queue(maxsize=1)

        pin_checked = threading.Event()
        nonce = secrets.token_bytes(32)

        def requests() -> Iterator[pb.MatchRequest]:
            try:
                if self._pinned:  # nothing is sent before the responder proved its pinned key
                    while not pin_checked.wait(0.05):
                        if ended.is_set():
                            return
                for msg in machine.requests():  # Hello, the chunks, Finish
                    if not msg.HasField("finish"):
                        sent[0] += msg.ByteSize()
                    yield msg
                if machine.wants_tail:  # a hit report, the re-blinded setup: once its inputs are in (see _run)
                    tail = tails.get()
                    for msg in tail or ():
                        sent[0] += msg.ByteSize()
                        yield msg
            except Exception as exc:  # surfaced by the reading side (not GeneratorExit)
                if ended.is_set():
                    return  # the session is over (refused or failed): stop sending, quietly
                failure.append(exc)
                raise

        ended = threading.Event()
        pin = {"metadata": ((peer_auth.NONCE_HEADER, nonce),)} if self._pinned else {}
        call = self._stub.Match(requests(), timeout=self.timeout, **pin)
        try:
            if self._pinned:
                self._check_pin(call.initial_metadata(), nonce)
                pin_checked.set()
            # The cyclic GC is paused for the stream: the session builds millions of objects
            # (the setup index, the replies' sets) with no cycles among them, and its full
            # passes over them and the loaded records cost about 2 s of a 1M session.
            with gc_paused():
                result = self._run(call, machine, progress, tails)
            result.bytes_sent = sent[0]
            return result
        except grpc.RpcError as exc:
            if failure:
                raise failure[0] from None
            raise MatchFailed(exc.code(), exc.details() or "") from None
        except MatcherError:
            call.cancel()
            raise
        finally:
            ended.set()
            call.cancel()  # no-op after a clean end; stops the sending side after a refusal
            if machine.wants_tail and tails.empty():
                tails.put_nowait(None)  # never leave the sending side waiting

    @staticmethod
    def _run(
        call, machine: RequesterMachine[MatchResult], progress: Progress | None, tails: queue.Queue | None = None,
    ) -> MatchResult:
        """Read the responses into the session machine; hand the messages after Finish to the sending side."""
        received = 0
        half = machine.half
        for resp in call:
            received += resp.ByteSize()
            machine.receive(resp)
            if progress and resp.WhichOneof("kind") == "evaluated":
                progress("matched", machine.matched, half.progress_total)  # type: ignore[attr-defined]
            if machine.done:
                result = machine.result()
                result.bytes_received = received
                return result
            if (tail := machine.take_tail()) is not None and tails is not None:
                tails.put_nowait(tail)
        machine.stream_ended()
        raise AssertionError("unreachable: stream_ended raises before the summary")
