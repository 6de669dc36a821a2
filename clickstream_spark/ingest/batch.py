"""The streaming ingest: Kafka JSON -> typed events in Cassandra, bad events in quarantine.

Each micro-batch is written by :func:`write_batch` (``foreachBatch``). Every write is an upsert
keyed by the data itself (the event's row_key, the message's Kafka coordinates, the window), so
replaying a micro-batch after a crash rewrites the same rows: with the checkpoint this gives an
exactly-once effect on top of Spark's at-least-once sink.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from dataclasses import dataclass

from pyspark import StorageLevel
from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from clickstream_spark.config import Config
from clickstream_spark.errors import SinkError, root_cause_line
from clickstream_spark.events_table import to_table_rows
from clickstream_spark.ingest.parse import (
    oversized_quarantine,
    parse_kafka,
    quarantine_rows,
    raw_left_out,
    valid_events,
)
from clickstream_spark.windows import touched_hours, windows_of_hours

log = logging.getLogger(__name__)


EVENTS_TABLE = "events"
QUARANTINE_TABLE = "quarantine"
CHANGED_WINDOWS_TABLE = "changed_windows"
OBSERVATION_NAME = "ingest"


@dataclass(frozen=True)
class BatchReport:
    """What one micro-batch did; logged as one line."""

    batch_id: int
    offsets: dict[int, tuple[int, int]]  # partition -> (first, last) offset read
    rows: int
    valid: int
    quarantined: int
    windows: int
    seconds: float

    def line(self) -> str:
        offsets = " ".join(f"p{p}:{a}-{b}" for p, (a, b) in sorted(self.offsets.items()))
        return (
            f"batch {self.batch_id}: offsets [{offsets or 'none'}] rows {self.rows} "
            f"valid {self.valid} quarantined {self.quarantined} "
            f"windows {self.windows} in {self.seconds:.1f}s"
        )


def kafka_source(spark: SparkSession, config: Config) -> DataFrame:
    """The topic as a stream of Kafka rows; losing data (e.g. retention) fails the query."""
    source = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", config.kafka.bootstrap_servers)
        .option("subscribe", config.kafka.topic)
        .option("startingOffsets", config.stream.starting_offsets)
        .option("failOnDataLoss", "true")
        .option("maxOffsetsPerTrigger", str(config.stream.max_offsets_per_trigger))
    )
    if config.stream.min_partitions > 0:
        source = source.option("minPartitions", str(config.stream.min_partitions))
    return source.load()


def kafka_range(
    spark: SparkSession, config: Config, offsets: dict[int, tuple[int, int]]
) -> DataFrame:
    """The messages of ``offsets`` (partition -> first and last offset, inclusive), as a batch."""
    topic = config.kafka.topic
    return (
        spark.read.format("kafka")
        .option("kafka.bootstrap.servers", config.kafka.bootstrap_servers)
        .option("assign", json.dumps({topic: sorted(offsets)}))
        .option(
            "startingOffsets", json.dumps({topic: {str(p): a for p, (a, _) in offsets.items()}})
        )
        .option(
            "endingOffsets", json.dumps({topic: {str(p): b + 1 for p, (_, b) in offsets.items()}})
        )
        .option("failOnDataLoss", "true")
        .load()
    )


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


# For rows of up to a megabyte or more: the connector otherwise buffers up to 1,000 batches per
# task for grouping and keeps 16 in flight (measured: a heap OutOfMemoryError with 1 MB messages).
_ONE_ROW_AT_A_TIME = {
    "spark.cassandra.output.batch.size.rows": "1",
    "spark.cassandra.output.batch.grouping.buffer.size": "4",
    "spark.cassandra.output.concurrent.writes": "4",
}


def _write_cassandra(
    frame: DataFrame,
    config: Config,
    table: str,
    batch_id: int,
    options: dict[str, str] | None = None,
) -> None:
    """Append ``frame`` to ``table``; a failure names Cassandra, its hosts and the root cause
    (the query's own error would only say that the Python foreachBatch function raised).

    No retry here: after Cassandra came back, a second write through the connector's cached
    session was seen to hang for good in the driver's schema refresh (connector 3.5.1, driver
    4.18.1). Failing at once lets the scheduler restart the job, which replays the batch.
    """
    keyspace = config.cassandra.keyspace
    try:
        (
            frame.write.format("org.apache.spark.sql.cassandra")
            .options(keyspace=keyspace, table=table, **(options or {}))
            .mode("append")
            .save()
        )
    except Exception as exc:
        cause = root_cause_line(exc)
        raise SinkError(
            f"micro-batch {batch_id} not written to Cassandra at {config.cassandra.endpoints} "
            f"({keyspace}.{table}; the next start replays it): {cause}"
        ) from exc


def write_batch(parsed: DataFrame, batch_id: int, config: Config) -> BatchReport:
    """Write one micro-batch of parsed messages: events, quarantine, then changed windows.

    The events write is the batch's first action: each task parses its Kafka rows once, fills
    the cache and writes to Cassandra, so the Python parser and the connector's asynchronous
    writes overlap (measured: faster than a separate parse-and-count pass first). One scan of
    the cache then counts and finds the changed windows, and the quarantine reads it too.
    Windows are marked last: an aggregation that sees a mark is then sure to see its events.
    """
    started = time.monotonic()
    spark = parsed.sparkSession
    context = spark.sparkContext
    name = config.stream.query_name
    ingested_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)

    batch = parsed.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        events = valid_events(batch)
        context.setJobDescription(f"{name} batch {batch_id}: parse and write events")
        _write_cassandra(to_table_rows(events), config, EVENTS_TABLE, batch_id)

        context.setJobDescription(f"{name} batch {batch_id}: count and changed windows")
        is_valid = F.col("reason").isNull()
        left_out = raw_left_out()
        per_partition = (
            batch.groupBy("partition")
            .agg(
                F.min("offset").alias("first"),
                F.max("offset").alias("last"),
                F.count(F.lit(1)).alias("rows"),
                F.count(F.when(is_valid, 1)).alias("valid"),
                F.count(F.when(left_out, 1)).alias("oversized"),
                F.min(F.when(left_out, F.col("offset"))).alias("first_oversized"),
                F.max(F.when(left_out, F.col("offset"))).alias("last_oversized"),
                touched_hours(F.when(is_valid, F.col("timestamp"))).alias("hours"),
            )
            .collect()
        )
        windows = windows_of_hours(hour for r in per_partition for hour in r["hours"])
        rows = sum(r["rows"] for r in per_partition)
        valid = sum(r["valid"] for r in per_partition)
        oversized = sum(r["oversized"] for r in per_partition)

        if rows > valid + oversized:  # a clean batch skips the job (a scan, connector sessions)
            context.setJobDescription(
                f"{name} batch {batch_id}: write {rows - valid - oversized} to quarantine"
            )
            quarantine = quarantine_rows(batch, F.lit(ingested_at))
            _write_cassandra(quarantine, config, QUARANTINE_TABLE, batch_id)
        if oversized:
            context.setJobDescription(
                f"{name} batch {batch_id}: quarantine {oversized} oversized from Kafka"
            )
            # Only the span of each partition that holds some: they are usually few.
            spans = {
                r["partition"]: (r["first_oversized"], r["last_oversized"])
                for r in per_partition
                if r["oversized"]
            }
            source = kafka_range(spark, config, spans)
            quarantine = oversized_quarantine(source, F.lit(ingested_at))
            _write_cassandra(quarantine, config, QUARANTINE_TABLE, batch_id, _ONE_ROW_AT_A_TIME)

        if windows:
            context.setJobDescription(f"{name} batch {batch_id}: mark {len(windows)} windows")
            marks = spark.createDataFrame(
                [(kind, start, ingested_at, batch_id) for kind, start in windows],
                "window string, window_start timestamp, changed_at timestamp, batch_id long",
            )
            _write_cassandra(marks, config, CHANGED_WINDOWS_TABLE, batch_id)
    finally:
        batch.unpersist()
        context.setJobDescription(None)

    report = BatchReport(
        batch_id=batch_id,
        offsets={r["partition"]: (r["first"], r["last"]) for r in per_partition},
        rows=rows,
        valid=valid,
        quarantined=rows - valid,
        windows=len(windows),
        seconds=time.monotonic() - started,
    )
    log.info("%s %s", name, report.line())
    return report


def check_tables(spark: SparkSession, config: Config) -> None:
    """Fail before reading Kafka if Cassandra or a table the stream writes cannot be reached.

    Resolves each table through the connector (its schema, no data): an unreachable Cassandra
    or a missing keyspace or table then stops the job at start with one line, not after the
    first micro-batch was read and parsed. The connector keeps the session it opened here for
    the writes that follow.
    """
    keyspace = config.cassandra.keyspace
    for table in (EVENTS_TABLE, QUARANTINE_TABLE, CHANGED_WINDOWS_TABLE):
        try:
            spark.read.format("org.apache.spark.sql.cassandra").options(
                keyspace=keyspace, table=table
            ).load()
        except Exception as exc:
            cause = root_cause_line(exc)
            raise SinkError(
                f"cannot write to {keyspace}.{table} in Cassandra at "
                f"{config.cassandra.endpoints} (its tables come from conf/cassandra/*.cql, "
                f"which 'make up' applies): {cause}"
            ) from exc


def checkpoint_has_progress(spark: SparkSession, checkpoint: str) -> bool:
    """Whether a query already committed offsets in ``checkpoint`` (any Hadoop file system)."""
    jvm = spark.sparkContext._jvm
    offsets = jvm.org.apache.hadoop.fs.Path(f"{checkpoint.rstrip('/')}/offsets")
    fs = offsets.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    return bool(fs.exists(offsets) and len(fs.listStatus(offsets)) > 0)


def start_ingest(spark: SparkSession, config: Config, available_now: bool) -> StreamingQuery:
    """Start the named query: Kafka -> parse -> foreachBatch(write_batch), once
    :func:`check_tables` found every table it writes."""
    check_tables(spark, config)
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
    parsed = observed(parse_kafka(kafka_source(spark, config), oversized_raw=False))
    writer = (
        parsed.writeStream.queryName(config.stream.query_name)
        .option("checkpointLocation", checkpoint)
        .foreachBatch(lambda frame, batch_id: write_batch(frame, batch_id, config))
    )
    if available_now:
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(processingTime=config.stream.trigger_interval)
    return writer.start()
