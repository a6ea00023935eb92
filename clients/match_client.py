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

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc

from clients.sessions import REQUESTER_SESSIONS, RequesterSession
from clients.sessions.base import Hit, MatchResult
from matcher.errors import KeySpecMismatch, MatcherError, ProtocolViolation, UnsupportedProtocol
from matcher.match_keys import KeySpec
from matcher.records import TokenisedRecord
from matcher.service import message_limit
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
    ) -> None:
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

    def __enter__(self) -> MatchClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

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
        options: dict | None = None,
    ) -> MatchResult:
        """Run one session: which of ``records`` does the responder hold, by which keys.

        ``options`` go to the protocol's session (paillier: ``key_bits``, ``workers``).
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
        session = REQUESTER_SESSIONS[protocol](records, keyspec, reveal, **(options or {}))
        chunk = max(1, min(self.chunk_elements, policy.max_chunk_elements or self.chunk_elements))
        failure: list[BaseException] = []

        def requests() -> Iterator[pb.MatchRequest]:
            try:
                hello = pb.Hello(
                    protocol=protocol, key_spec_fingerprint=mine, request_size=session.request_size, reveal=reveal
                )
                session.fill_hello(hello)
                yield pb.MatchRequest(hello=hello)
                offset = 0
                for elements in session.chunks(chunk):
                    yield pb.MatchRequest(blinded=pb.ElementChunk(offset=offset, elements=elements))
                    offset += len(elements)
                yield pb.MatchRequest(finish=pb.Finish(elements_sent=offset))
            except Exception as exc:  # surfaced by the reading side (not GeneratorExit)
                failure.append(exc)
                raise

        call = self._stub.Match(requests(), timeout=self.timeout)
        try:
            return self._run(call, session, progress)
        except grpc.RpcError as exc:
            if failure:
                raise failure[0] from None
            raise MatchFailed(exc.code(), exc.details() or "") from None
        except MatcherError:
            call.cancel()
            raise

    @staticmethod
    def _run(call, session: RequesterSession, progress: Progress | None) -> MatchResult:
        responses = iter(call)
        first = next(responses, None)
        if first is None or first.WhichOneof("kind") != "accepted":
            raise ProtocolViolation("the responder did not accept the session with an Accepted message")
        session.on_accepted(first.accepted)
        done = 0
        for resp in responses:
            kind = resp.WhichOneof("kind")
            if kind == "setup":
                session.on_setup(resp.setup)
            elif kind == "evaluated":
                done += session.on_evaluated(resp.evaluated)
                if progress:
                    progress("matched", done, session.progress_total)
            elif kind == "summary":
                session.on_summary(resp.summary)
                return session.result()
            else:
                raise ProtocolViolation(f"unexpected {kind or 'empty'} message from the responder")
        raise ProtocolViolation("the responder closed the session before its summary")
