"""matcher: privacy-preserving suspect matching between agencies (PSI over gRPC)."""

__version__ = "0.1.0"
