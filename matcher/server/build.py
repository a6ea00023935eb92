"""The responder's gRPC server: options, the service with lenient parsing, health, reflection.

``build_server`` wires the servicer (matcher.server.service) behind the PeerGate
interceptor (matcher.server.gate) into a thread-pool server bound with mutual TLS.
"""

from __future__ import annotations

from concurrent import futures
from typing import TYPE_CHECKING

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from matcher.errors import ConfigError
from matcher.server.gate import SERVICE_NAME, PeerGate, TlsMaterial, certificate_configuration
from matcher.server.streams import WATCHDOG_GRACE_SECONDS, lenient
from matcher.sessions.limits import message_limit
from matcher.v1 import matcher_pb2 as pb

if TYPE_CHECKING:
    from matcher.server.service import ResponderServicer


def _add_responder_service(servicer: ResponderServicer, server: grpc.Server) -> None:
    """Like the generated ``add_ResponderServicer_to_server``, with lenient request parsing."""
    handlers = {
        "GetPolicy": grpc.unary_unary_rpc_method_handler(
            servicer.GetPolicy, request_deserializer=lenient(pb.GetPolicyRequest),
            response_serializer=pb.Policy.SerializeToString,
        ),
        "Match": grpc.stream_stream_rpc_method_handler(
            servicer.Match, request_deserializer=lenient(pb.MatchRequest),
            response_serializer=pb.MatchResponse.SerializeToString,
        ),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
    server.add_registered_method_handlers(SERVICE_NAME, handlers)


def _add_reflection(server: grpc.Server, services: tuple[str, ...]) -> None:
    """Server reflection as ``grpc.reflection.v1`` (what stock tools ask for) and ``v1alpha``.

    grpcio-reflection ships only v1alpha; v1 has the same messages under another package,
    so the same servicer answers both, and the v1 file is added to the descriptor pool
    (built from v1alpha's by renaming the package) so v1 clients can also describe it.
    """
    from google.protobuf import descriptor_pb2, descriptor_pool
    from grpc_reflection.v1alpha import reflection_pb2

    pool = descriptor_pool.Default()
    try:
        pool.FindServiceByName(REFLECTION_V1)
    except KeyError:
        fdp = descriptor_pb2.FileDescriptorProto()
        reflection_pb2.DESCRIPTOR.CopyToProto(fdp)
        fdp.name, fdp.package = "grpc/reflection/v1/reflection.proto", "grpc.reflection.v1"
        for msg in fdp.message_type:
            for f in (f for f in msg.field if f.HasField("type_name")):
                f.type_name = f.type_name.replace(".grpc.reflection.v1alpha.", ".grpc.reflection.v1.")
        for svc in fdp.service:
            for m in svc.method:
                m.input_type = m.input_type.replace(".grpc.reflection.v1alpha.", ".grpc.reflection.v1.")
                m.output_type = m.output_type.replace(".grpc.reflection.v1alpha.", ".grpc.reflection.v1.")
        fdp.options.Clear()
        pool.Add(fdp)
    names = (*services, REFLECTION_V1, reflection.SERVICE_NAME)
    servicer = reflection.ReflectionServicer(names, pool=pool)
    handler = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    for service in (REFLECTION_V1, reflection.SERVICE_NAME):
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(service, {"ServerReflectionInfo": handler}),))


REFLECTION_V1 = "grpc.reflection.v1.ServerReflection"


#: Headroom above ``max_sessions`` for GetPolicy, health checks and reflection.
EXTRA_RPCS = 8


def server_options(servicer: ResponderServicer) -> list[tuple[str, int]]:
    """gRPC server options: message size, keepalive, and a hard cap on a connection's life.

    * keepalive: the server pings an idle-looking peer every 60 s and drops the
      connection when no answer comes within 20 s (a peer that vanished without a
      FIN frees its sessions); it tolerates client pings every 30 s.
    * ``max_connection_idle_ms``: a connection with no call for 10 minutes is closed.
    * ``max_connection_age_ms`` = ``session_timeout_seconds``, with the same again as
      grace: a connection is asked to go away (GOAWAY; new calls open a new one)
      after the session cap, and closed by force after twice that, which ends any
      call the session watchdog could not (the last resort behind _Inbox and _Watchdog).
    """
    limit = message_limit(servicer.max_chunk)
    cap_ms = int(servicer.session_timeout * 1000)
    return [
        ("grpc.max_receive_message_length", limit),
        ("grpc.max_send_message_length", limit),
        ("grpc.so_reuseport", 0),
        ("grpc.keepalive_time_ms", 60_000),
        ("grpc.keepalive_timeout_ms", 20_000),
        ("grpc.http2.min_recv_ping_interval_without_data_ms", 30_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.max_connection_idle_ms", 600_000),
        ("grpc.max_connection_age_ms", cap_ms),
        ("grpc.max_connection_age_grace_ms", cap_ms + int(WATCHDOG_GRACE_SECONDS * 1000)),
    ]


def build_server(
    servicer: ResponderServicer,
    listen: str,
    tls: TlsMaterial | None,
    max_workers: int | None = None,
) -> tuple[grpc.Server, int, health.HealthServicer]:
    """A gRPC server with the Responder service, health checking and reflection.

    With ``tls`` the server requires a client certificate chaining to ``tls.ca``
    (mutual TLS). Returns the server (not started), the bound port and the health
    servicer (to flip to NOT_SERVING on shutdown). A session holds one pool thread
    for its whole life, so the pool has ``max_sessions`` threads plus headroom
    (``max_workers`` overrides it).
    """
    threads = max_workers or servicer.max_sessions + EXTRA_RPCS
    if tls is not None:
        servicer.use_tls(tls)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="matcher-session"),
        options=server_options(servicer),
        maximum_concurrent_rpcs=threads,
        interceptors=[PeerGate(servicer)],
    )
    _add_responder_service(servicer, server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    _add_reflection(server, (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name))
    try:
        if tls is None:
            port = server.add_insecure_port(listen)
        else:
            # Dynamic credentials: each new handshake asks the servicer whether a reload brought
            # new certificates (or a new CA bundle); connections already open keep theirs.
            creds = grpc.dynamic_ssl_server_credentials(
                certificate_configuration(tls), servicer.certificate_fetcher(tls),
                require_client_authentication=True,
            )
            port = server.add_secure_port(listen, creds)
    except RuntimeError:  # grpc's "Failed to bind to address"
        port = 0
    if port == 0:
        raise ConfigError(
            f"cannot listen on {listen}: the port is in use (another responder or program listens there) or the "
            "address is not one of this machine's; stop the other program, or choose another address with "
            "[responder] listen or --listen"
        )
    return server, port, health_servicer
