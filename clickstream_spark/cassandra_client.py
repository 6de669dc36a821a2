"""The one way to build a Python Cassandra session, for reads outside Spark (the report)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import Cluster, Session
from cassandra.policies import DCAwareRoundRobinPolicy

from clickstream_spark.config import CassandraConfig


@contextmanager
def cassandra_session(cassandra: CassandraConfig) -> Iterator[Session]:
    """A session on the configured keyspace, with the configured credentials; closed after."""
    auth = None
    if cassandra.username:
        auth = PlainTextAuthProvider(cassandra.username, cassandra.password or "")
    cluster = Cluster(
        [host.strip() for host in cassandra.hosts.split(",")],
        port=cassandra.port,
        auth_provider=auth,
        load_balancing_policy=DCAwareRoundRobinPolicy(local_dc=cassandra.local_dc),
        protocol_version=5,
        connect_timeout=10,
    )
    try:
        yield cluster.connect(cassandra.keyspace)
    finally:
        cluster.shutdown()
