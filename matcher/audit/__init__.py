"""Audit: what a privacy officer runs — the config audit (and the log verification it calls), the HTML report.

May import identity, protocols and storage; never grpc, the server or the clients.
"""
