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
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from matcher.errors import InvalidElement, KeySpecMismatch, ProtocolViolation
from matcher.match_keys import KeySpec
from matcher.protocols import ecdh
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


@dataclass(frozen=True)
class Hit:
    """One of the requester's records that the responder also holds."""

    record_id: str
    match_keys: tuple[str, ...]  # strongest first
    case_ref: str


@dataclass
class MatchResult:
    """What one session taught the requester."""

    session_id: str
    key_epoch: str
    reveal: str
    records: int
    elements_sent: int
    hits: list[Hit] = field(default_factory=list)
    hit_count: int = 0  # hit records (requester mode) or hit elements (cardinality mode)


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
    ) -> MatchResult:
        """Run one session: which of ``records`` does the responder hold, by which keys.

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
        # Each distinct token is sent once; remember which records (and keys) it stands for.
        owners: dict[bytes, list[tuple[int, str]]] = {}
        for i, rec in enumerate(records):
            for key_name, token in rec.tokens:
                owners.setdefault(token, []).append((i, key_name))
        tokens = list(owners)
        chunk = max(1, min(self.chunk_elements, policy.max_chunk_elements or self.chunk_elements))
        session_key = ecdh.new_key()
        failure: list[BaseException] = []

        def requests() -> Iterator[pb.MatchRequest]:
            try:
                yield pb.MatchRequest(
                    hello=pb.Hello(
                        protocol=protocol, key_spec_fingerprint=mine, request_size=len(tokens), reveal=reveal
                    )
                )
                for off in range(0, len(tokens), chunk):
                    blinded = ecdh.blind_tokens(session_key, tokens[off : off + chunk])
                    yield pb.MatchRequest(blinded=pb.ElementChunk(offset=off, elements=blinded))
                yield pb.MatchRequest(finish=pb.Finish(elements_sent=len(tokens)))
            except Exception as exc:  # surfaced by the reading side (not GeneratorExit)
                failure.append(exc)
                raise

        call = self._stub.Match(requests(), timeout=self.timeout)
        try:
            return self._read(call, records, keyspec, tokens, owners, session_key, reveal, progress)
        except grpc.RpcError as exc:
            if failure:
                raise failure[0] from None
            raise MatchFailed(exc.code(), exc.details() or "") from None
        except (InvalidElement, ProtocolViolation):
            call.cancel()
            raise

    def _read(self, call, records, keyspec, tokens, owners, session_key, reveal, progress) -> MatchResult:
        responses = iter(call)
        first = next(responses, None)
        if first is None or first.WhichOneof("kind") != "accepted":
            raise ProtocolViolation("the responder did not accept the session with an Accepted message")
        acc = first.accepted
        result = MatchResult(acc.session_id, acc.key_epoch, acc.reveal, len(records), len(tokens))
        index = ecdh.SetupIndex(acc.tag_length)
        a_inv = ecdh.invert_key(session_key)
        keys_by_record: dict[int, set[str]] = {}
        refs_by_record: dict[int, set[str]] = {}
        done = 0
        for resp in responses:
            kind = resp.WhichOneof("kind")
            if kind == "setup":
                if done:
                    raise ProtocolViolation("setup after evaluated elements")
                if reveal == "requester" and len(resp.setup.labels) != len(resp.setup.tags):
                    raise ProtocolViolation("setup chunk with tags and labels of different counts")
                index.add(list(resp.setup.tags), list(resp.setup.labels))
                if len(index) > acc.setup_size:
                    raise ProtocolViolation("more setup entries than announced")
            elif kind == "evaluated":
                ev = resp.evaluated
                if ev.offset != done or done + len(ev.elements) > len(tokens):
                    raise ProtocolViolation("evaluated elements out of order or too many")
                found = index.lookup(ecdh.unblind(a_inv, list(ev.elements), offset=done))
                for j, ref in enumerate(found):
                    if ref is None:
                        continue
                    result.hit_count += reveal == "cardinality"
                    if reveal == "requester":
                        for rec_idx, key_name in owners[tokens[done + j]]:
                            keys_by_record.setdefault(rec_idx, set()).add(key_name)
                            refs_by_record.setdefault(rec_idx, set()).update(ref.decode("utf-8", "replace").split(";"))
                done += len(ev.elements)
                if progress:
                    progress("matched", done, len(tokens))
            elif kind == "summary":
                if done != len(tokens):
                    raise ProtocolViolation(f"session ended after {done} of {len(tokens)} elements")
                break
            else:
                raise ProtocolViolation(f"unexpected {kind or 'empty'} message from the responder")
        else:
            raise ProtocolViolation("the responder closed the session before its summary")
        order = {name: i for i, name in enumerate(keyspec.names)}
        for rec_idx in sorted(keys_by_record):
            result.hits.append(
                Hit(
                    record_id=records[rec_idx].record_id,
                    match_keys=tuple(sorted(keys_by_record[rec_idx], key=order.__getitem__)),
                    case_ref=";".join(sorted(refs_by_record[rec_idx])),
                )
            )
        if reveal == "requester":
            result.hit_count = len(result.hits)
        return result
