"""Spark settings that authenticate the Cassandra and Elasticsearch connectors and secure their
connections: credentials, TLS, and the JVM truststores those connectors need, made from PEM.

Both connectors read their CA only from a JVM key store, so the job writes one (JKS, see
:mod:`clickstream_spark.keystores`) from the PEM file the user gives, in a private folder of the
driver that is removed when the job ends. Executors on other hosts need the store at the same
path: on such a cluster give a truststore of one's own that every host has
(``CASSANDRA_SSL_TRUSTSTORE``, ``ES_SSL_TRUSTSTORE``). Kafka needs no file: its CA travels in
the source's options (:mod:`clickstream_spark.kafka_clients`).

Cassandra host names are verified by a JVM system property set in conf/spark/spark-defaults.conf
(the connector 3.5.1 switches its driver's hostname validation off otherwise).
"""

from __future__ import annotations

import atexit
import functools
import secrets
import shutil
import tempfile
from pathlib import Path

from clickstream_spark.config import CassandraConfig, Config, ConfigError, ElasticsearchConfig
from clickstream_spark.keystores import KeystoreError, write_keystore, write_truststore


@functools.cache
def _store_folder() -> Path:
    """A folder only this user can read, removed when the process exits."""
    folder = Path(tempfile.mkdtemp(prefix="clickstream-keystores-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


@functools.cache
def _store_password() -> str:
    """The password of the stores made here (they hold public certificates, or a client key
    whose PEM file is as readable as the store)."""
    return secrets.token_urlsafe(18)


def _made_truststore(name: str, ca_pem: str, variable: str) -> str:
    try:
        path = write_truststore(_store_folder() / f"{name}.jks", ca_pem, _store_password())
    except KeystoreError as exc:
        raise ConfigError(f"{variable}: {exc}") from None
    return str(path)


def _store_type(path: str) -> str:
    return "PKCS12" if path.lower().endswith((".p12", ".pfx")) else "JKS"


def cassandra_conf(cassandra: CassandraConfig) -> dict[str, str]:
    """The Spark Cassandra connector's credentials and TLS settings."""
    conf: dict[str, str] = {}
    if cassandra.username:
        conf["spark.cassandra.auth.username"] = cassandra.username
        conf["spark.cassandra.auth.password"] = cassandra.password or ""
    if not cassandra.uses_tls:
        return conf
    prefix = "spark.cassandra.connection.ssl."
    conf[f"{prefix}enabled"] = "true"
    if cassandra.ssl_truststore:
        conf[f"{prefix}trustStore.path"] = cassandra.ssl_truststore
        conf[f"{prefix}trustStore.type"] = _store_type(cassandra.ssl_truststore)
        if cassandra.ssl_truststore_password:
            conf[f"{prefix}trustStore.password"] = cassandra.ssl_truststore_password
    elif cassandra.ssl_ca:
        conf[f"{prefix}trustStore.path"] = _made_truststore(
            "cassandra-truststore", cassandra.ssl_ca, "CASSANDRA_SSL_CA"
        )
        conf[f"{prefix}trustStore.password"] = _store_password()
    if cassandra.ssl_cert and cassandra.ssl_key:
        try:
            keystore = write_keystore(
                _store_folder() / "cassandra-keystore.jks",
                cassandra.ssl_cert,
                cassandra.ssl_key,
                _store_password(),
            )
        except KeystoreError as exc:
            raise ConfigError(f"CASSANDRA_SSL_CERT/CASSANDRA_SSL_KEY: {exc}") from None
        conf[f"{prefix}clientAuth.enabled"] = "true"
        conf[f"{prefix}keyStore.path"] = str(keystore)
        conf[f"{prefix}keyStore.password"] = _store_password()
    return conf


def elasticsearch_conf(es: ElasticsearchConfig) -> dict[str, str]:
    """ES-Hadoop's credentials (user and password, or an API key) and TLS settings."""
    conf: dict[str, str] = {}
    if es.username:
        conf["es.net.http.auth.user"] = es.username
        conf["es.net.http.auth.pass"] = es.password or ""
    if es.api_key:
        conf["es.net.http.header.Authorization"] = f"ApiKey {es.api_key}"
    if not es.uses_tls:
        return conf
    conf["es.net.ssl"] = "true"
    if es.ssl_truststore:
        conf["es.net.ssl.truststore.location"] = Path(es.ssl_truststore).resolve().as_uri()
        conf["es.net.ssl.keystore.type"] = _store_type(es.ssl_truststore)  # also the truststore's
        if es.ssl_truststore_password:
            conf["es.net.ssl.truststore.pass"] = es.ssl_truststore_password
    elif es.ssl_ca:
        made = _made_truststore("elasticsearch-truststore", es.ssl_ca, "ES_SSL_CA")
        conf["es.net.ssl.truststore.location"] = Path(made).as_uri()
        conf["es.net.ssl.truststore.pass"] = _store_password()
    return conf


def security_conf(config: Config) -> dict[str, str]:
    """Credentials and TLS of both connectors (Kafka's are options of its source)."""
    return {**cassandra_conf(config.cassandra), **elasticsearch_conf(config.elasticsearch)}
