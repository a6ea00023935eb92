"""``MatchClient``: the requester half of a session over gRPC.

An agency system calls it from Python::

    from clients import MatchClient, TlsFiles
    with MatchClient("responder.example:50051", tls=TlsFiles.load(cert, key, ca)) as client:
        result = client.match(records, keyspec)
    for hit in result.hits:
        print(hit.record_id, hit.match_keys, hit.case_ref)

Tokens never leave this process in the clear: the client sends ``a·H(t)`` under a
fresh session key and turns the responder's reply into hits locally.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc

from clients.sessions import REQUESTER_SESSIONS, RequesterSession
from clients.sessions.base import Hit, MatchResult  # noqa: F401  (Hit re-exported by clients)
from matcher.errors import KeySpecMismatch, LimitExceeded, MatcherError, ProtocolViolation, UnsupportedProtocol
from matcher.identity.match_keys import KeySpec
from matcher.parallel import Workers
from matcher.storage.setup_cache import RequesterSetupCache
from matcher.identity.records import TokenisedRecord
from matcher.sessions.limits import message_limit
from matcher.v1 import matcher_pb2 as pb
from matcher.v1 import matcher_pb2_grpc as pb_grpc

Progress = Callable[[str, int, int], None]


class MatchFailed(Exception):
    """The session ended with a gRPC status; ``code`` says which, ``details`` why."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details


@dataclass(frozen=True)
class TlsFiles:
    """PEM bytes: this agency's client certificate and key, and the CA of the responder."""

    cert: bytes
    key: bytes
    ca: bytes

    @classmethod
    def load(cls, cert: Path, key: Path, ca: Path) -> TlsFiles:
        return cls(Path(cert).read_bytes(), Path(key).read_bytes(), Path(ca).read_bytes())


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
        setup_cache: Path | None = None,
    ) -> None:
        """``workers``: a Workers to share, or a process count (0 = all cores, 1 = none).

        ``setup_cache``: a folder where responders' ecdh setups are kept per epoch, so a
        repeated query against an unchanged watchlist does not download it again.
        """
        if tls is None and not insecure:
            raise ValueError("a TlsFiles is required (insecure=True only for development)")
        options = [
            ("grpc.max_receive_message_length", message_limit(65536)),
            ("grpc.max_send_message_length", message_limit(chunk_elements)),
        ]
        if server_name:
            options.append(("grpc.ssl_target_name_override", server_name))
        if tls is None:
            self._channel = grpc.insecure_channel(target, options=options)
        else:
            creds = grpc.ssl_channel_credentials(root_certificates=tls.ca, private_key=tls.key, certificate_chain=tls.cert)
            self._channel = grpc.secure_channel(target, creds, options=options)
        self._stub = pb_grpc.ResponderStub(self._channel)
        self.timeout = timeout
        self.chunk_elements = chunk_elements
        self.target = target
        self.setup_cache = RequesterSetupCache(setup_cache) if setup_cache else None
        self._own_workers = not isinstance(workers, Workers)
        self._workers_spec = workers
        self._workers: Workers | None = workers if isinstance(workers, Workers) else None

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
            return self._stub.GetPolicy(pb.GetPolicyRequest(), timeout=min(self.timeout, 30.0))
        except grpc.RpcError as exc:
            raise MatchFailed(exc.code(), exc.details() or "") from None

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
        failure: list[BaseException] = []
        sent = [0]
        reports: queue.Queue[pb.HitReport | None] = queue.Queue(maxsize=1)

        def requests() -> Iterator[pb.MatchRequest]:
            try:
                hello = pb.Hello(
                    protocol=protocol, key_spec_fingerprint=mine, request_size=session.request_size, reveal=reveal
                )
                session.fill_hello(hello)
                msg = pb.MatchRequest(hello=hello)
                sent[0] += msg.ByteSize()
                yield msg
                offset = 0
                for elements in session.chunks(chunk):
                    msg = pb.MatchRequest(blinded=pb.ElementChunk(offset=offset, elements=elements))
                    sent[0] += msg.ByteSize()
                    yield msg
                    offset += len(elements)
                yield pb.MatchRequest(finish=pb.Finish(elements_sent=offset))
                if session.wants_report:  # reveal = "both": once every reply is in (see _run)
                    report = reports.get()
                    if report is not None:
                        yield pb.MatchRequest(hit_report=report)
            except Exception as exc:  # surfaced by the reading side (not GeneratorExit)
                if ended.is_set():
                    return  # the session is over (refused or failed): stop sending, quietly
                failure.append(exc)
                raise

        ended = threading.Event()
        call = self._stub.Match(requests(), timeout=self.timeout)
        try:
            result = self._run(call, session, progress, reports)
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
            if session.wants_report and reports.empty():
                reports.put_nowait(None)  # never leave the sending side waiting

    @staticmethod
    def _run(
        call, session: RequesterSession, progress: Progress | None, reports: queue.Queue | None = None
    ) -> MatchResult:
        responses = iter(call)
        first = next(responses, None)
        if first is None or first.WhichOneof("kind") != "accepted":
            raise ProtocolViolation("the responder did not accept the session with an Accepted message")
        session.on_accepted(first.accepted)
        done = 0
        received = first.ByteSize()
        reported = False

        def maybe_report() -> None:
            # reveal = "both": hand the report to the sending side once every reply is in.
            nonlocal reported
            if session.wants_report and not reported and session.evaluation_complete and reports is not None:
                reports.put_nowait(session.hit_report())
                reported = True

        maybe_report()
        for resp in responses:
            received += resp.ByteSize()
            kind = resp.WhichOneof("kind")
            if kind == "setup":
                session.on_setup(resp.setup)
                maybe_report()
            elif kind == "evaluated":
                done += session.on_evaluated(resp.evaluated)
                if progress:
                    progress("matched", done, session.progress_total)
                maybe_report()
            elif kind == "summary":
                session.on_summary(resp.summary)
                result = session.result()
                result.bytes_received = received
                return result
            else:
                raise ProtocolViolation(f"unexpected {kind or 'empty'} message from the responder")
        raise ProtocolViolation("the responder closed the session before its summary")
