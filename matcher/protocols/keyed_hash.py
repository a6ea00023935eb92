"""Protocol ``keyed-hash`` (DESIGN §3): HMAC-SHA-256 of each token under a shared secret.

Both agencies hold a secret exchanged out of band. The requester sends
``tag(x) = HMAC-SHA-256(secret, "matcher/v1/keyed-hash" ‖ 0 ‖ x)`` for each of its
tokens; the responder, which has computed the tag of each of its own tokens,
answers per element with the case reference(s) of a hit or nothing.

What it protects, honestly: an outsider without the secret learns nothing from
the tags. The two agencies are not protected from each other: the responder sees
which of its own records hit (whatever the reveal mode), and either agency,
holding the secret, can compute the tag of any guessed person and test it against
the other's tags offline. That is why the config must opt in explicitly and
``audit-config`` reports it.

Case references are returned in the clear (inside mutual TLS), not sealed: a seal
keyed from the token would add nothing, since whoever can present a token's tag
holds the secret and the token and could derive the sealing key as well.

Pure computation: no I/O, no gRPC (the secret is loaded by matcher.storage.secrets_store).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from matcher.errors import InvalidElement

TAG_BYTES = 32
MIN_SECRET_BYTES = 32
_DOMAIN = b"matcher/v1/keyed-hash\x00"


def tag(secret: bytes, token: bytes) -> bytes:
    """HMAC-SHA-256 of one token under the shared secret (domain-separated)."""
    return hmac.new(secret, _DOMAIN + token, hashlib.sha256).digest()


def tags(secret: bytes, tokens: Iterable[bytes]) -> list[bytes]:
    """The tag of each token, in order (what the requester sends)."""
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"the keyed-hash secret must have at least {MIN_SECRET_BYTES} bytes")
    return [tag(secret, t) for t in tokens]


@dataclass(repr=False)
class ResponderIndex:
    """The responder's own tags: tag -> merged case references, and tag -> token (for its hits file)."""

    def __repr__(self) -> str:  # tags, tokens and case references stay out of logs and tracebacks
        return f"ResponderIndex(<{len(self.refs)} entries>)"

    refs: dict[bytes, bytes]
    tokens: dict[bytes, bytes]

    def __len__(self) -> int:
        return len(self.refs)


def responder_index(secret: bytes, entries: Sequence[tuple[bytes, bytes]]) -> ResponderIndex:
    """Index ``entries`` = (token, case reference); a token's distinct references are joined by ``;``."""
    by_token: dict[bytes, set[bytes]] = {}
    for token, ref in entries:
        by_token.setdefault(token, set()).add(ref)
    order = list(by_token)
    all_tags = tags(secret, order)
    return ResponderIndex(
        refs={t: b";".join(sorted(by_token[tok])) for t, tok in zip(all_tags, order, strict=True)},
        tokens=dict(zip(all_tags, order, strict=True)),
    )


def lookup(index: ResponderIndex, received: Sequence[bytes], offset: int = 0) -> list[bytes | None]:
    """For each received tag (checked to be 32 bytes): the case reference(s) of a hit, else None."""
    out: list[bytes | None] = []
    for i, t in enumerate(received):
        if len(t) != TAG_BYTES:
            raise InvalidElement(f"element {offset + i} is not a {TAG_BYTES}-byte keyed-hash tag")
        out.append(index.refs.get(bytes(t)))
    return out
