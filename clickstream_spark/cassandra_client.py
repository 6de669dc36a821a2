"""The one way to build a Python Cassandra client (stack bootstrap, tests, benchmarks): the
configured contact points, credentials and TLS, like the jobs' connector."""

from __future__ import annotations

import ssl
from typing import Any

from clickstream_spark.config import CassandraConfig


def ssl_context(cassandra: CassandraConfig) -> ssl.SSLContext | None:
    """TLS that verifies the nodes' certificates against the CA (or the system's CAs) and
    their host names; with a client certificate and key for mutual TLS."""
    if not cassandra.uses_tls:
        return None
    context = ssl.create_default_context(cafile=cassandra.ssl_ca)
    if cassandra.ssl_cert and cassandra.ssl_key:
        context.load_cert_chain(cassandra.ssl_cert, cassandra.ssl_key)
    return context


def cassandra_cluster(cassandra: CassandraConfig, **options: Any) -> Any:
    """A ``cassandra.cluster.Cluster`` of the configured nodes (``options`` go to it too);
    ``connect()`` it, and ``shutdown()`` it when done."""
    from cassandra.auth import PlainTextAuthProvider  # slow import: only when needed
    from cassandra.cluster import Cluster

    auth = None
    if cassandra.username:
        auth = PlainTextAuthProvider(cassandra.username, cassandra.password or "")
    return Cluster(
        [host.strip() for host in cassandra.hosts.split(",")],
        port=cassandra.port,
        auth_provider=auth,
        ssl_context=ssl_context(cassandra),
        **options,
    )
