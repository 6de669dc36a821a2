"""Clients of the real local servers, for integration tests (`make test` starts them)."""

from __future__ import annotations

import functools
import os
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from cassandra.cluster import Session
from confluent_kafka.admin import AdminClient
from elasticsearch import Elasticsearch

from clickstream_spark.config import LOCAL_STACK_CONFIG_FILE, Config, load_config
from clickstream_spark.cql import cassandra_cluster
from clickstream_spark.elastic import es_client
from clickstream_spark.kafka_clients import librdkafka_config
from tests.integration.pipeline import OpenPipeline, Pipeline, isolated_pipeline
from tests.integration.servers import admin_env, stack_is_secure


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def config() -> Config:
    """The local stack's config (conf/local.toml over the file); on the secured stack as its admin
    (admin.env), so that the tests' own clients can set up and read everything. The jobs run as
    their own users."""
    env = {**os.environ, **admin_env()} if stack_is_secure() else None
    return load_config(env=env, overlay=LOCAL_STACK_CONFIG_FILE)


@pytest.fixture(scope="session")
def run_id() -> str:
    """A suffix that keeps each test run's topics, tables and indices apart."""
    return uuid.uuid4().hex[:8]


@pytest.fixture(scope="session")
def kafka_admin(config: Config) -> AdminClient:
    admin = AdminClient(librdkafka_config(config.kafka))
    admin.list_topics(timeout=10)  # fails fast when the broker is down
    return admin


@pytest.fixture(scope="session")
def cassandra(config: Config) -> Iterator[Session]:
    cluster = cassandra_cluster(config.cassandra)
    session = cluster.connect()
    yield session
    cluster.shutdown()


@pytest.fixture(scope="session")
def es(config: Config) -> Iterator[Elasticsearch]:
    client = es_client(config.elasticsearch, request_timeout=30)
    yield client
    client.close()


@pytest.fixture(scope="session")
def open_pipeline(
    config: Config, cassandra: Session, kafka_admin: AdminClient, es: Elasticsearch
) -> OpenPipeline:
    """``isolated_pipeline`` on this session's servers: ``open_pipeline(name, work, **options)``."""
    return functools.partial(
        isolated_pipeline, config=config, cassandra=cassandra, kafka_admin=kafka_admin, es=es
    )


@pytest.fixture
def pipeline(
    request: pytest.FixtureRequest, tmp_path: Path, run_id: str, open_pipeline: OpenPipeline
) -> Iterator[Pipeline]:
    """A pipeline of this test alone (topic, keyspace, alias, checkpoint), dropped after it."""
    test = zlib.crc32(request.node.nodeid.encode())  # short, as Cassandra limits keyspace names
    with open_pipeline(f"t{test:08x}_{run_id}", tmp_path) as p:
        yield p
