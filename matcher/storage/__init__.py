"""Storage: what the service keeps on disk — keys and secrets, the setup cache, the session log.

Used by both roles (the requester keeps a session log and caches setups too).
May import identity and protocols; never grpc, the server or the clients.
"""
