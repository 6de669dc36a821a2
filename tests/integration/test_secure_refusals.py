"""The secured stack refuses plaintext and anonymous clients, each of its three servers.

Python clients only: each refusal takes a second or a few, no Spark job.
"""

from __future__ import annotations

import dataclasses
import logging

import pytest
from cassandra import AuthenticationFailed
from cassandra.cluster import NoHostAvailable
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from elastic_transport import ConnectionError as EsConnectionError
from elasticsearch import AuthenticationException, Elasticsearch

from clickstream_spark.config import Config
from clickstream_spark.cql import cassandra_cluster
from tests.integration.secure import FILES, require_secured_stack

pytestmark = pytest.mark.secure

TIMEOUT_S = 8


@pytest.fixture(scope="module", autouse=True)
def _secured() -> None:
    require_secured_stack()
    logging.getLogger("cassandra").setLevel(logging.CRITICAL)  # the refusals are expected


@pytest.mark.parametrize(
    ("client", "protocol"),
    [("plaintext", "plaintext"), ("anonymous over TLS", "ssl")],
)
def test_kafka_refuses(config: Config, client: str, protocol: str) -> None:
    admin = AdminClient(
        {
            "bootstrap.servers": config.kafka.bootstrap_servers,
            "security.protocol": protocol,
            "ssl.ca.location": str(FILES.ca),
            "log_level": 0,
        }
    )
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=TIMEOUT_S)


def test_cassandra_refuses_plaintext(config: Config) -> None:
    plaintext = dataclasses.replace(config.cassandra, ssl=False, ssl_ca=None)
    cluster = cassandra_cluster(plaintext, connect_timeout=TIMEOUT_S)
    try:
        with pytest.raises(NoHostAvailable):
            cluster.connect()
    finally:
        cluster.shutdown()


def test_cassandra_refuses_anonymous(config: Config) -> None:
    anonymous = dataclasses.replace(config.cassandra, username=None, password=None)
    cluster = cassandra_cluster(anonymous, connect_timeout=TIMEOUT_S)
    try:
        with pytest.raises(NoHostAvailable) as refused:
            cluster.connect()
        assert any(isinstance(e, AuthenticationFailed) for e in refused.value.errors.values())
    finally:
        cluster.shutdown()


def test_elasticsearch_refuses_plaintext(config: Config) -> None:
    host = config.elasticsearch.url.split("://", 1)[1]
    plaintext = Elasticsearch(f"http://{host}", request_timeout=TIMEOUT_S, max_retries=0)
    with plaintext as es, pytest.raises(EsConnectionError):
        es.info()


def test_elasticsearch_refuses_anonymous(config: Config) -> None:
    anonymous = Elasticsearch(
        config.elasticsearch.url, ca_certs=str(FILES.ca), request_timeout=TIMEOUT_S
    )
    with anonymous as es, pytest.raises(AuthenticationException):
        es.info()
