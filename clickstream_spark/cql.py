"""The one way to build a client of the Python Cassandra driver: the configured contact points,
credentials and TLS, like the jobs' connector.

Data goes through the Spark connector; the aggregation's few single-row reads and writes (its
lease, a backfill's progress, its per-window records) go through this session instead, because
a lease needs a lightweight transaction, which the connector does not offer. The report reads
the ingest history through it too; the stack's bootstrap, the tests and the benchmarks build
their clusters with :func:`cassandra_cluster`.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cassandra import ConsistencyLevel
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, Session
from cassandra.policies import DCAwareRoundRobinPolicy

from clickstream_spark.config import CassandraConfig

REQUEST_TIMEOUT_S = 30


def ssl_context(cassandra: CassandraConfig) -> ssl.SSLContext | None:
    """TLS that verifies the nodes' certificates against the CA (or the system's CAs) and
    their host names; with a client certificate and key for mutual TLS."""
    if not cassandra.uses_tls:
        return None
    context = ssl.create_default_context(cafile=cassandra.ssl_ca)
    if cassandra.ssl_cert and cassandra.ssl_key:
        context.load_cert_chain(cassandra.ssl_cert, cassandra.ssl_key)
    return context


def cassandra_cluster(cassandra: CassandraConfig, **options: Any) -> Cluster:
    """A ``Cluster`` of the configured nodes (``options`` go to it too); ``connect()`` it, and
    ``shutdown()`` it when done."""
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


def cql_session(cassandra: CassandraConfig) -> Session:
    """A session on the configured contact points (close with ``session.cluster.shutdown()``).

    QUORUM writes and SERIAL conditions: a lease must hold across data centres.
    """
    # The driver logs each contact point it cannot reach; the job's one error line says it.
    logging.getLogger("cassandra").setLevel(logging.ERROR)
    profile = ExecutionProfile(
        load_balancing_policy=DCAwareRoundRobinPolicy(local_dc=cassandra.local_dc),
        consistency_level=ConsistencyLevel.QUORUM,
        serial_consistency_level=ConsistencyLevel.SERIAL,
        request_timeout=REQUEST_TIMEOUT_S,
    )
    cluster = cassandra_cluster(
        cassandra, execution_profiles={EXEC_PROFILE_DEFAULT: profile}, connect_timeout=10
    )
    try:
        return cluster.connect()
    except BaseException:
        cluster.shutdown()
        raise


@contextmanager
def cassandra_session(cassandra: CassandraConfig) -> Iterator[Session]:
    """A session on the configured keyspace, shut down after the block."""
    session = cql_session(cassandra)
    try:
        session.set_keyspace(cassandra.keyspace)
        yield session
    finally:
        session.cluster.shutdown()
