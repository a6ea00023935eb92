"""Oversight: the config audit, the session log's verification and the privacy officer's report.

May import every layer below the CLI (config, storage, identity); nothing imports it but the CLI.
"""
