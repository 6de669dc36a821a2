"""One aggregation run: choose the windows, read them from Cassandra, compute, publish, record.

Incremental runs (the default) redo exactly the windows whose ``changed_windows.changed_at``
differs from the one recorded in ``aggregated_windows`` when the window was last published.
The marks are read before the events, and the stream writes a mark only after its events, so
every event a mark stands for is in what this run reads; anything newer gets a newer mark and is
picked up by the next run. Only the stream's own timestamps are compared, never two clocks.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from clickstream_spark.aggregate.plan import aggregate_windows
from clickstream_spark.aggregate.publish import publish, shelf_of
from clickstream_spark.config import Config
from clickstream_spark.events_table import from_table_rows
from clickstream_spark.schema import EVENT_BUCKETS
from clickstream_spark.tables import (
    AGGREGATED_WINDOWS_TABLE,
    CHANGED_WINDOWS_TABLE,
    EVENTS_TABLE,
    append_to_table,
    read_table,
)
from clickstream_spark.windows import Window, WindowKind, hours_to_read

log = logging.getLogger(__name__)

TOP_URLS = 10  # the summary lists this many URLs of the last window


@dataclass(frozen=True)
class RunSummary:
    """What one run did, for the job's printed summary."""

    kind: WindowKind
    starts: list[dt.datetime]
    empty_starts: list[dt.datetime] = field(default_factory=list)
    rows_in: int = 0
    documents_written: int = 0
    documents_recomputed: int = 0
    top_urls: list[tuple[str, int]] = field(default_factory=list)
    seconds: float = 0.0

    def record(self) -> dict[str, Any]:
        """The run as one JSON object: a line of the run-summary file."""
        first, last = (self.starts[0], self.starts[-1]) if self.starts else (None, None)
        return {
            "status": "ok",
            "window": self.kind,
            "windows": len(self.starts),
            "first_window": _iso(first),
            "last_window": _iso(last),
            "empty_windows": len(self.empty_starts),
            "rows_read": self.rows_in,
            "documents_written": self.documents_written,
            "documents_recomputed": self.documents_recomputed,
            "seconds": round(self.seconds, 3),
        }

    def text(self) -> str:
        if not self.starts:
            return f"{self.kind} windows: nothing changed since the last run"
        earliest, latest = self.starts[0], self.starts[-1]
        lines = [
            f"{self.kind} windows done: {len(self.starts)} ({earliest:%Y-%m-%d %H:%M} .. "
            f"{latest:%Y-%m-%d %H:%M} UTC)",
            f"rows in (windows + look-ahead): {self.rows_in}",
            f"documents written: {self.documents_written} "
            f"({self.documents_recomputed} recomputed, "
            f"{self.documents_written - self.documents_recomputed} kept from the previous result)",
        ]
        if self.empty_starts:
            shown = ", ".join(f"{start:%Y-%m-%d %H:%M}" for start in self.empty_starts[:5])
            more = "" if len(self.empty_starts) <= 5 else f" and {len(self.empty_starts) - 5} more"
            lines.append(f"windows with no data (not an error): {shown}{more}")
        if self.top_urls:
            lines.append(
                f"top {len(self.top_urls)} URLs by clicks, {latest:%Y-%m-%d %H:%M} {self.kind}:"
            )
            lines += [f"  {clicks:>10}  {url}" for url, clicks in self.top_urls]
        return "\n".join(lines)


def _iso(start: dt.datetime | None) -> str | None:
    return None if start is None else f"{start:%Y-%m-%dT%H:%M:%S}Z"


def append_run_record(config: Config, record: dict[str, Any]) -> None:
    """Append ``record``, stamped with the time, as one JSON line to ``[aggregate]
    run_summary_file``. A file that cannot be written is logged, not fatal: the run's result
    is published either way."""
    path = Path(config.resolve_path(config.aggregate.run_summary_file))
    now = dt.datetime.now(dt.UTC).replace(microsecond=0, tzinfo=None)
    line = json.dumps({"at": _iso(now), **record}, separators=(",", ":"))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as file:
            file.write(line + "\n")
    except OSError as exc:
        log.warning("run summary not written to %s: %s", path, exc)


def _changed_at_by_start(
    spark: SparkSession, config: Config, table: str, kind: WindowKind
) -> dict[dt.datetime, dt.datetime]:
    rows = (
        read_table(spark, config, table)
        .where(F.col("window") == kind)
        .select("window_start", "changed_at")
        .collect()
    )
    return {r["window_start"]: r["changed_at"] for r in rows}


def marks(spark: SparkSession, config: Config, kind: WindowKind) -> dict[dt.datetime, dt.datetime]:
    """window_start -> changed_at of every window of ``kind`` the stream has marked."""
    return _changed_at_by_start(spark, config, CHANGED_WINDOWS_TABLE, kind)


def published(
    spark: SparkSession, config: Config, kind: WindowKind
) -> dict[dt.datetime, dt.datetime]:
    """window_start -> the changed_at each published window was computed from."""
    return _changed_at_by_start(spark, config, AGGREGATED_WINDOWS_TABLE, kind)


def pending_windows(
    marked: dict[dt.datetime, dt.datetime], done: dict[dt.datetime, dt.datetime]
) -> list[dt.datetime]:
    """Starts of the windows marked by the stream since they were last published (or never)."""
    return sorted(start for start, changed_at in marked.items() if done.get(start) != changed_at)


def read_events(spark: SparkSession, config: Config, hours: list[dt.datetime]) -> DataFrame:
    """Events of the given event-table hours only: every partition key is named, no scan.

    The connector turns ``hour IN (...) AND bucket IN (...)`` into direct partition reads.
    """
    rows = read_table(spark, config, EVENTS_TABLE).where(
        F.col("hour").isin(hours) & F.col("bucket").isin(list(range(EVENT_BUCKETS)))
    )
    return from_table_rows(rows)


@contextmanager
def _persisted(frame: DataFrame, level: StorageLevel | None = None) -> Iterator[DataFrame]:
    """``frame`` cached for the block, released after it whatever happens."""
    frame = frame.persist() if level is None else frame.persist(level)
    try:
        yield frame
    finally:
        frame.unpersist()


def _read(
    spark: SparkSession, config: Config, kind: WindowKind, starts: list[dt.datetime]
) -> DataFrame:
    """The events of the windows and of their look-ahead (lazy)."""
    hours = hours_to_read(kind, starts)
    log.info("reading %d hour(s) of events for %d %s window(s)", len(hours), len(starts), kind)
    spark.sparkContext.setJobDescription(
        f"aggregate {kind}: read {len(hours)} hour(s) from Cassandra"
    )
    return read_events(spark, config, hours)


def _compute(
    events: DataFrame, config: Config, kind: WindowKind, starts: list[dt.datetime], rows_in: int
) -> DataFrame:
    """The metrics of the windows (lazy)."""
    events.sparkSession.sparkContext.setJobDescription(
        f"aggregate {kind}: metrics of {len(starts)} window(s)"
    )
    return aggregate_windows(
        events,
        kind,
        starts,
        rows=rows_in,
        max_rows_per_call=config.aggregate.max_rows_per_pandas_call,
    )


def _empty_starts(
    metrics: DataFrame, kind: WindowKind, starts: list[dt.datetime]
) -> list[dt.datetime]:
    """Starts of the windows without a single event: published empty, which is not an error."""
    with_data = {r["window_start"] for r in metrics.select("window_start").distinct().collect()}
    empty = [start for start in starts if start not in with_data]
    for start in empty:
        log.info("%s window %s has no data: it is published empty", kind, start)
    return empty


def _top_urls(metrics: DataFrame, kind: WindowKind, start: dt.datetime) -> list[tuple[str, int]]:
    """The most clicked URLs of the window starting at ``start``, all countries together."""
    metrics.sparkSession.sparkContext.setJobDescription(f"aggregate {kind}: top URLs")
    rows = (
        metrics.where(F.col("window_start") == F.lit(start))
        .groupBy("url")
        .agg(F.sum("clicks").alias("clicks"))
        .orderBy(F.desc("clicks"), F.asc("url"))
        .limit(TOP_URLS)
        .collect()
    )
    return [(r["url"], r["clicks"]) for r in rows]


def _record(
    spark: SparkSession,
    config: Config,
    kind: WindowKind,
    starts: list[dt.datetime],
    marked: dict[dt.datetime, dt.datetime],
    indices: dict[str, str],
    aggregated_at: dt.datetime,
) -> None:
    """Remember, per window, the mark it was computed from and the index now serving it."""
    rows = [
        (kind, start, marked.get(start), aggregated_at, indices[shelf_of(Window(kind, start))])
        for start in starts
    ]
    frame = spark.createDataFrame(
        rows,
        "window string, window_start timestamp, changed_at timestamp, "
        "aggregated_at timestamp, index_name string",
    )
    append_to_table(frame, config, AGGREGATED_WINDOWS_TABLE)


def run_aggregation(
    spark: SparkSession,
    es: Elasticsearch,
    config: Config,
    kind: WindowKind,
    starts: list[dt.datetime] | None = None,
) -> RunSummary:
    """Aggregate ``starts`` (or, when None, every window changed since the last run)."""
    started = time.monotonic()
    marked = marks(spark, config, kind)
    if starts is None:
        starts = pending_windows(marked, published(spark, config, kind))
        log.info("incremental %s run: %d window(s) changed since the last run", kind, len(starts))
    if not starts:
        return RunSummary(kind, [], seconds=time.monotonic() - started)

    read = _read(spark, config, kind, starts)
    try:
        with _persisted(read, StorageLevel.MEMORY_AND_DISK) as events:
            rows_in = events.count()
            log.info("%d events read", rows_in)
            with _persisted(_compute(events, config, kind, starts, rows_in)) as metrics:
                empty = _empty_starts(metrics, kind, starts)
                computed_at = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
                windows = [Window(kind, start) for start in starts]
                result = publish(spark, es, config.elasticsearch, metrics, windows, computed_at)
                top_urls = _top_urls(metrics, kind, starts[-1])
    finally:
        spark.sparkContext.setJobDescription(None)

    _record(spark, config, kind, starts, marked, result.indices, computed_at)
    return RunSummary(
        kind=kind,
        starts=starts,
        empty_starts=empty,
        rows_in=rows_in,
        documents_written=result.documents,
        documents_recomputed=result.recomputed_documents,
        top_urls=top_urls,
        seconds=time.monotonic() - started,
    )
