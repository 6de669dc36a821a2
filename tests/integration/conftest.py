"""Clients of the real local servers, for integration tests (`make test` starts them)."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterator

import pytest
from cassandra.cluster import Cluster, Session
from confluent_kafka.admin import AdminClient
from elasticsearch import Elasticsearch

from clickstream_spark.config import Config
from tests.integration.pipeline import OpenPipeline, isolated_pipeline


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def run_id() -> str:
    """A suffix that keeps each test run's topics, tables and indices apart."""
    return uuid.uuid4().hex[:8]


@pytest.fixture(scope="session")
def kafka_admin(config: Config) -> AdminClient:
    admin = AdminClient({"bootstrap.servers": config.kafka.bootstrap_servers})
    admin.list_topics(timeout=10)  # fails fast when the broker is down
    return admin


@pytest.fixture(scope="session")
def cassandra(config: Config) -> Iterator[Session]:
    cluster = Cluster(config.cassandra.hosts.split(","), port=config.cassandra.port)
    session = cluster.connect()
    yield session
    cluster.shutdown()


@pytest.fixture(scope="session")
def es(config: Config) -> Iterator[Elasticsearch]:
    client = Elasticsearch(config.elasticsearch.url, request_timeout=30)
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
