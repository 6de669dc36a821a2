"""Idempotent bootstrap of a running stack: the Kafka topic, the Cassandra schema (every
conf/cassandra/*.cql in lexical order, the keyspace's replication from the config) and the
Elasticsearch index templates (conf/elasticsearch/<name>.template.json, their replicas from the
config). Endpoints (and, for the secured stack, the admin's credentials and CA) come from the
project's typed config; the secured stack's users and permissions follow
(stacklib.secure_bootstrap).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from clickstream_spark.cassandra_schema import cql_scripts
from clickstream_spark.config import CassandraConfig, Config, ElasticsearchConfig, KafkaConfig
from clickstream_spark.cql import cassandra_cluster
from clickstream_spark.elastic import es_client
from clickstream_spark.kafka_clients import librdkafka_config
from stacklib import StackError
from stacklib.secure import SecureFiles

ADMIN_TIMEOUT_S = 30


# --- Kafka --------------------------------------------------------------------------------------


def ensure_topic(config: KafkaConfig) -> str:
    """Create the topic if missing; a one-line account of what was found or done."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({**librdkafka_config(config), "log_level": 0})
    try:
        existing = admin.list_topics(timeout=ADMIN_TIMEOUT_S).topics.get(config.topic)
        if existing is not None and existing.error is None:
            return _describe_existing_topic(config, len(existing.partitions))
        new = NewTopic(
            config.topic,
            num_partitions=config.partitions,
            replication_factor=config.replication_factor,
        )
        future = admin.create_topics([new], request_timeout=ADMIN_TIMEOUT_S)[config.topic]
        future.result(timeout=ADMIN_TIMEOUT_S)
    except KafkaException as exc:
        raise StackError(f"kafka: cannot create topic {config.topic}: {exc.args[0]}") from None
    return f"created topic {config.topic} ({config.partitions} partitions)"


def _describe_existing_topic(config: KafkaConfig, partitions: int) -> str:
    if partitions < config.partitions:
        return (
            f"topic {config.topic} exists with {partitions} partitions, fewer than the "
            f"{config.partitions} configured: left as is (delete the topic to recreate it)"
        )
    return f"topic {config.topic} exists ({partitions} partitions)"


# --- Cassandra ----------------------------------------------------------------------------------


def apply_cql_files(config: CassandraConfig, folder: Path) -> list[str]:
    """Run every statement of every ``*.cql`` file in ``folder``, in lexical order, for the
    configured keyspace."""
    from cassandra.policies import RoundRobinPolicy

    try:
        scripts = cql_scripts(config.keyspace, folder, config.replication_factors)
    except ValueError as exc:  # a ConfigError too
        raise StackError(f"cassandra: {exc}") from None
    if not scripts:
        return [f"no *.cql file in {folder}"]
    logging.getLogger("cassandra").setLevel(logging.ERROR)
    cluster = cassandra_cluster(
        config, load_balancing_policy=RoundRobinPolicy(), connect_timeout=10
    )
    try:
        session = cluster.connect()
        lines = [_run_script(session, path, statements) for path, statements in scripts]
        return lines + _replication_differs(session, config)
    except StackError:
        raise
    except Exception as exc:  # the driver's NoHostAvailable, timeouts, ...
        raise StackError(f"cassandra: cannot apply the schema: {exc}") from None
    finally:
        cluster.shutdown()


def _run_script(session: object, path: Path, statements: list[str]) -> str:
    for number, statement in enumerate(statements, start=1):
        try:
            session.execute(statement, timeout=ADMIN_TIMEOUT_S)  # type: ignore[attr-defined]
        except Exception as exc:  # InvalidRequest, SyntaxException, timeouts
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise StackError(f"cassandra: {path.name}, statement {number}: {message}") from None
    return f"applied {path.name} ({len(statements)} statements)"


def _replication_differs(session: object, config: CassandraConfig) -> list[str]:
    """A line when the keyspace existed with another replication than the config's: left as it
    is, since changing it moves data (ALTER KEYSPACE, then a full repair)."""
    row = session.execute(  # type: ignore[attr-defined]
        "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = %s",
        (config.keyspace,),
        timeout=ADMIN_TIMEOUT_S,
    ).one()
    found = dict(row.replication) if row else {}
    strategy = found.pop("class", "").rsplit(".", 1)[-1]
    wanted = {dc: str(count) for dc, count in config.replication_factors.items()}
    if strategy == "NetworkTopologyStrategy" and found == wanted:
        return []
    return [
        f"keyspace {config.keyspace} exists with {strategy} {found}, not the configured "
        f"{config.replication}: left as is (ALTER KEYSPACE, then nodetool repair -full)"
    ]


# --- Elasticsearch ------------------------------------------------------------------------------

TEMPLATE_SUFFIX = ".template.json"


def put_index_templates(config: ElasticsearchConfig, folder: Path) -> list[str]:
    """PUT ``_index_template/<name>`` for every ``<name>.template.json`` in ``folder``."""
    files = sorted(folder.glob(f"*{TEMPLATE_SUFFIX}"))
    if not files:
        return [f"no *{TEMPLATE_SUFFIX} file in {folder}"]
    return [_put_template(config, path) for path in files]


def _put_template(config: ElasticsearchConfig, path: Path) -> str:
    from elasticsearch import ApiError, TransportError

    name = path.name.removesuffix(TEMPLATE_SUFFIX)
    try:
        body = json.loads(path.read_bytes())
    except ValueError as exc:
        raise StackError(f"{path}: not valid JSON: {exc}") from None
    settings = body.setdefault("template", {}).setdefault("settings", {})
    settings["number_of_replicas"] = config.number_of_replicas
    try:
        with es_client(config, request_timeout=ADMIN_TIMEOUT_S) as es:
            es.indices.put_index_template(name=name, **body)
    except ApiError as exc:
        raise StackError(
            f"elasticsearch: index template {name} refused ({exc.meta.status}): {exc.message}"
        ) from None
    except TransportError as exc:
        raise StackError(f"elasticsearch: cannot reach {config.url}: {exc}") from None
    return f"index template {name} ({config.number_of_replicas} replicas)"


# --- dispatch -----------------------------------------------------------------------------------


def bootstrap_server(
    name: str, config: Config, project_root: Path, secure: SecureFiles | None = None
) -> list[str]:
    """Bootstrap the server ``name`` (with ``secure``: the secured stack's, as its admin, users
    and permissions included); one line per thing found or done."""
    from stacklib import secure_bootstrap as guard

    conf = project_root / "conf"
    if name == "kafka":
        lines = [ensure_topic(config.kafka)]
        return lines + (guard.secure_kafka(config) if secure else [])
    if name == "cassandra":
        lines = guard.replace_default_superuser(config.cassandra, secure) if secure else []
        lines += apply_cql_files(config.cassandra, conf / "cassandra")
        return lines + (guard.secure_cassandra(config, secure) if secure else [])
    if name == "elasticsearch":
        lines = put_index_templates(config.elasticsearch, conf / "elasticsearch")
        return lines + (guard.secure_elasticsearch(config, secure) if secure else [])
    raise ValueError(f"unknown server {name!r}")
