"""Server: the responder's edge — gRPC servicer, responder state, budgets, metrics, `serve` wiring.

Thin adapters around the transport-free session halves in ``matcher.sessions``:
authorisation, streaming, deadlines and status codes live here. It may import
identity, protocols, sessions and storage; it never imports ``clients``.
"""
