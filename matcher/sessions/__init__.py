"""Sessions: the session rules, transport-free — state machines and protocol halves, messages in and out.

``responder.py`` (ResponderMachine) and ``requester.py`` (RequesterMachine) hold the
rules of docs/PROTOCOL.md §5 once per role: which message may come when, the Hello
checks, chunk order and bounds (``chunks.py``), Finish, the messages after it and the
Summary. The responder's protocol halves (``ecdh.py``, ``keyed_hash.py``,
``paillier.py``) only turn received elements into replies; the requester's are in
``clients.sessions``. No sockets, threads, clocks or files: the gRPC servicer
(matcher.server.service) and client (clients.match_client) move the messages.
May import identity and protocols; never grpc, the server, storage, config or clients.
"""

from __future__ import annotations

from matcher.sessions.base import ResponderSession
from matcher.sessions.ecdh import EcdhResponderSession
from matcher.sessions.keyed_hash import KeyedHashResponderSession
from matcher.sessions.paillier import PaillierResponderSession

#: protocol name -> responder half; the config's ``protocols`` list picks from these.
RESPONDER_SESSIONS: dict[str, type[ResponderSession]] = {
    EcdhResponderSession.protocol: EcdhResponderSession,
    KeyedHashResponderSession.protocol: KeyedHashResponderSession,
    PaillierResponderSession.protocol: PaillierResponderSession,
}

__all__ = ["RESPONDER_SESSIONS", "ResponderSession"]
