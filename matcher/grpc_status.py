"""The edge between matcher's errors and gRPC status codes.

Errors (``matcher.errors``) name their canonical status code as a string, so the
pure core never imports grpc; the server and the client map them here.
"""

from __future__ import annotations

import grpc

from matcher.errors import MatcherError


def status_code(exc: MatcherError) -> grpc.StatusCode:
    """The gRPC status code an error is reported with (INTERNAL for an unknown name)."""
    return getattr(grpc.StatusCode, exc.status, grpc.StatusCode.INTERNAL)
