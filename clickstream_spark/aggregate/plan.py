"""Hourly/daily metrics per (url, country) in Spark: pandas-UDF version and native equivalent.

Design (why it is fast and memory-bounded):

* Two ``groupBy(bucket).applyInPandas`` stages, each with FEW LARGE calls. A call per
  (url, country) group would pay Python's per-call overhead tens of thousands of times; a call per
  hash bucket pays it a handful of times and does a vectorised pandas groupby inside.
  1. time on page and partial counts, grouped by ``pmod(xxhash64(user_id), n)``: all of a user's
     events (window and 30-minute look-ahead) land in the same call, which orders them, takes the
     gaps, and reduces the counted events to value counts per (window, url, country): events per
     distinct time on page, plus events without one and distinct users
     (:func:`~.pandas_metrics.partial_counts`). A (window, url, country) is thus spread
     over every call that holds some of its users; its distinct users still simply add up,
     because every user is in exactly one call.
  2. a native merge sums those counts per (window, url, country, time on page), then
     summaries, grouped by ``pmod(xxhash64(window_start, url, country), n)``: every merged count of
     a (window, url, country) lands in the same call, which computes exact counts, distinct users
     and exact (numpy-linear) quantiles from cumulative counts
     (:func:`~.pandas_metrics.summarise_counts`). The merge shuffles by that bucket
     before aggregating, so stage 2 needs no shuffle of its own: two shuffles in all, as before.
* What one pandas call can receive:
  - stage 1: the events of the users of one bucket. ``n = max(4 * cores, ceil(rows /
    max_rows_per_call))`` is chosen from the input row count, so that is about
    ``max_rows_per_call`` rows however large the window
    (``spark.sql.execution.arrow.maxRecordsPerBatch`` only splits the Arrow stream; pandas still
    receives a whole group). The one unsplittable unit is ONE USER'S events in one window and its
    look-ahead: an exact time on page needs them in order in one place. Only a pathological user
    (a bot, a shared id) can exceed the bound; no URL, country or window size can.
  - stage 2: at most one row per distinct time on page of each of its groups, plus one per
    group. Timestamps have millisecond precision and a time on page is at most 1800 s, so a group
    contributes at most 1,800,002 rows whatever the traffic or window size. Every row but the
    one per group stands for at least one event, so the same ``n`` keeps these calls at or below
    stage 1's size: usually far below, as popular groups repeat their values.
* The mean sums ``value * count`` per group in ascending value order: it no longer depends on the
  order rows arrive in (the last bits of the former per-event sum did), and it rounds once per
  distinct value rather than once per event.
* Timestamps cross into pandas as epoch-microsecond longs: no time-zone conversion in Arrow, the
  window arithmetic is plain integer arithmetic, and gaps are computed exactly like natively.

Everything is DataFrame -> DataFrame; the SparkSession is taken from the input, never created.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

import pandas as pd
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import (
    DoubleType,
    LongType,
    StringType,
    StructField,
    StructType,
)

from clickstream_spark.aggregate import pandas_metrics as metrics
from clickstream_spark.schema import METRICS_SCHEMA
from clickstream_spark.windows import WINDOW_LENGTH, WindowKind, window_start

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

WINDOW_SECONDS = {kind: int(length.total_seconds()) for kind, length in WINDOW_LENGTH.items()}
# Default bound on rows handed to one pandas call: a few hundred bytes a row once the strings
# are Python objects, so ~100-200 MB per call and Python worker.
DEFAULT_MAX_ROWS_PER_CALL = 500_000

# What the pandas stages return (window_start as epoch micros; turned into a timestamp natively).
_COUNTS_SCHEMA = StructType(
    [
        StructField("window_start", LongType(), False),
        StructField("url", StringType(), False),
        StructField("country", StringType(), False),
        StructField(metrics.TIME_ON_PAGE, DoubleType(), True),
        StructField("events", LongType(), False),
        StructField("users", LongType(), False),
    ]
)
_SUMMARY_SCHEMA = StructType(
    [StructField("window_start", LongType(), False)]
    + [f for f in METRICS_SCHEMA.fields if f.name not in ("window", "window_start")]
)


# --------------------------------------------------------------------------- windows


def window_start_us(ts_us: Column, window: WindowKind) -> Column:
    """Spark column: epoch micros of the window start of epoch micros ``ts_us``.

    Integer arithmetic rather than ``date_trunc``: independent of the session time zone.
    """
    size_us = WINDOW_SECONDS[window] * 1_000_000
    return ts_us - F.pmod(ts_us, F.lit(size_us))


def _as_utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _starts_us(starts: Iterable[datetime], window: WindowKind) -> list[int]:
    """Window starts as epoch micros; each must be a window boundary."""
    out = []
    for s in starts:
        naive = _as_utc(s).replace(tzinfo=None)
        if window_start(window, naive) != naive:
            raise ValueError(f"{s!r} is not the start of a {window} window")
        out.append((_as_utc(s) - _EPOCH) // timedelta(microseconds=1))
    if not out:
        raise ValueError("no window starts given")
    return sorted(set(out))


# --------------------------------------------------------------------------- shared preparation


def _prepare(events: DataFrame, window: WindowKind, starts: Sequence[datetime]) -> DataFrame:
    """Typed, normalised rows of the requested windows and of their look-aheads only.

    ``counted`` marks the events of a requested window; the others lie in a look-ahead and only
    serve as "next events". Rows outside both are dropped: they can never be a counted event's
    next event within 1800 s, so dropping them changes nothing and spares the shuffles.
    """
    if window not in WINDOW_SECONDS:
        raise ValueError(f"window must be one of {sorted(WINDOW_SECONDS)}, got {window!r}")
    starts_us = _starts_us(starts, window)
    ts_us = F.unix_micros(F.col("timestamp"))
    # An event at t lies in the look-ahead of the window holding t - 30 min.
    in_lookahead = window_start_us(F.col("ts_us") - F.lit(metrics.MAX_GAP_US), window).isin(
        starts_us
    )
    country = F.col("country")
    return (
        events.select(
            F.col("row_key"),
            F.col("user_id"),
            ts_us.alias("ts_us"),
            F.col("url"),
            F.when(country.isNull() | (country == ""), F.lit(metrics.UNKNOWN_COUNTRY))
            .otherwise(country)
            .alias("country"),
            window_start_us(ts_us, window).alias("window_start"),
        )
        .withColumn("counted", F.col("window_start").isin(starts_us))
        .filter(F.col("counted") | in_lookahead)
    )


def _n_buckets(events: DataFrame, rows: int | None, max_rows_per_call: int) -> int:
    """Bucket count so that a pandas call gets about ``max_rows_per_call`` rows at most.

    At least 4 buckets per core: hash partitioning of very few bucket ids can leave a core
    idle; a few more buckets even the load out for a few ms of per-call overhead each.
    """
    if max_rows_per_call < 1:
        raise ValueError(f"max_rows_per_call must be positive, got {max_rows_per_call}")
    if rows is None:
        rows = events.count()
    cores = events.sparkSession.sparkContext.defaultParallelism
    return max(4 * cores, math.ceil(rows / max_rows_per_call))


def _finish(summary: DataFrame, window: WindowKind) -> DataFrame:
    """METRICS_SCHEMA column order and types (``window_start`` micros -> timestamp)."""
    return summary.select(
        F.lit(window).alias("window"),
        F.timestamp_micros(F.col("window_start")).alias("window_start"),
        *[F.col(f.name).cast(f.dataType) for f in METRICS_SCHEMA.fields[2:]],
    )


# --------------------------------------------------------------------------- pandas-UDF version


def _counts_call(pdf: pd.DataFrame) -> pd.DataFrame:
    """Stage 1 body: time on page for one user bucket, reduced to partial value counts.

    The look-ahead events only serve as next events: they are dropped before counting.
    """
    top = metrics.time_on_page(pdf, timestamp="ts_us")
    counted = pdf["counted"].to_numpy()
    events = pdf.loc[counted, ["window_start", "url", "country", "user_id"]]
    return metrics.partial_counts(events.assign(**{metrics.TIME_ON_PAGE: top.to_numpy()[counted]}))


def _summary_call(pdf: pd.DataFrame) -> pd.DataFrame:
    """Stage 2 body: metrics of every (window, url, country) in one bucket, from merged counts."""
    return metrics.summarise_counts(pdf)


def _merge_counts(counts: DataFrame, n: int) -> DataFrame:
    """Natively sum the partial counts per (window, url, country, time on page), into ``_b``.

    ``_b`` is the stage-2 bucket, ``pmod(xxhash64(window_start, url, country), n)``. Shuffling by
    it BEFORE aggregating lets the aggregation reuse that partitioning, so stage 2's
    ``groupBy("_b")`` needs no second shuffle of the counts.
    """
    bucket = F.pmod(F.xxhash64("window_start", "url", "country"), F.lit(n))
    return (
        counts.withColumn("_b", bucket)
        .repartition("_b")
        .groupBy("_b", "window_start", "url", "country", metrics.TIME_ON_PAGE)
        .agg(F.sum("events").alias("events"), F.sum("users").alias("users"))
    )


def aggregate_windows(
    events: DataFrame,
    window: WindowKind,
    starts: Sequence[datetime],
    *,
    max_rows_per_call: int = DEFAULT_MAX_ROWS_PER_CALL,
    rows: int | None = None,
) -> DataFrame:
    """METRICS_SCHEMA rows for the given hour/day windows, computed with pandas UDFs.

    ``events`` must contain every event of the windows and of their 30-minute look-aheads
    (:func:`clickstream_spark.windows.hours_to_read`); other rows are ignored. ``starts`` are
    window starts (UTC; naive = UTC). ``rows`` is the input row count if known (else one
    ``count()`` is run to size the buckets; cache the input). A pandas call receives about
    ``max_rows_per_call`` rows, more only if ONE USER'S events exceed that; a (window, url,
    country) reaches a call as events of some of its users (stage 1) or as at most one row per
    distinct time on page, plus one (stage 2), never as all its events.
    """
    prepared = _prepare(events, window, starts)
    n = _n_buckets(events, rows, max_rows_per_call)
    counts = prepared.groupBy(F.pmod(F.xxhash64("user_id"), F.lit(n)).alias("_b")).applyInPandas(
        _counts_call, _COUNTS_SCHEMA
    )
    summary = _merge_counts(counts, n).groupBy("_b").applyInPandas(_summary_call, _SUMMARY_SCHEMA)
    return _finish(summary, window)


# --------------------------------------------------------------------------- native version


def aggregate_windows_native(
    events: DataFrame, window: WindowKind, starts: Sequence[datetime]
) -> DataFrame:
    """The same metrics with native Spark only (benchmark baseline and cross-check).

    ``lead()`` over each user's events for the gap, then ``count``, ``countDistinct``, ``avg``
    and the exact ``percentile`` (linear interpolation; ``percentile_approx`` is not exact).
    """
    prepared = _prepare(events, window, starts)
    by_user = Window.partitionBy("user_id").orderBy("ts_us", "row_key")
    gap_us = F.lead("ts_us").over(by_user) - F.col("ts_us")
    top = F.when(gap_us <= metrics.MAX_GAP_US, gap_us / F.lit(1e6))
    with_top = prepared.withColumn(metrics.TIME_ON_PAGE, top).filter(F.col("counted"))
    pct = F.percentile(F.col(metrics.TIME_ON_PAGE), F.array(F.lit(0.5), F.lit(0.9)))
    summary = (
        with_top.groupBy("window_start", "url", "country")
        .agg(
            F.count(F.lit(1)).alias("clicks"),
            F.countDistinct("user_id").alias("unique_users"),
            F.avg(metrics.TIME_ON_PAGE).alias("avg_time_on_page_s"),
            pct.alias("_pct"),
            F.count(metrics.TIME_ON_PAGE).alias("_defined"),
        )
        .select(
            "window_start",
            "url",
            "country",
            "clicks",
            "unique_users",
            "avg_time_on_page_s",
            F.col("_pct")[0].alias("median_time_on_page_s"),
            F.col("_pct")[1].alias("p90_time_on_page_s"),
            (F.col("_defined") / F.col("clicks")).alias("time_on_page_coverage"),
        )
    )
    return _finish(summary, window)


__all__ = [
    "DEFAULT_MAX_ROWS_PER_CALL",
    "WINDOW_SECONDS",
    "aggregate_windows",
    "aggregate_windows_native",
    "window_start_us",
]
