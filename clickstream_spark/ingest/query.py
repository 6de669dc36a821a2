"""The stream's query: Kafka → parse → ``foreachBatch(write_batch)``, named and checkpointed."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from cassandra.cluster import Session
from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from clickstream_spark.access import explain
from clickstream_spark.config import Config, StreamConfig
from clickstream_spark.cql import cql_session
from clickstream_spark.erasure.erased_users import ErasedUsers
from clickstream_spark.errors import SinkError, root_cause_line
from clickstream_spark.ingest.batch import BatchSummary, not_written, write_batch
from clickstream_spark.ingest.event_time import EventTimeLimits
from clickstream_spark.ingest.parse import parse_kafka
from clickstream_spark.ingest.records import BatchRecords
from clickstream_spark.ingest.source import kafka_source
from clickstream_spark.tables import (
    CHANGED_WINDOWS_TABLE,
    ERASED_USERS_TABLE,
    EVENTS_TABLE,
    INGEST_HISTORY_TABLE,
    QUARANTINE_TABLE,
    read_table,
)

log = logging.getLogger(__name__)

OBSERVATION_NAME = "ingest"


def observed(parsed: DataFrame, observation: str | Observation = OBSERVATION_NAME) -> DataFrame:
    """Counts of each micro-batch (rows, valid, quarantined): by name in the query's progress
    (``observedMetrics``), or in an ``Observation`` for a batch DataFrame."""
    is_valid = F.col("reason").isNull()
    return parsed.observe(
        observation,
        F.count(F.lit(1)).alias("rows"),
        F.count(F.when(is_valid, 1)).alias("valid"),
        F.count(F.when(~is_valid, 1)).alias("quarantined"),
    )


def event_time_limits(stream: StreamConfig) -> EventTimeLimits:
    """The accepted event times of the config: ``[stream] max_event_age_days`` and
    ``max_event_lead_hours`` around the moment a message is read."""
    return EventTimeLimits(
        max_age=timedelta(days=stream.max_event_age_days),
        max_lead=timedelta(hours=stream.max_event_lead_hours),
    )


def check_tables(spark: SparkSession, config: Config) -> None:
    """Fail before reading Kafka if Cassandra or a table the stream writes cannot be reached.

    Resolves each table through the connector (its schema, no data): an unreachable Cassandra
    or a missing keyspace or table then stops the job at start with one line, not after the
    first micro-batch was read and parsed. The connector keeps the session it opened here for
    the writes that follow.
    """
    keyspace = config.cassandra.keyspace
    for table in (EVENTS_TABLE, QUARANTINE_TABLE, CHANGED_WINDOWS_TABLE, INGEST_HISTORY_TABLE):
        try:
            read_table(spark, config, table)
        except Exception as exc:
            cause = root_cause_line(exc)
            refused = explain(exc, config)
            if refused:
                raise SinkError(f"cannot write to {keyspace}.{table}: {refused}") from exc
            raise SinkError(
                f"cannot write to {keyspace}.{table} in Cassandra at "
                f"{config.cassandra.endpoints} (its tables come from conf/cassandra/*.cql, "
                f"which 'make up' applies): {cause}"
            ) from exc


def cql_session_of_stream(config: Config) -> Session:
    """The stream's own CQL session (the erased users are read with it before each batch)."""
    try:
        return cql_session(config.cassandra)
    except Exception as exc:
        refused = explain(exc, config)
        if refused:
            raise SinkError(refused) from exc
        raise SinkError(
            f"Cassandra is unreachable: no node answers at {config.cassandra.endpoints}: "
            f"{root_cause_line(exc)}"
        ) from exc


def erased_users(spark: SparkSession, config: Config, session: Session) -> ErasedUsers:
    """The erased users, read once now: a table the stream cannot read stops it at start."""
    table = f"{config.cassandra.keyspace}.{ERASED_USERS_TABLE}"
    try:
        erased = ErasedUsers(spark, session, config.cassandra.keyspace)
        erased.refresh()
    except Exception as exc:
        refused = explain(exc, config)
        raise SinkError(
            f"cannot read {table} in Cassandra at {config.cassandra.endpoints} "
            f"(conf/cassandra/50-erasure.cql): {refused or root_cause_line(exc)}"
        ) from exc
    if erased.users:
        log.info(
            "%d erased users: their events are counted as erased, not stored", len(erased.users)
        )
    return erased


def batch_records(config: Config, session: Session) -> BatchRecords:
    """The statements that write each micro-batch's window marks and history row, prepared now:
    tables the stream cannot write stop it at start."""
    try:
        return BatchRecords(session, config)
    except Exception as exc:
        keyspace = config.cassandra.keyspace
        raise SinkError(
            f"cannot prepare the writes to {keyspace}.{CHANGED_WINDOWS_TABLE} and "
            f"{keyspace}.{INGEST_HISTORY_TABLE} in Cassandra at {config.cassandra.endpoints}: "
            f"{explain(exc, config) or root_cause_line(exc)}"
        ) from exc


def checkpoint_has_progress(spark: SparkSession, checkpoint: str) -> bool:
    """Whether a query already committed offsets in ``checkpoint`` (any Hadoop file system)."""
    jvm = spark.sparkContext._jvm
    offsets = jvm.org.apache.hadoop.fs.Path(f"{checkpoint.rstrip('/')}/offsets")
    fs = offsets.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    return bool(fs.exists(offsets) and len(fs.listStatus(offsets)) > 0)


def start_ingest(
    spark: SparkSession,
    config: Config,
    session: Session,
    available_now: bool,
    on_batch: Callable[[BatchSummary], None] | None = None,
) -> StreamingQuery:
    """Start the named query: Kafka -> parse -> foreachBatch(write_batch); ``on_batch`` gets
    each batch's summary. Call :func:`check_tables` first.

    ``session`` (CQL) reads the erased users before each micro-batch."""
    checkpoint = config.resolve_path(config.stream.checkpoint)
    if checkpoint_has_progress(spark, checkpoint):
        log.info("resuming from the offsets in checkpoint %s", checkpoint)
    else:
        log.info(
            "first start on an empty checkpoint %s: reading topic %s from %s offsets",
            checkpoint,
            config.kafka.topic,
            config.stream.starting_offsets,
        )
    # Messages over the size limit are quarantined straight from Kafka (write_batch), so that
    # the cached micro-batch never holds their raw copies: one cache block is read back whole.
    log.info(
        "accepting event times from %d days before to %d hours after each micro-batch's moment "
        "(others are quarantined as out_of_range:timestamp)",
        config.stream.max_event_age_days,
        config.stream.max_event_lead_hours,
    )
    limits = event_time_limits(config.stream)
    parsed = observed(parse_kafka(kafka_source(spark, config), limits, oversized_raw=False))

    erased = erased_users(spark, config, session)
    records = batch_records(config, session)

    def write(frame: DataFrame, batch_id: int) -> None:
        try:
            erased_now = erased.refresh()
        except Exception as exc:
            raise not_written(config, batch_id, ERASED_USERS_TABLE, exc) from exc
        summary = write_batch(frame, batch_id, config, records, erased_now)
        if on_batch is not None:
            on_batch(summary)

    writer = (
        parsed.writeStream.queryName(config.stream.query_name)
        .option("checkpointLocation", checkpoint)
        .foreachBatch(write)
    )
    if available_now:
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(processingTime=config.stream.trigger_interval)
    return writer.start()
