"""The responder's session machine: the session rules of docs/PROTOCOL.md §5, messages in, messages out.

No sockets, threads or clocks: the gRPC servicer (matcher.server.service) moves the
messages, enforces deadlines, authorises the peer, charges budgets and maps the
:class:`matcher.errors.MatcherError` raised here to a status code. A session::

    machine = ResponderMachine(state)
    hello = machine.on_hello(first_request)     # every Hello check, in §5.2's order
    ...                                          # (the servicer charges the budget here)
    yield from machine.accept(session_id, peer)  # Accepted, then the opening (ecdh setup)
    for request in stream:
        yield from machine.receive(request)      # chunk rules, Finish, the tail, Summary
        if machine.done: break
    else:
        machine.stream_ended()                   # ProtocolViolation: ended before Finish

The responses are generators: iterate each fully before passing the next request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

from matcher.errors import (
    KeySpecMismatch,
    LimitExceeded,
    ProtocolViolation,
    UnsupportedProtocol,
)
from matcher.identity.conformance import check_peer
from matcher.sessions.base import ResponderSession
from matcher.sessions.chunks import InOrder
from matcher.sessions.context import ResponderContext
from matcher.sessions.limits import WIRE_VERSION
from matcher.v1 import matcher_pb2 as pb

_KNOWN_PROTOCOLS = frozenset({"ecdh", "paillier", "keyed-hash"})
_KNOWN_REVEALS = frozenset({"requester", "cardinality", "both"})
_MAX_LOGGED_SIZE = 1 << 62  # SQLite INTEGER holds 63 bits


def _is_hex_digest(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def _shown(name: str) -> str:
    """A short, plain name quoted as sent; anything else as "(unknown)"."""
    plain = 0 < len(name) <= 32 and all(c.isascii() and (c.isalnum() or c in "-_") for c in name)
    return repr(name) if plain else "(unknown)"


def loggable_hello(hello: pb.Hello) -> tuple[str, str, int | None]:
    """Protocol, reveal mode and size as they may be written to logs and messages.

    These come from the peer before any check: only known names and a bounded size
    are written; anything else is replaced, so a peer cannot inject lines or grow the
    session log.
    """
    protocol = hello.protocol if hello.protocol in _KNOWN_PROTOCOLS else _shown(hello.protocol)
    reveal = hello.reveal if hello.reveal in _KNOWN_REVEALS else _shown(hello.reveal)
    size = hello.request_size if hello.request_size <= _MAX_LOGGED_SIZE else None
    return protocol, reveal, size


def policy(state: ResponderContext) -> pb.Policy:
    """The responder's Policy (docs/PROTOCOL.md, GetPolicy): protocols, limits, key spec, epoch, conformance."""
    epoch = state.current()
    ks = state.keyspec
    return pb.Policy(
        protocols=list(state.settings.protocols),
        match_keys=[pb.MatchKeyDef(name=k.name, fields=list(k.fields)) for k in ks.keys],
        key_spec_fingerprint=ks.fingerprint(),
        norm_version=ks.norm_version,
        key_epoch=epoch.key.epoch,
        max_request_size=state.settings.max_request_size,
        max_chunk_elements=state.settings.max_chunk_elements,
        reveal=state.settings.reveal,
        setup_size=len(epoch.setup),
        setup_id=epoch.setup_id,
        wire_version=WIRE_VERSION,
        norm_conformance_digest=state.conformance.digest,
        norm_libraries=state.conformance.libraries,
        paillier_choices=2 if "paillier" in state.settings.protocols else 0,
    )


def check_hello(state: ResponderContext, hello: pb.Hello) -> None:
    """The Hello checks 4 to 9 of docs/PROTOCOL.md §5.2, in that order (the first failing one raises)."""
    s = state.settings
    protocol, reveal, _ = loggable_hello(hello)
    if hello.protocol not in s.protocols:
        raise UnsupportedProtocol(
            f"protocol {protocol} is not offered; this responder offers {', '.join(s.protocols)}"
        )
    mine = state.keyspec.fingerprint()
    if hello.key_spec_fingerprint != mine:
        theirs = hello.key_spec_fingerprint if _is_hex_digest(hello.key_spec_fingerprint) else "(not a SHA-256 digest)"
        raise KeySpecMismatch(
            f"match-key spec differs: requester fingerprint {theirs or '(none)'}, "
            f"responder fingerprint {mine}; align [match_keys] and norm_version with the responder's policy"
        )
    # Same key spec, different tokenisation (another library version, a changed table): refuse
    # before any data moves, naming both digests, instead of matching to a silent zero.
    check_peer(state.conformance, hello.norm_conformance_digest, hello.norm_libraries, "requester")
    if hello.reveal != s.reveal:
        raise UnsupportedProtocol(f"reveal mode {reveal} requested, this responder runs {s.reveal!r}")
    if hello.request_size == 0:
        raise ProtocolViolation("a session must announce at least one element (Hello.request_size is 0)")
    if hello.request_size > s.max_request_size:
        raise LimitExceeded(
            f"request of {hello.request_size} elements exceeds this responder's limit of {s.max_request_size}"
        )
    if hello.wire_version != WIRE_VERSION:
        raise UnsupportedProtocol(
            f"the requester speaks wire version {hello.wire_version}, this responder {WIRE_VERSION}; "
            "upgrade matcher on the requester's side"
        )


def refuse_repeats(seen: set[int], elements: Sequence[bytes], offset: int) -> None:
    """Refuse an element equal to an earlier one of the same session (honest clients send distinct tokens).

    ``hash(bytes)`` is SipHash under the process's random key: 64 bits per element
    (about 70 bytes of memory each while the session runs), and a peer cannot craft
    a collision that would make an honest session be refused. A repeat always has the
    hash of its earlier element, so it is always refused; two distinct elements share a
    hash by chance only (about n²/2^65 for an honest session of n elements), and that
    refuses only the session of the requester that sent them.

    The common case is one C-level pass: the chunk's hashes straight into a set
    (``map(hash, ...)``, no Python loop), checked against the session's with one
    ``isdisjoint`` and merged with one ``|=``; only a chunk with a repeat is walked
    element by element, to name the first one.
    """
    fresh = set(map(hash, elements))
    if len(fresh) == len(elements) and seen.isdisjoint(fresh):
        seen |= fresh  # the common case: one set operation per chunk
        return
    for i, h in enumerate(map(hash, elements)):  # a repeat: find the first one, to name it
        if h in seen:
            raise ProtocolViolation(
                f"element {offset + i} repeats an earlier element of this session; "
                "every element must be distinct (the client sends each token once)"
            )
        seen.add(h)


class ResponderMachine:
    """One session, responder side: which message may come next, and what answers it.

    Phases: ``hello`` (nothing received) → ``chunks`` (accepted; elements, then Finish)
    → ``tail`` (after Finish, while the protocol half expects a HitReport or the
    re-blinded setup) → ``done`` (the Summary has been produced).
    """

    def __init__(self, state: ResponderContext,
                 halves: Mapping[str, type[ResponderSession]] | None = None) -> None:
        if halves is None:
            from matcher.sessions import RESPONDER_SESSIONS

            halves = RESPONDER_SESSIONS
        self.state = state
        self._halves: Mapping[str, type[ResponderSession]] = halves
        self.hello: pb.Hello | None = None
        self.session: ResponderSession | None = None
        self.phase = "hello"
        self._chunks: InOrder | None = None
        # Distinct elements only (docs/PROTOCOL.md §5.1): a 64-bit keyed hash per element.
        self._seen: set[int] | None = None

    # -- the Hello -----------------------------------------------------------------
    def on_hello(self, first: pb.MatchRequest | None,
                 started: Callable[[pb.Hello], None] | None = None) -> pb.Hello:
        """Check the first request (a Hello, then §5.2 checks 4-9); returns the Hello.

        ``started`` is called with the Hello once it is known to be one and before its
        checks, so the adapter can record the session's start even when it is refused.
        """
        if self.phase != "hello":
            raise ProtocolViolation("a session has one Hello")
        if first is None or first.WhichOneof("kind") != "hello":
            raise ProtocolViolation("a session must start with a Hello message")
        self.hello = first.hello
        if started is not None:
            started(self.hello)
        check_hello(self.state, self.hello)
        return self.hello

    def budget_cost(self) -> int:
        """What this session is charged to the peer's daily budget (known from the checked Hello)."""
        assert self.hello is not None, "on_hello first"
        return self._halves[self.hello.protocol].budget_cost(self.state, self.hello)

    def accept(self, session_id: str, peer: str) -> Iterator[pb.MatchResponse]:
        """Start the protocol half (its own parameter checks, §5.2 check 10); Accepted, then its opening."""
        assert self.hello is not None and self.phase == "hello", "on_hello first, accept once"
        session = self._halves[self.hello.protocol](self.state, self.hello)
        session.session_id, session.peer = session_id, peer
        self.session = session
        max_chunk = self.state.settings.max_chunk_elements
        self._chunks = InOrder(self.hello.request_size, max_chunk)
        self._seen = set() if session.refuse_repeats else None
        accepted = pb.Accepted(session_id=session_id, max_chunk_elements=max_chunk, reveal=self.state.settings.reveal)
        session.accepted(accepted)
        self.phase = "chunks"
        yield pb.MatchResponse(accepted=accepted)
        yield from session.opening()

    # -- the session -----------------------------------------------------------------
    @property
    def done(self) -> bool:
        """Whether the Summary has been produced (the session completed)."""
        return self.phase == "done"

    @property
    def awaiting_tail(self) -> bool:
        """Whether Finish has come and a message after it (HitReport, re-blinded setup) is awaited."""
        return self.phase == "tail"

    @property
    def received(self) -> int:
        """Elements received so far."""
        return self._chunks.done if self._chunks is not None else 0

    @property
    def hit_count(self) -> int | None:
        """Hits the responder itself knows of (None when the protocol hides them from it)."""
        return self.session.hit_count if self.session is not None else None

    def receive(self, request: pb.MatchRequest) -> Iterator[pb.MatchResponse]:
        """The answers to one request, the Summary last once the session is complete."""
        session, chunks, hello = self.session, self._chunks, self.hello
        if session is None or chunks is None or hello is None or self.phase == "done":
            raise ProtocolViolation("no message is expected now")
        if self.phase == "tail":
            yield from session.on_tail(request)
            if not session.expects_more:
                yield from self._summary()
            return
        kind = request.WhichOneof("kind")
        if kind == "blinded":
            chunk = request.blinded
            offset = chunks.done
            elements: Sequence[bytes] = chunk.elements
            chunks.check(chunk.offset, len(elements))
            if self._seen is not None:
                # One list of the chunk's bytes for the repeat check and the protocol half (each
                # pass over the message's repeated field makes every bytes object again)
                elements = list(elements)
                refuse_repeats(self._seen, elements, offset)
            yield from session.on_elements(elements, offset)
            chunks.take(offset, len(elements))
        elif kind == "finish":
            if request.finish.elements_sent != chunks.done or not chunks.complete:
                raise ProtocolViolation(f"Finish after {chunks.done} elements, but {hello.request_size} were announced")
            self.phase = "tail"
            yield from session.on_finish()
            if not session.expects_more:
                yield from self._summary()
        else:
            raise ProtocolViolation(f"unexpected {kind or 'empty'} message during a session")

    def _summary(self) -> Iterator[pb.MatchResponse]:
        assert self.session is not None
        self.phase = "done"
        yield pb.MatchResponse(
            summary=pb.Summary(elements_evaluated=self.received, hit_count=self.session.summary_hit_count())
        )

    def stream_ended(self) -> None:
        """The requester closed its stream: ProtocolViolation unless the session completed."""
        if self.phase == "done":
            return
        if self.phase == "tail" and self.session is not None:
            raise ProtocolViolation(f"{self.session.tail_name} must follow Finish in this reveal mode")
        if self.phase == "hello":
            raise ProtocolViolation("a session must start with a Hello message")
        raise ProtocolViolation("the stream ended before Finish")
