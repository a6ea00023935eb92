"""What a responder session needs from the responder around it, as small typed interfaces.

The session machines and protocol halves read the responder's settings, key spec,
conformance, current epoch and worker pool, and hand the tokens of their own hits to
a recorder; they never see how these are kept (files, caches, the session log). The
server's ``ResponderState`` (matcher.server.state) satisfies :class:`ResponderContext`
structurally, so this package imports nothing from the server.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from matcher.identity.conformance import NormConformance
from matcher.identity.match_keys import KeySpec
from matcher.parallel import Workers
from matcher.protocols import ecdh, keyed_hash


class ResponderSettings(Protocol):
    """The ``[responder]`` settings a session applies (see matcher.config)."""

    @property
    def protocols(self) -> Sequence[str]: ...
    @property
    def reveal(self) -> str: ...
    @property
    def max_request_size(self) -> int: ...
    @property
    def max_chunk_elements(self) -> int: ...
    @property
    def paillier_max_key_bits(self) -> int: ...
    @property
    def paillier_max_degree(self) -> int: ...


class EpochView(Protocol):
    """One key epoch: its key (``.key.key`` the scalar, ``.key.epoch`` its number) and setup."""

    @property
    def key(self) -> Any: ...
    @property
    def setup(self) -> ecdh.ResponderSetup: ...
    @property
    def setup_id(self) -> str: ...


class HitsRecorder(Protocol):
    """Where reveal = "both" puts the responder's own hits (the server writes them to its hits file)."""

    def record_hits(self, session_id: str, peer: str, tokens: Sequence[bytes]) -> int:
        """Record the own records behind ``tokens`` as hits of this session; the number of distinct records."""
        ...


class ResponderContext(HitsRecorder, Protocol):
    """Everything a responder session reads from the responder it runs in."""

    @property
    def settings(self) -> ResponderSettings: ...
    @property
    def keyspec(self) -> KeySpec: ...
    @property
    def conformance(self) -> NormConformance: ...
    @property
    def workers(self) -> Workers: ...
    @property
    def entries(self) -> list[tuple[bytes, bytes]]: ...
    @property
    def distinct_tokens(self) -> int: ...

    def current(self) -> EpochView:
        """The epoch in force (rotating it first when due)."""
        ...

    def keyed_hash_index(self) -> keyed_hash.ResponderIndex | None:
        """The keyed-hash index over the own tokens, None when keyed-hash is not enabled."""
        ...
