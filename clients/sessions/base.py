"""The interface every protocol's requester half implements, and the hit bookkeeping they share."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from matcher.errors import ProtocolViolation
from matcher.identity.match_keys import KeySpec
from matcher.identity.records import TokenisedRecord
from matcher.sessions.chunks import InOrder
from matcher.v1 import matcher_pb2 as pb


@dataclass(frozen=True)
class Hit:
    """One (own record, responder case reference) pair that matched, and the keys that linked that pair.

    A record that matches two of the responder's records with different case
    references gives two Hits, each with its own keys and strength: a namesake's
    case reference found by a weak key is never shown under a strong key.
    """

    record_id: str
    match_keys: tuple[str, ...]  # the keys that linked this pair, strongest first
    case_ref: str  # one case reference ("" when the responder sends none)

    @property
    def strength(self) -> str:
        """The strongest key that linked this pair (key order in the spec is strength order)."""
        return self.match_keys[0]

    def __repr__(self) -> str:
        # The record id and the case reference name a person: read them as attributes, never by
        # accident from a log line or a traceback.
        return f"Hit(<record and case reference hidden>, match_keys={self.match_keys!r})"

    __str__ = __repr__


@dataclass
class MatchResult:
    """What one session taught the requester."""

    session_id: str
    key_epoch: str
    reveal: str
    records: int
    elements_sent: int
    #: one per (own record, case reference), in record order, then strongest first, then case reference
    hits: list[Hit] = field(default_factory=list)
    hit_count: int = 0  # distinct hit records (requester mode) or hit tokens (cardinality mode)
    bytes_sent: int = 0  # protobuf payload bytes, both ways (without gRPC/TLS framing)
    bytes_received: int = 0


class RequesterSession(ABC):
    """One protocol's requester half for one session.

    The client calls :meth:`fill_hello`, sends the chunks of :meth:`chunks`, and
    hands every response to :meth:`on_accepted`, :meth:`on_setup`,
    :meth:`on_evaluated` and finally :meth:`on_summary`; then :meth:`result`.
    Distinct tokens are sent once: ``self.tokens[i]`` stands for every (record, key name)
    pair that yields it (see :meth:`owners`).
    """

    protocol: ClassVar[str]

    def __init__(self, records: Sequence[TokenisedRecord], keyspec: KeySpec, reveal: str, workers=None) -> None:
        self.records = records
        self.keyspec = keyspec
        self.reveal = reveal
        # Distinct tokens in first-seen order. Who owns each token is looked up only for the
        # hits, once, in result(): a (record, key) list per token cost ~2 µs per element.
        self.tokens: list[bytes] = self._distinct_tokens(records)
        self._hit_refs: list[tuple[int, bytes]] = []  # (token index, case reference) of each hit
        self.accepted: pb.Accepted | None = None
        self.hit_tokens = 0
        #: (record index, case reference) -> the keys that linked that pair
        self._keys_by_pair: dict[tuple[int, str], set[str]] = {}
        self._reply_order: InOrder | None = None

    def _distinct_tokens(self, records: Sequence[TokenisedRecord]) -> list[bytes]:
        """The distinct tokens of ``records`` in first-seen order (a half that has them already returns those)."""
        return list(dict.fromkeys([t for rec in records for _, t in rec.tokens]))

    # -- the responder's replies, in order (matcher.sessions.chunks) ----------------------
    def replies_in_order(self, total: int) -> InOrder:
        """The in-order rule for the responder's reply chunks, ``total`` replies expected (made on first use)."""
        if self._reply_order is None:
            self._reply_order = InOrder(total, what="reply chunk", announced="the request")
        return self._reply_order

    @property
    def _done(self) -> int:
        """Replies taken so far."""
        return self._reply_order.done if self._reply_order is not None else 0

    # -- what goes out ----------------------------------------------------------------
    @property
    def request_size(self) -> int:
        """Elements this session will send (announced in the Hello)."""
        return len(self.tokens)

    def use_policy(self, policy: pb.Policy, responder: str, setup_cache=None) -> None:  # noqa: B027 - optional hook
        """Learn the responder's policy before the Hello (``setup_cache``: a RequesterSetupCache or None)."""

    def fill_hello(self, hello: pb.Hello) -> None:  # noqa: B027 - optional hook: no parameters by default
        """Add the protocol's parameters to the Hello."""

    @abstractmethod
    def chunks(self, chunk_elements: int) -> Iterator[list[bytes]]:
        """The elements to send, in chunks of at most ``chunk_elements``."""

    # -- what comes back --------------------------------------------------------------
    def on_accepted(self, accepted: pb.Accepted) -> None:
        self.accepted = accepted

    # -- messages after Finish (a hit report, the re-blinded setup) ----------------------
    @property
    def wants_tail(self) -> bool:
        """Whether this session sends messages after Finish (:meth:`tail`)."""
        return False

    @property
    def tail_ready(self) -> bool:
        """Everything :meth:`tail` needs has arrived (e.g. every reply, the whole setup)."""
        return False

    def tail(self, chunk_elements: int) -> list[pb.MatchRequest]:
        """The messages sent after Finish, in order."""
        raise ProtocolViolation(f"{self.protocol} sends nothing after Finish")

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
        self._hit_refs.append((token_index, case_ref))

    def add_hits(self, hits: Sequence[tuple[int, bytes]]) -> None:
        """:meth:`add_hit` for each (token index, case reference) of ``hits``, in one call."""
        self.hit_tokens += len(hits)
        self._hit_refs.extend(hits)

    def owners(self, tokens: set[bytes]) -> dict[bytes, list[tuple[int, str]]]:
        """The (record index, key name) pairs behind each of ``tokens``, in record order."""
        out: dict[bytes, list[tuple[int, str]]] = {}
        for i, rec in enumerate(self.records):
            pairs = rec.tokens
            if len(pairs) == 1:  # one token (the common case): no inner loop, half the time
                if pairs[0][1] in tokens:
                    out.setdefault(pairs[0][1], []).append((i, pairs[0][0]))
                continue
            for key_name, token in pairs:
                if token in tokens:
                    out.setdefault(token, []).append((i, key_name))
        return out

    def hit_owners(self, token_indices: Sequence[int]) -> dict[int, list[tuple[int, str]]]:
        """The (record index, key name) pairs behind each of these tokens (by index), in record order."""
        by_token = self.owners({self.tokens[t] for t in token_indices})
        return {t: by_token[self.tokens[t]] for t in token_indices}

    def _pairs(self) -> None:
        """Fold the hits taken so far into (record index, case reference) -> keys."""
        hits, self._hit_refs = self._hit_refs, []
        self._fold(hits)

    def _fold(self, hits: Sequence[tuple[int, bytes]]) -> None:
        """Fold these (token index, case reference) hits into (record index, case reference) -> keys."""
        owners = self.hit_owners([t for t, _ in hits])
        keys_by_pair = self._keys_by_pair
        for token_index, case_ref in hits:
            # The responder joins the distinct case references of one token by ";".
            if b";" in case_ref:
                refs = [r for r in case_ref.decode("utf-8", "replace").split(";") if r] or [""]
            else:  # one case reference, or none (""): most hits
                refs = [case_ref.decode("utf-8", "replace")]
            for rec_idx, key_name in owners[token_index]:
                for ref in refs:
                    keys = keys_by_pair.get((rec_idx, ref))
                    if keys is None:
                        keys_by_pair[rec_idx, ref] = {key_name}
                    else:
                        keys.add(key_name)

    def result(self) -> MatchResult:
        acc = self.accepted or pb.Accepted()
        res = MatchResult(acc.session_id, acc.key_epoch, acc.reveal, len(self.records), self.request_size)
        if self.reveal == "cardinality":
            res.hit_count = self.hit_tokens
            return res
        self._pairs()
        order = {name: i for i, name in enumerate(self.keyspec.names)}
        # (record index, strength rank, case reference, keys strongest first): sorted as tuples,
        # that is in record order, then strongest pair first, then case reference (code-point
        # order = UTF-8 byte order); (record, case reference) is unique, so keys never compare.
        pairs = [
            (rec_idx, order[ranked[0]], ref, ranked)
            for (rec_idx, ref), keys in self._keys_by_pair.items()
            for ranked in [tuple(keys) if len(keys) == 1 else tuple(sorted(keys, key=order.__getitem__))]
        ]
        pairs.sort()
        records = self.records
        res.hits = [Hit(records[i].record_id, keys, ref) for i, _, ref, keys in pairs]
        res.hit_count = len({p[0] for p in pairs})
        return res
