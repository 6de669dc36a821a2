"""Bootstrap of the secured stack, as its admin: default superusers replaced, one user per job
with exactly the permissions of stacklib.permissions. Idempotent, like the plaintext bootstrap
it follows (stacklib.bootstrap), which creates the topic, tables and template as the admin.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from clickstream_spark.config import CassandraConfig, Config
from clickstream_spark.cql import cassandra_cluster
from clickstream_spark.elastic import es_client
from clickstream_spark.kafka_clients import librdkafka_config
from stacklib import StackError, permissions
from stacklib.probes import DEFAULT_SUPERUSER
from stacklib.secure import ADMIN, AGGREGATE, ERASE, STREAM, SecureFiles

TIMEOUT_S = 30


# --- Kafka --------------------------------------------------------------------------------------


def kafka_acl_bindings(acls: list[permissions.KafkaAcl]) -> list[Any]:
    from confluent_kafka.admin import (
        AclBinding,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    return [
        AclBinding(
            ResourceType[acl.resource.upper()],
            acl.name,
            ResourcePatternType[acl.pattern.upper()],
            acl.principal,
            "*",
            AclOperation[acl.operation.upper()],
            AclPermissionType.ALLOW,
        )
        for acl in acls
    ]


def grant_kafka(config: Config, acls: list[permissions.KafkaAcl]) -> None:
    """Create ``acls`` (creating an existing ACL is a no-op), as the config's (admin) user."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({**librdkafka_config(config.kafka), "log_level": 0})
    try:
        for future in admin.create_acls(
            kafka_acl_bindings(acls), request_timeout=TIMEOUT_S
        ).values():
            future.result(timeout=TIMEOUT_S)
    except KafkaException as exc:
        raise StackError(f"kafka: cannot create ACLs: {exc.args[0]}") from None


def grant_jobs(config: Config, session: Any, topic: str, keyspace: str) -> None:
    """The jobs' Kafka ACLs on ``topic`` and CQL grants on ``keyspace`` (their users made by
    bootstrap), as bootstrap grants them on the configured ones: for a test's or a bench's own
    topic and keyspace. ``session``: a Cassandra session of the admin."""
    grant_kafka(config, permissions.kafka_acls(topic, config.kafka.group_id_prefix))
    grants = [
        *permissions.stream_grants(keyspace),
        *permissions.aggregate_grants(keyspace),
        *permissions.erase_grants(keyspace),
    ]
    for grant in grants:
        session.execute(grant, timeout=TIMEOUT_S)


def secure_kafka(config: Config) -> list[str]:
    kafka = config.kafka
    acls = permissions.kafka_acls(kafka.topic, kafka.group_id_prefix)
    grant_kafka(config, acls)
    return [f"{len(acls)} ACLs: the stream reads and the generator writes topic {kafka.topic}"]


# --- Cassandra ----------------------------------------------------------------------------------


def replace_default_superuser(cassandra: CassandraConfig, files: SecureFiles) -> list[str]:
    """Create the admin as the default superuser ``cassandra``, then drop that one (a node
    started with PasswordAuthenticator has it, with a well-known password)."""
    from cassandra import AuthenticationFailed
    from cassandra.cluster import NoHostAvailable

    logging.getLogger("cassandra").setLevel(logging.CRITICAL)
    try:
        _cassandra_session(cassandra).cluster.shutdown()
        return []  # the admin exists already
    except NoHostAvailable as exc:
        if not any(isinstance(e, AuthenticationFailed) for e in exc.errors.values()):
            raise StackError(f"cassandra: cannot connect as {cassandra.username}: {exc}") from None
    username, password = DEFAULT_SUPERUSER
    default = cassandra_cluster(
        dataclasses.replace(cassandra, username=username, password=password), connect_timeout=10
    )
    try:
        session = default.connect()
        session.execute(
            f"CREATE ROLE IF NOT EXISTS {ADMIN.cassandra} WITH SUPERUSER = true "
            f"AND LOGIN = true AND PASSWORD = '{files.password(ADMIN)}'",
            timeout=TIMEOUT_S,
        )
    finally:
        default.shutdown()
    session = _cassandra_session(cassandra)
    try:
        session.execute(f"DROP ROLE IF EXISTS {DEFAULT_SUPERUSER[0]}", timeout=TIMEOUT_S)
    finally:
        session.cluster.shutdown()
    return [f"superuser {ADMIN.cassandra} replaces the default {DEFAULT_SUPERUSER[0]}"]


def _cassandra_session(cassandra: CassandraConfig) -> Any:
    return cassandra_cluster(cassandra, connect_timeout=10).connect()


def grant_cassandra(session: Any, role: str, password: str, grants: list[str]) -> None:
    """Create (or re-password) the login role ``role`` and apply ``grants``."""
    exists = session.execute(
        "SELECT role FROM system_auth.roles WHERE role = %s", [role], timeout=TIMEOUT_S
    ).one()
    # Cassandra refuses a second password change within 5 s: create or alter, not both.
    verb, login = ("ALTER", "") if exists else ("CREATE", "LOGIN = true AND ")
    session.execute(f"{verb} ROLE {role} WITH {login}PASSWORD = '{password}'", timeout=TIMEOUT_S)
    for grant in grants:
        session.execute(grant, timeout=TIMEOUT_S)


def secure_cassandra(config: Config, files: SecureFiles) -> list[str]:
    keyspace = config.cassandra.keyspace
    jobs = (
        (STREAM, permissions.stream_grants(keyspace)),
        (AGGREGATE, permissions.aggregate_grants(keyspace)),
        (ERASE, permissions.erase_grants(keyspace)),
    )
    session = _cassandra_session(config.cassandra)
    try:
        for user, grants in jobs:
            grant_cassandra(session, str(user.cassandra), files.password(user), grants)
    except Exception as exc:  # the driver's NoHostAvailable, InvalidRequest, Unauthorized
        raise StackError(f"cassandra: cannot create the jobs' roles: {exc}") from None
    finally:
        session.cluster.shutdown()
    names = ", ".join(str(user.cassandra) for user, _ in jobs)
    return [f"roles {names} with their grants on {keyspace}"]


# --- Elasticsearch ------------------------------------------------------------------------------


def grant_elasticsearch(es: Any, user: str, password: str, role: dict) -> None:
    """Create or update the role and the native user ``user`` who has it (and only it)."""
    es.security.put_role(name=user, **role)
    es.security.put_user(username=user, password=password, roles=[user])


def secure_elasticsearch(config: Config, files: SecureFiles) -> list[str]:
    """The superuser's password, kept from the keystore's bootstrap password; the aggregation's
    role and user."""
    with es_client(config.elasticsearch, request_timeout=TIMEOUT_S) as es:
        es.security.change_password(username=ADMIN.elasticsearch, password=files.password(ADMIN))
        for user in (AGGREGATE, ERASE):  # erasure re-publishes through the aggregation's path
            grant_elasticsearch(
                es,
                str(user.elasticsearch),
                files.password(user),
                permissions.aggregate_role(config.elasticsearch.index),
            )
    return [
        f"superuser {ADMIN.elasticsearch}'s password set; users and roles "
        f"{AGGREGATE.elasticsearch}, {ERASE.elasticsearch} on {config.elasticsearch.index}*"
    ]
