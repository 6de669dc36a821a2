"""Spark settings derived from the typed config.

The entry points create the SparkSession with these settings; logic never creates one.
"""

from __future__ import annotations

from pathlib import Path

from clickstream_spark.config import Config
from clickstream_spark.connector_security import security_conf
from clickstream_spark.ingest.parse import ARROW_BATCH_ROWS


def connector_conf(config: Config) -> dict[str, str]:
    """Endpoints (and, from the environment only, credentials and TLS) of Cassandra and
    Elasticsearch."""
    cassandra = config.cassandra
    es = config.elasticsearch
    conf = {
        "spark.cassandra.connection.host": cassandra.hosts,
        "spark.cassandra.connection.port": str(cassandra.port),
        "spark.cassandra.connection.localDC": cassandra.local_dc,
        "es.nodes": es.nodes,
        "es.port": str(es.port),
        "es.nodes.wan.only": str(es.wan_only).lower(),
        "es.batch.size.entries": str(es.batch_size_entries),
    }
    return {**conf, **security_conf(config)}


def event_log_conf(config: Config) -> dict[str, str]:
    """Event logs for the History Server; a local folder is created, other URIs are used as is."""
    target = config.resolve_path(config.spark.event_log_dir)
    if "://" not in target:
        Path(target).mkdir(parents=True, exist_ok=True)
        target = Path(target).as_uri()
    return {"spark.eventLog.enabled": "true", "spark.eventLog.dir": target}


def session_conf(config: Config) -> dict[str, str]:
    """Everything a job's SparkSession needs beyond conf/spark-defaults.conf."""
    return {**connector_conf(config), **event_log_conf(config)}


def stream_conf(config: Config) -> dict[str, str]:
    """The stream job's session: :func:`session_conf` and Arrow batches bounded for the parser."""
    return {
        **session_conf(config),
        "spark.sql.execution.arrow.maxRecordsPerBatch": str(ARROW_BATCH_ROWS),
    }
