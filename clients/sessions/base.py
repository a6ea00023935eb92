"""The interface every protocol's requester half implements, and the hit bookkeeping they share."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from matcher.errors import ProtocolViolation
from matcher.identity.match_keys import KeySpec
from matcher.identity.records import TokenisedRecord
from matcher.v1 import matcher_pb2 as pb


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
    hit_count: int = 0  # hit records (requester mode) or hit tokens (cardinality mode)
    bytes_sent: int = 0  # protobuf payload bytes, both ways (without gRPC/TLS framing)
    bytes_received: int = 0


class RequesterSession(ABC):
    """One protocol's requester half for one session.

    The client calls :meth:`fill_hello`, sends the chunks of :meth:`chunks`, and
    hands every response to :meth:`on_accepted`, :meth:`on_setup`,
    :meth:`on_evaluated` and finally :meth:`on_summary`; then :meth:`result`.
    Distinct tokens are sent once: ``self.tokens[i]`` stands for the
    (record index, key name) pairs in ``self.owners[self.tokens[i]]``.
    """

    protocol: ClassVar[str]

    def __init__(self, records: Sequence[TokenisedRecord], keyspec: KeySpec, reveal: str, workers=None) -> None:
        self.records = records
        self.keyspec = keyspec
        self.reveal = reveal
        self.owners: dict[bytes, list[tuple[int, str]]] = {}
        for i, rec in enumerate(records):
            for key_name, token in rec.tokens:
                self.owners.setdefault(token, []).append((i, key_name))
        self.tokens: list[bytes] = list(self.owners)
        self.accepted: pb.Accepted | None = None
        self.hit_tokens = 0
        self._keys_by_record: dict[int, set[str]] = {}
        self._refs_by_record: dict[int, set[str]] = {}

    # -- what goes out ----------------------------------------------------------------
    @property
    def request_size(self) -> int:
        """Elements this session will send (announced in the Hello)."""
        return len(self.tokens)

    def use_policy(self, policy: pb.Policy, responder: str, setup_cache=None) -> None:
        """Learn the responder's policy before the Hello (``setup_cache``: a RequesterSetupCache or None)."""

    def fill_hello(self, hello: pb.Hello) -> None:
        """Add the protocol's parameters to the Hello."""

    @abstractmethod
    def chunks(self, chunk_elements: int) -> Iterator[list[bytes]]:
        """The elements to send, in chunks of at most ``chunk_elements``."""

    # -- what comes back --------------------------------------------------------------
    def on_accepted(self, accepted: pb.Accepted) -> None:
        self.accepted = accepted

    # -- reveal = "both": a report after matching -------------------------------------
    @property
    def wants_report(self) -> bool:
        """Whether this session sends a HitReport after Finish (reveal = "both" where the protocol needs it)."""
        return False

    @property
    def evaluation_complete(self) -> bool:
        """All replies are in, so :meth:`hit_report` can be built."""
        return False

    def hit_report(self) -> pb.HitReport:
        """What the responder is told about the hits (reveal = "both")."""
        raise ProtocolViolation(f"{self.protocol} sends no hit report")

    def on_setup(self, chunk: pb.SetupChunk) -> None:
        raise ProtocolViolation(f"the responder sent a setup, which {self.protocol} does not use")

    @abstractmethod
    def on_evaluated(self, chunk: pb.ElementChunk) -> int:
        """Process one reply chunk; returns how many elements it completed (for progress)."""

    @abstractmethod
    def on_summary(self, summary: pb.Summary) -> None:
        """Check that the session is complete (raise ProtocolViolation if not)."""

    @property
    @abstractmethod
    def progress_total(self) -> int:
        """Elements :meth:`on_evaluated` will have completed at the end."""

    # -- hits ---------------------------------------------------------------------------
    def add_hit(self, token_index: int, case_ref: bytes) -> None:
        """Token ``token_index`` is held by the responder, with this case reference (or b"")."""
        self.hit_tokens += 1
        refs = [r for r in case_ref.decode("utf-8", "replace").split(";") if r]
        for rec_idx, key_name in self.owners[self.tokens[token_index]]:
            self._keys_by_record.setdefault(rec_idx, set()).add(key_name)
            self._refs_by_record.setdefault(rec_idx, set()).update(refs)

    def result(self) -> MatchResult:
        acc = self.accepted or pb.Accepted()
        res = MatchResult(acc.session_id, acc.key_epoch, acc.reveal, len(self.records), self.request_size)
        if self.reveal == "cardinality":
            res.hit_count = self.hit_tokens
            return res
        order = {name: i for i, name in enumerate(self.keyspec.names)}
        for rec_idx in sorted(self._keys_by_record):
            res.hits.append(
                Hit(
                    record_id=self.records[rec_idx].record_id,
                    match_keys=tuple(sorted(self._keys_by_record[rec_idx], key=order.__getitem__)),
                    case_ref=";".join(sorted(self._refs_by_record[rec_idx])),
                )
            )
        res.hit_count = len(res.hits)
        return res
