"""Audit: what a privacy officer runs — the config audit (and the log verification it calls).

May import identity, protocols and storage; never grpc, the server or the clients.
"""
