"""Synthetic data and match-quality evaluation (development tools; never on real identity data)."""
