"""``match_many``: one query to many responders, one session each, over the same records.

An agency in a multilateral network (Prüm, Europol, INTERPOL) asks every partner the
same question. The records are tokenised once by the caller; each responder gets its
own session (its own policy and key-spec check, its own session key) on its own
thread, so a slow, refusing or failing responder never holds up the others::

    from clients import MatchClient, match_many
    outcomes = match_many({"agency-a": client_a, "agency-c": client_c}, records, keyspec)
    for name, outcome in outcomes.items():
        if outcome.ok:
            print(name, len(outcome.result.hits))
        else:
            print(name, "failed:", outcome.status, outcome.detail)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from clients.match_client import ConnectionFailed, MatchClient, MatchFailed, Progress
from clients.sessions.base import MatchResult
from matcher.errors import MatcherError
from matcher.identity.match_keys import KeySpec
from matcher.identity.records import TokenisedRecord


@dataclass(frozen=True)
class PeerOutcome:
    """How one responder's session ended: ``result`` when ``status`` is ``"OK"``.

    ``status`` is a gRPC status name (``UNAVAILABLE`` for a responder that is down,
    ``PERMISSION_DENIED`` for a refusal, ...); ``detail`` says why, in words.
    """

    responder: str
    status: str
    detail: str | None = None
    result: MatchResult | None = None

    @property
    def ok(self) -> bool:
        return self.status == "OK"


def match_many(
    clients: Mapping[str, MatchClient],
    records: Sequence[TokenisedRecord],
    keyspec: KeySpec,
    *,
    options: Mapping[str, Mapping[str, object]] | None = None,
    progress: Callable[[str], Progress | None] | None = None,
) -> dict[str, PeerOutcome]:
    """Run one session per responder concurrently; never raises for one responder's failure.

    ``clients``: responder name -> a connected :class:`MatchClient`.
    ``options``: responder name -> keyword arguments for :meth:`MatchClient.match`
    (``protocol``, ``reveal``, protocol options); the same for all when absent.
    ``progress``: responder name -> that session's progress callback (or None).
    Returns responder name -> :class:`PeerOutcome`, in the order of ``clients``.
    """

    def one(name: str) -> PeerOutcome:
        kwargs: dict[str, Any] = dict((options or {}).get(name, {}))
        try:
            result = clients[name].match(
                records, keyspec, progress=progress(name) if progress else None, **kwargs
            )
        except ConnectionFailed as exc:  # the message names the setting to check
            return PeerOutcome(name, exc.code.name, str(exc))
        except MatchFailed as exc:
            return PeerOutcome(name, exc.code.name, exc.details)
        except MatcherError as exc:
            return PeerOutcome(name, exc.status, str(exc))
        return PeerOutcome(name, "OK", None, result)

    if not clients:
        return {}
    with ThreadPoolExecutor(max_workers=len(clients), thread_name_prefix="match-many") as pool:
        futures = {name: pool.submit(one, name) for name in clients}
        return {name: fut.result() for name, fut in futures.items()}
