"""One aggregation run: choose the windows, read them from Cassandra, compute, publish, record.

Incremental runs (the default) redo exactly the windows whose ``changed_windows.changed_at``
differs from the one recorded in ``aggregated_windows`` when the window was last published.
The marks are read before the events, and the stream writes a mark only after its events, so
every event a mark stands for is in what this run reads; anything newer gets a newer mark and is
picked up by the next run. Only the stream's own timestamps are compared, never two clocks.

A run publishes step by step, one shelf at a time in time order (:func:`plan_steps`), and records
each step's windows as soon as the step is published: a run killed halfway keeps what it
published, and the next one redoes only the rest. Within a step, windows are computed at most a
week of events at a time, so memory and disk do not grow with the shelf.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cassandra.cluster import Session
from cassandra.concurrent import execute_concurrent_with_args
from elasticsearch import Elasticsearch
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from clickstream_spark.aggregate.lease import Lease
from clickstream_spark.aggregate.plan import aggregate_windows
from clickstream_spark.aggregate.progress import Backfill, Progress
from clickstream_spark.aggregate.publish import Publisher, ShelfPublication
from clickstream_spark.aggregate.shelves import Step, plan_steps
from clickstream_spark.config import Config
from clickstream_spark.events_table import from_table_rows
from clickstream_spark.schema import EVENT_BUCKETS
from clickstream_spark.tables import (
    AGGREGATED_WINDOWS_TABLE,
    CHANGED_WINDOWS_TABLE,
    EVENTS_TABLE,
    read_table,
)
from clickstream_spark.windows import WindowKind, hours_to_read, utc_now

log = logging.getLogger(__name__)

TOP_URLS = 10  # the summary lists this many URLs of the last window
# Windows computed together inside a step: those starting within a week of the first one, so
# one computation reads at most a week of events (plus look-ahead) however large the shelf.
COMPUTE_SPAN = dt.timedelta(days=7)


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
    consolidated: list[str] = field(default_factory=list)  # shelves merged into a coarse one
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
        lines = self._windows_lines()
        if self.consolidated:
            shown = ", ".join(self.consolidated[:5])
            more = "" if len(self.consolidated) <= 5 else f" and {len(self.consolidated) - 5} more"
            lines.append(f"{self.kind} shelves consolidated (older windows, copied): {shown}{more}")
        return "\n".join(lines)

    def _windows_lines(self) -> list[str]:
        if not self.starts:
            return [f"{self.kind} windows: nothing changed since the last run"]
        earliest, latest = self.starts[0], self.starts[-1]
        lines = [
            f"{self.kind} windows done: {len(self.starts)} ({earliest:%Y-%m-%d %H:%M} .. "
            f"{latest:%Y-%m-%d %H:%M} UTC)",
            f"rows in (windows, look-back and look-ahead): {self.rows_in}",
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
        return lines


@dataclass(frozen=True)
class Run:
    """What every step of one run shares."""

    spark: SparkSession
    config: Config
    cql: Session
    publisher: Publisher
    lease: Lease
    now: dt.datetime  # naive UTC, when the run started: it decides the shelves

    @property
    def keyspace(self) -> str:
        return self.config.cassandra.keyspace


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


def compute_chunks(
    starts: Sequence[dt.datetime], span: dt.timedelta = COMPUTE_SPAN
) -> list[list[dt.datetime]]:
    """Sorted ``starts`` in runs of windows that start within ``span`` of each run's first."""
    chunks: list[list[dt.datetime]] = []
    for start in starts:
        if chunks and start - chunks[-1][0] < span:
            chunks[-1].append(start)
        else:
            chunks.append([start])
    return chunks


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


@contextmanager
def _computed(
    spark: SparkSession, config: Config, kind: WindowKind, starts: list[dt.datetime]
) -> Iterator[tuple[DataFrame, int]]:
    """The metrics of the windows (cached for the block) and the number of rows read (windows,
    look-back and look-ahead)."""
    hours = hours_to_read(kind, starts)
    log.info("reading %d hour(s) of events for %d %s window(s)", len(hours), len(starts), kind)
    spark.sparkContext.setJobDescription(
        f"aggregate {kind}: read {len(hours)} hour(s) from Cassandra"
    )
    with _persisted(read_events(spark, config, hours), StorageLevel.MEMORY_AND_DISK) as events:
        rows_in = events.count()
        log.info("%d events read", rows_in)
        spark.sparkContext.setJobDescription(
            f"aggregate {kind}: metrics of {len(starts)} window(s)"
        )
        metrics = aggregate_windows(
            events,
            kind,
            starts,
            rows=rows_in,
            max_rows_per_call=config.aggregate.max_rows_per_pandas_call,
        )
        with _persisted(metrics) as cached:
            yield cached, rows_in


def _empty_starts(
    kind: WindowKind, starts: list[dt.datetime], documents: dict[dt.datetime, int]
) -> list[dt.datetime]:
    """Starts of the windows without a single event: published empty, which is not an error."""
    empty = [start for start in starts if start not in documents]
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
    run: Run,
    step: Step,
    marked: dict[dt.datetime, dt.datetime],
    index: str,
    aggregated_at: dt.datetime,
) -> None:
    """Remember, per window, the mark it was computed from and the index now serving it (the
    windows a step carried over moved to that index too)."""
    table = f"{run.keyspace}.{AGGREGATED_WINDOWS_TABLE}"
    kind = step.shelf.kind
    insert = run.cql.prepare(
        f"INSERT INTO {table} (window, window_start, changed_at, aggregated_at, index_name) "
        "VALUES (?, ?, ?, ?, ?)"
    )
    rows = [(kind, start, marked.get(start), aggregated_at, index) for start in step.starts]
    execute_concurrent_with_args(run.cql, insert, rows, raise_on_first_error=True)
    if not step.replaced:
        return
    shelf_rows = run.cql.execute(
        f"SELECT window_start FROM {table} WHERE window = %s AND window_start >= %s "
        "AND window_start < %s",
        (kind, step.shelf.start, step.shelf.end),
    )
    moved = [row.window_start for row in shelf_rows if row.window_start not in step.starts]
    update = run.cql.prepare(
        f"UPDATE {table} SET index_name = ? WHERE window = ? AND window_start = ?"
    )
    execute_concurrent_with_args(
        run.cql, update, [(index, kind, start) for start in moved], raise_on_first_error=True
    )


@dataclass
class _Totals:
    """What the steps of one run add up to, for its summary."""

    last_start: dt.datetime | None
    empty_starts: list[dt.datetime] = field(default_factory=list)
    rows_in: int = 0
    written: int = 0
    recomputed: int = 0
    top_urls: list[tuple[str, int]] = field(default_factory=list)
    consolidated: list[str] = field(default_factory=list)


def _publish_step(
    run: Run,
    step: Step,
    marked: dict[dt.datetime, dt.datetime],
    progress: Progress,
    totals: _Totals,
    backfill: Backfill | None,
) -> None:
    """Compute the step's windows a week at a time into a new index, publish it, record it."""
    kind = step.shelf.kind
    computed_at = utc_now().replace(microsecond=0)
    publication = ShelfPublication(run.spark, run.publisher, step, before_swap=run.lease.check)
    with publication:
        for chunk in compute_chunks(step.starts):
            with _computed(run.spark, run.config, kind, chunk) as (metrics, rows_in):
                documents = publication.write(metrics, computed_at)
                totals.rows_in += rows_in
                totals.empty_starts += _empty_starts(kind, chunk, documents)
                if totals.last_start in chunk:
                    totals.top_urls = _top_urls(metrics, kind, totals.last_start)
            log.info(progress.advance(len(chunk)))
    run.spark.sparkContext.setJobDescription(None)
    totals.written += publication.recomputed + publication.kept
    totals.recomputed += publication.recomputed
    if not step.starts:
        totals.consolidated.append(step.shelf.name)
    _record(run, step, marked, publication.index, computed_at)
    if backfill is not None and step.starts:
        backfill.published(step.starts[-1])
    # Logged once recorded: a run killed after this line is resumed after this step.
    log.info(
        "published %s as %s: %d window(s) recomputed, %d documents (%d carried over), "
        "replacing %d index(es)",
        step.shelf.name,
        publication.index,
        len(step.starts),
        publication.recomputed + publication.kept,
        publication.kept,
        len(step.replaced),
    )


def run_aggregation(
    run: Run, kind: WindowKind, starts: list[dt.datetime] | None = None
) -> RunSummary:
    """Aggregate ``starts`` (a backfill), or, when None, every window changed since the last run."""
    started = time.monotonic()
    marked = marks(run.spark, run.config, kind)
    backfill = None
    if starts is None:
        todo = pending_windows(marked, published(run.spark, run.config, kind))
        log.info("incremental %s run: %d window(s) changed since the last run", kind, len(todo))
        total = len(todo)
    else:
        backfill = Backfill(run.cql, run.keyspace, kind, starts[0], starts[-1])
        through = backfill.begin(run.publisher.run_id)
        todo = starts if through is None else [start for start in starts if start > through]
        total = len(starts)
    steps = plan_steps(kind, todo, run.publisher.served_indices(), run.now)
    progress = Progress(kind, total=total, done=total - len(todo))
    totals = _Totals(last_start=todo[-1] if todo else None)
    for step in steps:
        _publish_step(run, step, marked, progress, totals, backfill)
    if backfill is not None:
        backfill.finish()
    return RunSummary(
        kind=kind,
        starts=todo,
        empty_starts=totals.empty_starts,
        rows_in=totals.rows_in,
        documents_written=totals.written,
        documents_recomputed=totals.recomputed,
        top_urls=totals.top_urls,
        consolidated=totals.consolidated,
        seconds=time.monotonic() - started,
    )


def run_requests(
    spark: SparkSession,
    es: Elasticsearch,
    config: Config,
    cql: Session,
    lease: Lease,
    requests: Sequence[tuple[WindowKind, list[dt.datetime] | None]],
) -> Iterator[RunSummary]:
    """One run, holding ``lease``: clear what gone runs left, then each (kind, starts) request."""
    publisher = Publisher(es, config.elasticsearch, lease.run_id)
    publisher.check_alias_is_free()
    publisher.remove_orphans()
    run = Run(spark, config, cql, publisher, lease, utc_now())
    for kind, starts in requests:
        yield run_aggregation(run, kind, starts)
