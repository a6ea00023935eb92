"""Storage: what the service keeps on disk — keys and secrets, the setup cache, the session log.

Every file here is written through matcher.files (0600 files, 0700 folders).

Used by both roles (the requester keeps a session log and caches setups too).
May import identity and protocols; never grpc, the server or the clients.
"""
