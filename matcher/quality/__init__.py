"""Quality: development tools that measure match quality — synthetic data and evaluation.

Not needed to run a service. May import identity; never grpc, the server or the clients.
"""
