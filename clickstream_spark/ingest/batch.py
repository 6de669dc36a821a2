"""One micro-batch of the stream, written to Cassandra: events, quarantine, then window marks.

Every write is an upsert keyed by the data itself (the event's row_key, the message's Kafka
coordinates, the window), so replaying a micro-batch after a crash rewrites the same rows: with
the checkpoint this gives an exactly-once effect on top of Spark's at-least-once sink.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field

from pyspark import StorageLevel
from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import functions as F

from clickstream_spark.access import explain
from clickstream_spark.config import Config
from clickstream_spark.erasure.erased_users import mark_erased
from clickstream_spark.errors import SinkError, root_cause_line
from clickstream_spark.events_table import to_table_rows
from clickstream_spark.ingest.history import QUERY_ID_PROPERTY
from clickstream_spark.ingest.parse import (
    oversized_quarantine,
    quarantine_rows,
    raw_left_out,
    valid_events,
)
from clickstream_spark.ingest.records import BatchRecords
from clickstream_spark.ingest.source import kafka_range
from clickstream_spark.tables import (
    CHANGED_WINDOWS_TABLE,
    EVENTS_TABLE,
    INGEST_HISTORY_TABLE,
    QUARANTINE_TABLE,
    append_to_table,
)
from clickstream_spark.windows import Window, touched_hours, windows_of_hours

log = logging.getLogger(__name__)

# For rows of a megabyte or more: by default the connector buffers up to 1,000 batches per task
# for grouping and keeps 16 in flight, which exhausts the heap with 1 MB messages.
_ONE_ROW_AT_A_TIME = {
    "spark.cassandra.output.batch.size.rows": "1",
    "spark.cassandra.output.batch.grouping.buffer.size": "4",
    "spark.cassandra.output.concurrent.writes": "4",
}


@dataclass(frozen=True)
class BatchSummary:
    """What one micro-batch did; logged as one line."""

    batch_id: int
    offsets: dict[int, tuple[int, int]]  # partition -> (first, last) offset read
    rows: int
    valid: int  # written to the events table
    quarantined: int
    windows: int
    seconds: float
    by_reason: dict[str, int] = field(default_factory=dict)  # reason -> quarantined messages
    erased: int = 0  # messages of erased users: not stored

    def line(self) -> str:
        offsets = " ".join(f"p{p}:{a}-{b}" for p, (a, b) in sorted(self.offsets.items()))
        return (
            f"batch {self.batch_id}: offsets [{offsets or 'none'}] rows {self.rows} "
            f"valid {self.valid} quarantined {self.quarantined} erased {self.erased} "
            f"windows {self.windows} in {self.seconds:.1f}s"
        )


@dataclass(frozen=True)
class _Counts:
    """One scan of a cached micro-batch: what it holds, per Kafka partition and in total."""

    offsets: dict[int, tuple[int, int]]  # partition -> (first, last) offset read
    oversized_spans: dict[int, tuple[int, int]]  # the same, of the messages left out of the cache
    rows: int
    valid: int  # to store: erased users' events excluded
    erased: int
    oversized: int
    windows: list[Window]
    by_reason: dict[str, int]  # reason -> bad messages, erased users' excluded


@dataclass(frozen=True)
class _MicroBatch:
    """What each step of one micro-batch needs: where it writes and how its Spark jobs are named."""

    spark: SparkSession
    config: Config
    records: BatchRecords
    batch_id: int
    ingested_at: dt.datetime  # naive UTC: the same in every row the micro-batch writes

    def step(self, what: str) -> None:
        """Name the Spark jobs that follow (Spark UI, event log)."""
        name = self.config.stream.query_name
        self.spark.sparkContext.setJobDescription(f"{name} batch {self.batch_id}: {what}")

    def quarantine_ttl(self) -> dict[str, str]:
        """The connector's write option that gives quarantine rows their TTL (README: erasure)."""
        return {"spark.cassandra.output.ttl": str(self.config.stream.quarantine_ttl_days * 86400)}

    def write(self, frame: DataFrame, table: str, options: dict[str, str] | None = None) -> None:
        """Append ``frame`` to ``table``; a failure names Cassandra, its hosts and the root cause
        (the query's own error would only say that the Python foreachBatch function raised).

        No retry: after Cassandra came back, a second write through the connector's cached
        session was seen to hang for good in the driver's schema refresh (connector 3.5.1, driver
        4.18.1). Failing at once lets the scheduler restart the job, which replays the batch.
        """
        try:
            append_to_table(frame, self.config, table, options)
        except Exception as exc:
            raise not_written(self.config, self.batch_id, table, exc) from exc

    def mark_windows(self, windows: list[Window]) -> None:
        try:
            self.records.mark_windows(windows, self.ingested_at, self.batch_id)
        except Exception as exc:
            raise not_written(self.config, self.batch_id, CHANGED_WINDOWS_TABLE, exc) from exc


def not_written(config: Config, batch_id: int, table: str, exc: BaseException) -> SinkError:
    """The error of a micro-batch that failed at ``table``: Cassandra, its hosts, the cause."""
    cassandra = config.cassandra
    return SinkError(
        f"micro-batch {batch_id} not written to Cassandra at {cassandra.endpoints} "
        f"({cassandra.keyspace}.{table}; the next start replays it): "
        f"{explain(exc, config) or root_cause_line(exc)}"
    )


def write_batch(
    parsed: DataFrame,
    batch_id: int,
    config: Config,
    records: BatchRecords,
    erased: DataFrame | None = None,
) -> BatchSummary:
    """Write one micro-batch of parsed messages: events, quarantine, then changed windows.

    Messages of the users in ``erased`` (their events, and bad messages that name them: see
    :mod:`clickstream_spark.erasure`) are counted, not stored, and mark no window.

    The events write is the batch's first action: each task parses its Kafka rows once, fills
    the cache and writes to Cassandra, so the Python parser and the connector's asynchronous
    writes overlap. One scan of the cache then counts (by reason too) and finds the changed
    windows, and the quarantine reads it too. Windows are marked last, through ``records``: an
    aggregation that sees a mark is then sure to see its events.
    """
    started = time.monotonic()
    ingested_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    micro = _MicroBatch(parsed.sparkSession, config, records, batch_id, ingested_at)
    batch = mark_erased(parsed, erased).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        micro.step("parse and write events")
        kept = batch.filter(~F.col("erased"))
        micro.write(to_table_rows(valid_events(kept)), EVENTS_TABLE)
        micro.step("count and changed windows")
        counts = _count(batch)
        bad_in_cache = counts.rows - counts.valid - counts.erased - counts.oversized
        if bad_in_cache > 0:  # a clean batch skips the job (a scan, connector sessions)
            micro.step(f"write {bad_in_cache} to quarantine")
            quarantine = quarantine_rows(kept, F.lit(ingested_at))
            micro.write(quarantine, QUARANTINE_TABLE, micro.quarantine_ttl())
        if counts.oversized:
            micro.step(f"quarantine {counts.oversized} oversized from Kafka")
            _quarantine_oversized(micro, counts.oversized_spans)
        if counts.windows:
            micro.mark_windows(counts.windows)
    finally:
        batch.unpersist()
        micro.spark.sparkContext.setJobDescription(None)

    summary = BatchSummary(
        batch_id=batch_id,
        offsets=counts.offsets,
        rows=counts.rows,
        valid=counts.valid,
        quarantined=counts.rows - counts.valid - counts.erased,
        windows=len(counts.windows),
        seconds=time.monotonic() - started,
        by_reason=counts.by_reason,
        erased=counts.erased,
    )
    _record_history(micro, summary)
    log.info("%s %s", config.stream.query_name, summary.line())
    return summary


def _count(batch: DataFrame) -> _Counts:
    """Counts, offsets, reasons and changed windows of a micro-batch, in one aggregation per
    Kafka partition and reason (``batch``: marked by :func:`mark_erased`)."""
    is_valid = F.col("reason").isNull()
    to_store = is_valid & ~F.col("erased")
    left_out = raw_left_out()
    groups = (
        batch.groupBy("partition", "reason")
        .agg(
            F.min("offset").alias("first"),
            F.max("offset").alias("last"),
            F.count(F.lit(1)).alias("rows"),
            F.count(F.when(to_store, 1)).alias("valid"),
            F.count(F.when(F.col("erased"), 1)).alias("erased"),
            F.count(F.when(left_out, 1)).alias("oversized"),
            F.min(F.when(left_out, F.col("offset"))).alias("first_oversized"),
            F.max(F.when(left_out, F.col("offset"))).alias("last_oversized"),
            touched_hours(F.when(to_store, F.col("timestamp"))).alias("hours"),
        )
        .collect()
    )
    by_reason: dict[str, int] = {}
    for group in groups:
        if group["reason"] is not None and group["rows"] > group["erased"]:
            by_reason[group["reason"]] = (
                by_reason.get(group["reason"], 0) + group["rows"] - group["erased"]
            )
    return _Counts(
        offsets=_spans(groups, "first", "last", "rows"),
        oversized_spans=_spans(groups, "first_oversized", "last_oversized", "oversized"),
        rows=sum(g["rows"] for g in groups),
        valid=sum(g["valid"] for g in groups),
        erased=sum(g["erased"] for g in groups),
        oversized=sum(g["oversized"] for g in groups),
        windows=windows_of_hours(hour for g in groups for hour in g["hours"]),
        by_reason=by_reason,
    )


def _spans(groups: list[Row], first: str, last: str, count: str) -> dict[int, tuple[int, int]]:
    """partition -> (least ``first``, greatest ``last``) over the groups that ``count`` some."""
    spans: dict[int, tuple[int, int]] = {}
    for group in groups:
        if group[count]:
            a, b = spans.get(group["partition"], (group[first], group[last]))
            spans[group["partition"]] = (min(a, group[first]), max(b, group[last]))
    return spans


def _quarantine_oversized(micro: _MicroBatch, spans: dict[int, tuple[int, int]]) -> None:
    """Quarantine the messages left out of the cache, read again from Kafka: only the span of
    each partition that holds some (they are usually few), one row at a time."""
    source = kafka_range(micro.spark, micro.config, spans)
    quarantine = oversized_quarantine(source, F.lit(micro.ingested_at))
    micro.write(quarantine, QUARANTINE_TABLE, {**_ONE_ROW_AT_A_TIME, **micro.quarantine_ttl()})


def _record_history(micro: _MicroBatch, summary: BatchSummary) -> None:
    """Last: the batch's row in the ingest history, once everything it counts is written."""
    query_id = micro.spark.sparkContext.getLocalProperty(QUERY_ID_PROPERTY)
    try:
        micro.records.record(summary, micro.ingested_at, query_id)
    except Exception as exc:
        raise not_written(micro.config, micro.batch_id, INGEST_HISTORY_TABLE, exc) from exc
