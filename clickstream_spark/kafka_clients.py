"""Kafka client properties from the config: Java names for the jobs (Spark's Kafka source), and
librdkafka names for the Python tools (generator, stack bootstrap, tests).

Both get the same security from the same variables (``KAFKA_SECURITY_PROTOCOL``,
``KAFKA_SASL_*``, ``KAFKA_SSL_CA_LOCATION``); ``[kafka.options]`` and
``[kafka.librdkafka_options]`` add anything else, and win.
"""

from __future__ import annotations

from pathlib import Path

from clickstream_spark.config import ConfigError, KafkaConfig

# The JAAS login module of each SASL mechanism that takes a user name and a password.
_LOGIN_MODULES = {
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
    "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule",
}


def java_properties(kafka: KafkaConfig) -> dict[str, str]:
    """Properties of the Java Kafka client (without Spark's ``kafka.`` prefix).

    The CA goes in as PEM text (``ssl.truststore.certificates``, Kafka 2.7+) rather than as a
    path, so that executors on other hosts need no copy of the file.
    """
    props = {
        "bootstrap.servers": kafka.bootstrap_servers,
        "security.protocol": kafka.security_protocol,
    }
    if kafka.uses_sasl and kafka.sasl_mechanism:
        props["sasl.mechanism"] = kafka.sasl_mechanism
        module = _LOGIN_MODULES.get(kafka.sasl_mechanism)
        if module and kafka.sasl_username and kafka.sasl_password:
            props["sasl.jaas.config"] = (
                f"{module} required username={_jaas_quoted(kafka.sasl_username)} "
                f"password={_jaas_quoted(kafka.sasl_password)};"
            )
    if kafka.uses_tls and kafka.ssl_ca_location:
        props["ssl.truststore.type"] = "PEM"
        props["ssl.truststore.certificates"] = _read_pem(kafka.ssl_ca_location)
    return {**props, **kafka.options}


def spark_source_options(kafka: KafkaConfig) -> dict[str, str]:
    """Options of Spark's Kafka source: the client's properties with the ``kafka.`` prefix, and
    the consumer group prefix that ACLs can grant."""
    options = {f"kafka.{name}": value for name, value in java_properties(kafka).items()}
    return {**options, "groupIdPrefix": kafka.group_id_prefix}


def librdkafka_config(kafka: KafkaConfig) -> dict[str, str]:
    """Configuration of a confluent-kafka (librdkafka) client: producer, consumer or admin."""
    props = {
        "bootstrap.servers": kafka.bootstrap_servers,
        "security.protocol": kafka.security_protocol.lower(),
    }
    if kafka.uses_sasl and kafka.sasl_mechanism:
        props["sasl.mechanism"] = kafka.sasl_mechanism
        if kafka.sasl_username and kafka.sasl_password:
            props["sasl.username"] = kafka.sasl_username
            props["sasl.password"] = kafka.sasl_password
    if kafka.uses_tls and kafka.ssl_ca_location:
        props["ssl.ca.location"] = kafka.ssl_ca_location
    return {**props, **kafka.librdkafka_options}


def _jaas_quoted(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _read_pem(path: str) -> str:
    try:
        text = Path(path).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"KAFKA_SSL_CA_LOCATION: cannot read {path}: {exc}") from None
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise ConfigError(f"KAFKA_SSL_CA_LOCATION: {path} holds no PEM certificate")
    return text
