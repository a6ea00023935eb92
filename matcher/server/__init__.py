"""The responder's service edge: gRPC servicer, responder state, budgets, metrics.

May import identity, protocols, sessions and storage; never the clients.
"""
