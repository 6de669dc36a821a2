"""One aggregation run: choose the windows, read them from Cassandra, compute, publish, record.

Incremental runs (the default) redo exactly the windows whose ``changed_windows.changed_at``
differs from the one recorded in ``aggregated_windows`` when the window was last published.
The marks are read before the events, and the stream writes a mark only after its events, so
every event a mark stands for is in what this run reads; anything newer gets a newer mark and is
picked up by the next run. Only the stream's own timestamps are compared, never two clocks.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from elasticsearch import Elasticsearch
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from clickstream_spark.aggregate.plan import aggregate_windows
from clickstream_spark.aggregate.publish import Window, publish, shelf_of
from clickstream_spark.config import Config
from clickstream_spark.events_table import from_table_rows
from clickstream_spark.schema import EVENT_BUCKETS
from clickstream_spark.windows import WindowKind, hours_to_read

log = logging.getLogger(__name__)

CASSANDRA_FORMAT = "org.apache.spark.sql.cassandra"


@dataclass(frozen=True)
class RunReport:
    kind: WindowKind
    windows: list[dt.datetime]
    empty_windows: list[dt.datetime] = field(default_factory=list)
    rows_in: int = 0
    documents_written: int = 0
    documents_recomputed: int = 0
    top_urls: list[tuple[str, int]] = field(default_factory=list)

    def summary(self) -> str:
        if not self.windows:
            return f"{self.kind} windows: nothing changed since the last run"
        first, last = self.windows[0], self.windows[-1]
        lines = [
            f"{self.kind} windows done: {len(self.windows)} ({first:%Y-%m-%d %H:%M} .. "
            f"{last:%Y-%m-%d %H:%M} UTC)",
            f"rows in (windows + look-ahead): {self.rows_in}",
            f"documents written: {self.documents_written} "
            f"({self.documents_recomputed} recomputed, "
            f"{self.documents_written - self.documents_recomputed} kept from the previous result)",
        ]
        if self.empty_windows:
            shown = ", ".join(f"{s:%Y-%m-%d %H:%M}" for s in self.empty_windows[:5])
            more = (
                "" if len(self.empty_windows) <= 5 else f" and {len(self.empty_windows) - 5} more"
            )
            lines.append(f"windows with no data (not an error): {shown}{more}")
        if self.top_urls:
            lines.append(
                f"top {len(self.top_urls)} URLs by clicks, {last:%Y-%m-%d %H:%M} {self.kind}:"
            )
            lines += [f"  {clicks:>10}  {url}" for url, clicks in self.top_urls]
        return "\n".join(lines)


def _cassandra_table(spark: SparkSession, config: Config, table: str) -> DataFrame:
    return (
        spark.read.format(CASSANDRA_FORMAT)
        .options(keyspace=config.cassandra.keyspace, table=table)
        .load()
    )


def _changed_at_by_window(
    spark: SparkSession, config: Config, table: str, kind: WindowKind
) -> dict[dt.datetime, dt.datetime]:
    rows = (
        _cassandra_table(spark, config, table)
        .where(F.col("window") == kind)
        .select("window_start", "changed_at")
        .collect()
    )
    return {r["window_start"]: r["changed_at"] for r in rows}


def marks(spark: SparkSession, config: Config, kind: WindowKind) -> dict[dt.datetime, dt.datetime]:
    """window_start -> changed_at of every window of ``kind`` the stream has marked."""
    return _changed_at_by_window(spark, config, "changed_windows", kind)


def published(
    spark: SparkSession, config: Config, kind: WindowKind
) -> dict[dt.datetime, dt.datetime]:
    """window_start -> the changed_at each published window was computed from."""
    return _changed_at_by_window(spark, config, "aggregated_windows", kind)


def pending_windows(
    marked: dict[dt.datetime, dt.datetime], done: dict[dt.datetime, dt.datetime]
) -> list[dt.datetime]:
    """Windows marked by the stream since they were last published (or never published)."""
    return sorted(start for start, changed_at in marked.items() if done.get(start) != changed_at)


def read_events(spark: SparkSession, config: Config, hours: list[dt.datetime]) -> DataFrame:
    """Events of the given event-table hours only: every partition key is named, no scan.

    The connector turns ``hour IN (...) AND bucket IN (...)`` into direct partition reads.
    """
    rows = _cassandra_table(spark, config, "events").where(
        F.col("hour").isin(hours) & F.col("bucket").isin(list(range(EVENT_BUCKETS)))
    )
    return from_table_rows(rows)


def _record(
    spark: SparkSession,
    config: Config,
    kind: WindowKind,
    starts: list[dt.datetime],
    seen: dict[dt.datetime, dt.datetime],
    indices: dict[str, str],
    aggregated_at: dt.datetime,
) -> None:
    rows = [
        (kind, start, seen.get(start), aggregated_at, indices[shelf_of(Window(kind, start))])
        for start in starts
    ]
    frame = spark.createDataFrame(
        rows,
        "window string, window_start timestamp, changed_at timestamp, "
        "aggregated_at timestamp, index_name string",
    )
    (
        frame.write.format(CASSANDRA_FORMAT)
        .options(keyspace=config.cassandra.keyspace, table="aggregated_windows")
        .mode("append")
        .save()
    )


def run_aggregation(
    spark: SparkSession,
    es: Elasticsearch,
    config: Config,
    kind: WindowKind,
    starts: list[dt.datetime] | None = None,
) -> RunReport:
    """Aggregate ``starts`` (or, when None, every window changed since the last run)."""
    context = spark.sparkContext
    seen = marks(spark, config, kind)
    if starts is None:
        starts = pending_windows(seen, published(spark, config, kind))
        log.info("incremental %s run: %d window(s) changed since the last run", kind, len(starts))
    if not starts:
        return RunReport(kind, [])

    hours = hours_to_read(kind, starts)
    log.info("reading %d hour(s) of events for %d %s window(s)", len(hours), len(starts), kind)
    context.setJobDescription(f"aggregate {kind}: read {len(hours)} hour(s) from Cassandra")
    events = read_events(spark, config, hours).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        rows_in = events.count()
        log.info("%d events read", rows_in)
        context.setJobDescription(f"aggregate {kind}: metrics of {len(starts)} window(s)")
        metrics = aggregate_windows(
            events,
            kind,
            starts,
            rows=rows_in,
            max_rows_per_call=config.aggregate.max_rows_per_pandas_call,
        ).persist()
        try:
            with_data = {
                r["window_start"] for r in metrics.select("window_start").distinct().collect()
            }
            empty = [s for s in starts if s not in with_data]
            for start in empty:
                log.info("%s window %s has no data: it is published empty", kind, start)
            computed_at = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
            result = publish(
                spark,
                es,
                config.elasticsearch,
                metrics,
                [Window(kind, s) for s in starts],
                computed_at,
            )
            context.setJobDescription(f"aggregate {kind}: top URLs")
            top = (
                metrics.where(F.col("window_start") == F.lit(starts[-1]))
                .groupBy("url")
                .agg(F.sum("clicks").alias("clicks"))
                .orderBy(F.desc("clicks"), F.asc("url"))
                .limit(10)
                .collect()
            )
        finally:
            metrics.unpersist()
    finally:
        events.unpersist()
        context.setJobDescription(None)

    _record(spark, config, kind, starts, seen, result.indices, computed_at)
    return RunReport(
        kind=kind,
        windows=starts,
        empty_windows=empty,
        rows_in=rows_in,
        documents_written=result.documents,
        documents_recomputed=result.recomputed_documents,
        top_urls=[(r["url"], r["clicks"]) for r in top],
    )
