"""Helpers of the secured-stack tests (``make up SECURE=1``; marker ``secure``).

Each job runs as its own user, from its env file in .state/secure/, with exactly the permissions
of stacklib.permissions, granted on the test pipeline's own topic and keyspace (the Elasticsearch
role covers every ``clickstream_index*`` alias). Users with less than a job needs are made for the
tests that show what happens then, and removed after.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from cassandra.cluster import Session
from elasticsearch import Elasticsearch
from stacklib.layout import Layout
from stacklib.secure import AGGREGATE, ERASE, GENERATE, STREAM, USERS, SecureFiles, User
from stacklib.secure_bootstrap import grant_cassandra, grant_elasticsearch, grant_jobs

from clickstream_spark.config import Config
from clickstream_spark.cql import cassandra_cluster
from tests.integration.pipeline import Pipeline
from tests.integration.servers import stack_is_secure

FILES = SecureFiles(Layout(secure=True))


def security_variables() -> set[str]:
    """What any env file sets, and other credentials a developer's shell might hold: a job's
    environment has none of them but its own user's."""
    written = {name for user in USERS for name in FILES.user_env(user)}
    return written | {"ES_API_KEY", "CLICKSTREAM_CASSANDRA_SSL"}


def require_secured_stack() -> None:
    if not stack_is_secure():
        pytest.fail("the secure tests need the secured stack: make up SECURE=1 (make down first)")


def user_env(user: User) -> dict[str, str]:
    return FILES.user_env(user)


def secret_values() -> dict[str, str]:
    """name -> every password of the secured stack (users' and the servers' key store)."""
    return {user.role: FILES.password(user) for user in USERS} | {
        "keystore": FILES.keystore_password
    }


def run_as_job_users(pipeline: Pipeline) -> None:
    """Each program of ``pipeline`` runs as its own user, and nothing else reaches it."""
    unset = security_variables()
    pipeline.env = {k: v for k, v in pipeline.env.items() if k not in unset}
    pipeline.job_env = {
        "generate": user_env(GENERATE),
        "stream": user_env(STREAM),
        "aggregate": user_env(AGGREGATE),
        "erase": user_env(ERASE),
    }


def grant_pipeline(pipeline: Pipeline, config: Config, cassandra: Session) -> None:
    """The jobs' permissions on the pipeline's own topic and keyspace."""
    grant_jobs(config, cassandra, pipeline.topic, pipeline.keyspace)


@contextmanager
def cassandra_role(cassandra: Session, name: str, grants: list[str]) -> Iterator[str]:
    """A login role ``name`` with only ``grants``; its password. Dropped after."""
    password = secrets.token_urlsafe(18)
    grant_cassandra(cassandra, name, password, grants)
    try:
        yield password
    finally:
        cassandra.execute(f"DROP ROLE IF EXISTS {name}", timeout=30)


@contextmanager
def es_user(es: Elasticsearch, name: str, role: dict) -> Iterator[str]:
    """A native user ``name`` with only ``role``; its password. Deleted after."""
    password = secrets.token_urlsafe(18)
    grant_elasticsearch(es, name, password, role)
    try:
        yield password
    finally:
        es.security.delete_user(username=name)
        es.security.delete_role(name=name)


@contextmanager
def cassandra_session_as(config: Config, username: str, password: str) -> Iterator[Any]:
    cassandra = dataclasses.replace(config.cassandra, username=username, password=password)
    cluster = cassandra_cluster(cassandra, connect_timeout=10)
    try:
        yield cluster.connect()
    finally:
        cluster.shutdown()
