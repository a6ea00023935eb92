"""Responder halves of the protocols, one module each, behind one interface.

The service (matcher.server.service) owns everything common to a session: who the
peer is, the Hello checks, chunk order and bounds, logging, status codes. A
protocol module only turns received elements into replies.
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
