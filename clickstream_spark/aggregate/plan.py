"""Hourly/daily metrics per (url, country) in Spark: pandas-UDF version and native equivalent.

Two ``groupBy(bucket).applyInPandas`` stages of FEW LARGE calls (one per hash bucket, vectorised
inside), so Python's per-call overhead is paid a handful of times, not once per group:

1. by ``pmod(xxhash64(user_id), n)``: each user's events (window and look-ahead) are in one
   call, which takes the gaps and reduces the counted events to value counts per group
   (:func:`~.pandas_metrics.partial_counts`). Every user is in exactly one call, so a group's
   distinct users add up over the calls holding it.
2. a native merge sums the counts per (group, time on page), shuffled by
   ``pmod(xxhash64(window_start, url, country), n)``, and one call per such bucket computes the
   exact metrics (:func:`~.pandas_metrics.summarise_counts`). Two shuffles in all.

``n = max(4 * cores, ceil(rows / max_rows_per_call))`` bounds a stage-1 call to about
``max_rows_per_call`` rows however large the window; only ONE USER'S events of a window and its
look-ahead cannot be split (a bot, a shared id). A stage-2 call is no larger: one row per
distinct time on page of a group (ms precision up to 1800 s: at most 1,800,002 rows), each
standing for at least one event.

Timestamps cross into pandas as epoch-microsecond longs: no time-zone conversion in Arrow, and
window and gap arithmetic is integer arithmetic, as natively. DataFrame -> DataFrame throughout.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import Window as SparkWindow
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType

from clickstream_spark.aggregate import pandas_metrics as metrics
from clickstream_spark.schema import EPOCH, METRICS_SCHEMA
from clickstream_spark.windows import WINDOW_LENGTH, WindowKind, window_start

WINDOW_SECONDS = {kind: int(length.total_seconds()) for kind, length in WINDOW_LENGTH.items()}
# Default bound on rows handed to one pandas call: a few hundred bytes a row once the strings
# are Python objects, so ~100-200 MB per call and Python worker.
DEFAULT_MAX_ROWS_PER_CALL = 500_000
UNKNOWN_COUNTRY = "unknown"

# Temporary columns: the hash bucket of each stage's pandas calls.
USER_BUCKET = "user_bucket"
GROUP_BUCKET = "group_bucket"

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
    + [METRICS_SCHEMA[name] for name in metrics.SUMMARY_COLUMNS[1:]]
)


# --------------------------------------------------------------------------- windows and keys


def country_or_unknown(country: Column) -> Column:
    """The country rule: a null or empty country counts as ``"unknown"`` (one group)."""
    return F.when(country.isNull() | (country == ""), F.lit(UNKNOWN_COUNTRY)).otherwise(country)


def window_start_us(ts_us: Column, kind: WindowKind) -> Column:
    """Spark column: epoch micros of the window start of epoch micros ``ts_us``.

    Integer arithmetic rather than ``date_trunc``: independent of the session time zone.
    """
    size_us = WINDOW_SECONDS[kind] * 1_000_000
    return ts_us - F.pmod(ts_us, F.lit(size_us))


def _as_utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _starts_us(starts: Iterable[datetime], kind: WindowKind) -> list[int]:
    """Window starts as epoch micros; each must be a window boundary."""
    out = []
    for start in starts:
        utc = _as_utc(start)
        if window_start(kind, utc.replace(tzinfo=None)) != utc.replace(tzinfo=None):
            raise ValueError(f"{start!r} is not the start of a {kind} window")
        out.append((utc - EPOCH) // timedelta(microseconds=1))
    if not out:
        raise ValueError("no window starts given")
    return sorted(set(out))


# --------------------------------------------------------------------------- shared preparation


def _prepare(events: DataFrame, kind: WindowKind, starts: Sequence[datetime]) -> DataFrame:
    """Typed rows, country rule applied, of the requested windows and their look-aheads only.

    ``counted`` marks the events of a requested window; the others lie in a look-ahead and only
    serve as "next events". Rows outside both can be no counted event's next event within
    ``MAX_GAP_S``: dropping them changes nothing and spares the shuffles.
    """
    if kind not in WINDOW_SECONDS:
        raise ValueError(f"window must be one of {sorted(WINDOW_SECONDS)}, got {kind!r}")
    starts_us = _starts_us(starts, kind)
    ts_us = F.unix_micros(F.col("timestamp"))
    # An event at t lies in the look-ahead of the window holding t - MAX_GAP_S.
    lookahead_start = window_start_us(F.col("ts_us") - F.lit(metrics.MAX_GAP_US), kind)
    return (
        events.select(
            F.col("row_key"),
            F.col("user_id"),
            ts_us.alias("ts_us"),
            F.col("url"),
            country_or_unknown(F.col("country")).alias("country"),
            window_start_us(ts_us, kind).alias("window_start"),
        )
        .withColumn("counted", F.col("window_start").isin(starts_us))
        .filter(F.col("counted") | lookahead_start.isin(starts_us))
    )


def _n_buckets(events: DataFrame, rows: int | None, max_rows_per_call: int) -> int:
    """Bucket count so that a pandas call gets about ``max_rows_per_call`` rows at most.

    At least 4 buckets per core: hash partitioning of very few bucket ids can leave a core idle.
    """
    if max_rows_per_call < 1:
        raise ValueError(f"max_rows_per_call must be positive, got {max_rows_per_call}")
    if rows is None:
        rows = events.count()
    cores = events.sparkSession.sparkContext.defaultParallelism
    return max(4 * cores, math.ceil(rows / max_rows_per_call))


def _finish(summary: DataFrame, kind: WindowKind) -> DataFrame:
    """METRICS_SCHEMA column order and types (``window_start`` micros -> timestamp)."""
    return summary.select(
        F.lit(kind).alias("window"),
        F.timestamp_micros(F.col("window_start")).alias("window_start"),
        *[F.col(f.name).cast(f.dataType) for f in METRICS_SCHEMA.fields[2:]],
    )


# --------------------------------------------------------------------------- pandas-UDF version


def _counts_call(pdf: pd.DataFrame) -> pd.DataFrame:
    """Stage 1 body: time on page for one user bucket, reduced to partial value counts.

    The look-ahead events only serve as next events: they are dropped before counting.
    """
    on_page = metrics.time_on_page(pdf, timestamp="ts_us")
    counted = pdf["counted"].to_numpy()
    events = pdf.loc[counted, ["window_start", "url", "country", "user_id"]]
    return metrics.partial_counts(
        events.assign(**{metrics.TIME_ON_PAGE: on_page.to_numpy()[counted]})
    )


def _summary_call(pdf: pd.DataFrame) -> pd.DataFrame:
    """Stage 2 body: metrics of every group in one bucket, from merged counts."""
    return metrics.summarise_counts(pdf)


def _merge_counts(counts: DataFrame, n: int) -> DataFrame:
    """Natively sum the partial counts per (group, time on page), with the stage-2 bucket.

    Shuffling by the bucket BEFORE aggregating lets the aggregation reuse that partitioning, so
    stage 2's ``groupBy(GROUP_BUCKET)`` needs no second shuffle of the counts.
    """
    bucket = F.pmod(F.xxhash64(*metrics.GROUP_COLUMNS), F.lit(n))
    return (
        counts.withColumn(GROUP_BUCKET, bucket)
        .repartition(GROUP_BUCKET)
        .groupBy(GROUP_BUCKET, *metrics.GROUP_COLUMNS, metrics.TIME_ON_PAGE)
        .agg(F.sum("events").alias("events"), F.sum("users").alias("users"))
    )


def aggregate_windows(
    events: DataFrame,
    kind: WindowKind,
    starts: Sequence[datetime],
    *,
    max_rows_per_call: int = DEFAULT_MAX_ROWS_PER_CALL,
    rows: int | None = None,
) -> DataFrame:
    """METRICS_SCHEMA rows for the given hour/day windows, computed with pandas UDFs.

    ``events`` must contain every event of the windows and of their look-aheads
    (:func:`clickstream_spark.windows.hours_to_read`); other rows are ignored. ``starts`` are
    window starts (UTC; naive = UTC). ``rows`` is the input row count if known (else one
    ``count()`` sizes the buckets; cache the input). A pandas call receives about
    ``max_rows_per_call`` rows, more only if ONE USER'S events exceed that.
    """
    prepared = _prepare(events, kind, starts)
    n = _n_buckets(events, rows, max_rows_per_call)
    user_bucket = F.pmod(F.xxhash64("user_id"), F.lit(n)).alias(USER_BUCKET)
    counts = prepared.groupBy(user_bucket).applyInPandas(_counts_call, _COUNTS_SCHEMA)
    summary = (
        _merge_counts(counts, n).groupBy(GROUP_BUCKET).applyInPandas(_summary_call, _SUMMARY_SCHEMA)
    )
    return _finish(summary, kind)


# --------------------------------------------------------------------------- native version


def aggregate_windows_native(
    events: DataFrame, kind: WindowKind, starts: Sequence[datetime]
) -> DataFrame:
    """The same metrics with native Spark only (benchmark baseline and cross-check).

    ``lead()`` over each user's events for the gap, then ``count``, ``countDistinct``, ``avg``
    and the exact ``percentile`` (linear interpolation; ``percentile_approx`` is not exact).
    """
    prepared = _prepare(events, kind, starts)
    by_user = SparkWindow.partitionBy("user_id").orderBy("ts_us", "row_key")
    gap_us = F.lead("ts_us").over(by_user) - F.col("ts_us")
    on_page = F.when(gap_us <= metrics.MAX_GAP_US, gap_us / F.lit(1e6))
    counted = prepared.withColumn(metrics.TIME_ON_PAGE, on_page).filter(F.col("counted"))
    median_and_p90 = F.percentile(F.col(metrics.TIME_ON_PAGE), F.array(F.lit(0.5), F.lit(0.9)))
    summary = (
        counted.groupBy(*metrics.GROUP_COLUMNS)
        .agg(
            F.count(F.lit(1)).alias("clicks"),
            F.countDistinct("user_id").alias("unique_users"),
            F.avg(metrics.TIME_ON_PAGE).alias("avg_time_on_page_s"),
            median_and_p90.alias("median_and_p90"),
            F.count(metrics.TIME_ON_PAGE).alias("with_time_on_page"),
        )
        .select(
            *metrics.GROUP_COLUMNS,
            "clicks",
            "unique_users",
            "avg_time_on_page_s",
            F.col("median_and_p90")[0].alias("median_time_on_page_s"),
            F.col("median_and_p90")[1].alias("p90_time_on_page_s"),
            (F.col("with_time_on_page") / F.col("clicks")).alias("time_on_page_coverage"),
        )
    )
    return _finish(summary, kind)


__all__ = [
    "DEFAULT_MAX_ROWS_PER_CALL",
    "UNKNOWN_COUNTRY",
    "WINDOW_SECONDS",
    "aggregate_windows",
    "aggregate_windows_native",
    "country_or_unknown",
    "window_start_us",
]
