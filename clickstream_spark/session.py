"""Spark settings derived from the typed config, and the checks around a job's start.

The entry points create the SparkSession with these settings; logic never creates one. Before,
:func:`check_master` refuses an unreachable master at once (Spark itself retries for a minute);
after, :func:`wait_for_executors` bounds the wait for a first executor.
"""

from __future__ import annotations

import logging
import socket
import time
from pathlib import Path

from pyspark import SparkConf, SparkContext
from pyspark.sql import SparkSession

from clickstream_spark.config import Config
from clickstream_spark.connector_security import security_conf
from clickstream_spark.errors import StartError
from clickstream_spark.ingest.parse import ARROW_BATCH_ROWS

log = logging.getLogger(__name__)

# A stream runs for months. Its event log rolls over into files of at most this size (the History
# Server compacts the older ones: scripts/history-server.sh), and its checkpoint keeps the offsets
# and commits of the last 100 micro-batches (Spark's default, written down: about 1 KB each).
STREAM_EVENT_LOG_FILE_SIZE = "64m"
STREAM_BATCHES_TO_RETAIN = 100
MASTER_CONNECT_TIMEOUT_S = 10


def connector_conf(config: Config) -> dict[str, str]:
    """Endpoints (and, from the environment only, credentials and TLS) of Cassandra and
    Elasticsearch."""
    cassandra = config.cassandra
    es = config.elasticsearch
    conf = {
        "spark.cassandra.connection.host": cassandra.hosts,
        "spark.cassandra.connection.port": str(cassandra.port),
        "spark.cassandra.connection.localDC": cassandra.local_dc,
        "spark.cassandra.output.consistency.level": cassandra.write_consistency,
        "spark.cassandra.input.consistency.level": cassandra.read_consistency,
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
    """The stream job's session: :func:`session_conf`, Arrow batches bounded for the parser, and
    what keeps a job running for months on bounded disk (rolled event log, short checkpoint)."""
    return {
        **session_conf(config),
        "spark.sql.execution.arrow.maxRecordsPerBatch": str(ARROW_BATCH_ROWS),
        "spark.eventLog.compress": "true",  # zstd, which the History Server reads
        "spark.eventLog.rolling.enabled": "true",
        "spark.eventLog.rolling.maxFileSize": STREAM_EVENT_LOG_FILE_SIZE,
        "spark.sql.streaming.minBatchesToRetain": str(STREAM_BATCHES_TO_RETAIN),
    }


def check_master() -> None:
    """Refuse at once a ``spark://`` master that accepts no connection (``--master`` of
    spark-submit, read from the JVM before any SparkContext exists); other masters pass."""
    SparkContext._ensure_initialized()  # the JVM spark-submit started, with its --master
    master = SparkConf().get("spark.master", "")
    if not master.startswith("spark://"):
        return
    failures = []
    for address in master.removeprefix("spark://").split(","):
        host, _, port = address.rpartition(":")
        try:
            socket.create_connection((host, int(port)), MASTER_CONNECT_TIMEOUT_S).close()
            return
        except (OSError, ValueError) as exc:
            failures.append(f"{address}: {getattr(exc, 'strerror', None) or exc}")
    raise StartError(
        f"cannot reach the Spark master {master} ({'; '.join(failures)}): check --master "
        "and that the master is running"
    )


def wait_for_executors(spark: SparkSession, timeout_s: float, poll_s: float = 0.5) -> None:
    """Wait until the cluster granted the application a first executor, or fail after
    ``timeout_s`` with what to check. Local masters run tasks in the driver: nothing to wait for;
    nor with dynamic allocation starting from no executor."""
    sc = spark.sparkContext
    conf = sc.getConf()
    dynamic = conf.get("spark.dynamicAllocation.enabled", "false") == "true"
    if sc.master.startswith("local") or (
        dynamic and int(conf.get("spark.dynamicAllocation.initialExecutors", "0") or 0) == 0
    ):
        return
    jsc = sc._jsc.sc()
    deadline = time.monotonic() + timeout_s
    while len(jsc.statusTracker().getExecutorInfos()) < 2:  # the driver is listed too
        if jsc.isStopped():
            raise StartError(
                f"the Spark application was stopped while it started on {sc.master} (the "
                "master's reason is in the log above)"
            )
        if time.monotonic() >= deadline:
            cores = conf.get("spark.executor.cores", "all free")
            memory = conf.get("spark.executor.memory", "1g")
            raise StartError(
                f"no executor granted by {sc.master} within {timeout_s:g} s: check that "
                f"workers are registered and have free cores and memory for an executor "
                f"(spark.executor.cores {cores}, spark.executor.memory {memory}); the "
                "master's web UI lists them"
            )
        time.sleep(poll_s)
    log.info("executors granted by %s", sc.master)
