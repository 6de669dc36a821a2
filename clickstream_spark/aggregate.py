"""Hourly/daily metrics per (url, country) in Spark: pandas-UDF version and native equivalent.

Design (why it is fast and memory-bounded):

* Two ``groupBy(bucket).applyInPandas`` stages, each with FEW LARGE calls. A call per
  (url, country) group would pay Python's per-call overhead tens of thousands of times; a call per
  hash bucket pays it a handful of times and does a vectorised pandas groupby inside.
  1. time on page, grouped by ``pmod(xxhash64(user_id), n)``: all of a user's events (window and
     30-minute look-ahead) land in the same call, which orders them and takes the gaps.
  2. summaries, grouped by ``pmod(xxhash64(window_start, url, country), n)``: every event of a
     (window, url, country) lands in the same call, which computes exact counts, distinct users
     and exact (numpy-linear) quantiles.
* Rows per call are bounded by choosing ``n = max(4 * cores, ceil(rows / max_rows_per_call))``
  from the input row count, so a call gets about ``max_rows_per_call`` rows however large the window
  (``spark.sql.execution.arrow.maxRecordsPerBatch`` only splits the Arrow stream; pandas still
  receives a whole group). The one thing hashing cannot split is a single key: one user's events
  in stage 1, one (window, url, country) in stage 2 - an exact median needs all its values.
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

from clickstream_spark import metrics
from clickstream_spark.schema import METRICS_SCHEMA
from clickstream_spark.windows import WINDOW_LENGTH, WindowKind, window_start

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

WINDOW_SECONDS = {kind: int(length.total_seconds()) for kind, length in WINDOW_LENGTH.items()}
# Default bound on rows handed to one pandas call: a few hundred bytes a row once the strings
# are Python objects, so ~100-200 MB per call and Python worker.
DEFAULT_MAX_ROWS_PER_CALL = 500_000

# What the pandas stages return (window_start as epoch micros; turned into a timestamp natively).
_TOP_OUT_SCHEMA = StructType(
    [
        StructField("window_start", LongType(), False),
        StructField("url", StringType(), False),
        StructField("country", StringType(), False),
        StructField("user_id", StringType(), False),
        StructField(metrics.TIME_ON_PAGE, DoubleType(), True),
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


def _top_call(pdf: pd.DataFrame) -> pd.DataFrame:
    """Stage 1 body: time on page for one user bucket; keeps only counted events."""
    top = metrics.time_on_page(pdf, timestamp="ts_us")
    counted = pdf["counted"].to_numpy()
    out = pdf.loc[counted, ["window_start", "url", "country", "user_id"]]
    return out.assign(**{metrics.TIME_ON_PAGE: top.to_numpy()[counted]})


def _summary_call(pdf: pd.DataFrame) -> pd.DataFrame:
    """Stage 2 body: metrics of every (window, url, country) in one bucket."""
    return metrics.summarise(pdf)


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
    ``count()`` is run to size the buckets; cache the input). No pandas call receives more than
    about ``max_rows_per_call`` rows, except that one user's events or one (window, url,
    country) are never split.
    """
    prepared = _prepare(events, window, starts)
    n = _n_buckets(events, rows, max_rows_per_call)
    with_top = prepared.groupBy(F.pmod(F.xxhash64("user_id"), F.lit(n)).alias("_b")).applyInPandas(
        _top_call, _TOP_OUT_SCHEMA
    )
    summary = with_top.groupBy(
        F.pmod(F.xxhash64("window_start", "url", "country"), F.lit(n)).alias("_b")
    ).applyInPandas(_summary_call, _SUMMARY_SCHEMA)
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
