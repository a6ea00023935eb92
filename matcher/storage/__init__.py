"""Storage: what matcher keeps on disk (private files, secrets, setup cache, session log).

May import matcher.errors and matcher.protocols; nothing above it.
"""
