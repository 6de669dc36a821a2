"""The one way to build a session of the Python Cassandra driver.

Data goes through the Spark connector; the aggregation's few single-row reads and writes (its
lease, a backfill's progress, its per-window records) go through this session instead, because
a lease needs a lightweight transaction, which the connector does not offer. The report reads
the ingest history through it too.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from cassandra import ConsistencyLevel
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, Session
from cassandra.policies import DCAwareRoundRobinPolicy

from clickstream_spark.config import CassandraConfig

REQUEST_TIMEOUT_S = 30


def cql_session(cassandra: CassandraConfig) -> Session:
    """A session on the configured contact points (close with ``session.cluster.shutdown()``).

    QUORUM writes and SERIAL conditions: a lease must hold across data centres.
    """
    # The driver logs each contact point it cannot reach; the job's one error line says it.
    logging.getLogger("cassandra").setLevel(logging.ERROR)
    auth = None
    if cassandra.username:
        auth = PlainTextAuthProvider(username=cassandra.username, password=cassandra.password or "")
    profile = ExecutionProfile(
        load_balancing_policy=DCAwareRoundRobinPolicy(local_dc=cassandra.local_dc),
        consistency_level=ConsistencyLevel.QUORUM,
        serial_consistency_level=ConsistencyLevel.SERIAL,
        request_timeout=REQUEST_TIMEOUT_S,
    )
    cluster = Cluster(
        [host.strip() for host in cassandra.hosts.split(",")],
        port=cassandra.port,
        auth_provider=auth,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        connect_timeout=10,
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
