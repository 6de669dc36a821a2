"""Hourly/daily metrics per (url, country) in Spark: pandas-UDF version and native equivalent.

What needs each user's events in time order is computed natively, in both versions
(:func:`visit_marks`): ``lag``/``lead`` over a window partitioned by user and ordered by (timestamp,
row_key) give each event its time on page and whether it is an entrance. Spark sorts and buffers
each user's events with spilling to disk, so one user with millions of events in a window (a bot,
a shared id) costs disk, never one pandas call's memory: no unit of work is one user's events.

The pandas-UDF version then

1. marks each user's first event in each group (``row_number`` over (user, group): the same
   partitioning, one more sort), so that distinct users add up as counts;
2. counts natively, per (group, time on page), the events, users, entrances and bounces,
   shuffled by ``pmod(xxhash64(window_start, url, country), n)``;
3. computes the exact metrics of each such bucket in ONE ``applyInPandas`` call
   (:func:`~.pandas_metrics.summarise_counts`): per-call overhead is paid a few dozen times, not
   once per group.

``n = max(4 * cores, ceil(rows / max_rows_per_call))`` bounds a call to about
``max_rows_per_call`` rows however large the window, save for one group's rows: one per distinct
time on page (ms precision up to 1800 s: at most 1,800,002 rows), each standing for at least one
event.

Timestamps are handled as epoch-microsecond longs: no time-zone conversion, and window and gap
arithmetic is integer arithmetic. DataFrame -> DataFrame throughout.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import Window as SparkWindow
from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StructField, StructType

from clickstream_spark.aggregate import pandas_metrics as metrics
from clickstream_spark.schema import EPOCH, METRICS_SCHEMA
from clickstream_spark.windows import MAX_GAP_S, WINDOW_LENGTH, WindowKind, window_start

WINDOW_SECONDS = {kind: int(length.total_seconds()) for kind, length in WINDOW_LENGTH.items()}
MAX_GAP_US = MAX_GAP_S * 1_000_000
# Default bound on rows handed to one pandas call: a few hundred bytes a row once the strings
# are Python objects, so ~100-200 MB per call and Python worker.
DEFAULT_MAX_ROWS_PER_CALL = 500_000
UNKNOWN_COUNTRY = "unknown"

# Temporary columns: whether an event begins a visit, whether it is its user's first in its
# group, and the hash bucket of the pandas calls.
ENTRANCE = "entrance"
FIRST_IN_GROUP = "first_in_group"
GROUP_BUCKET = "group_bucket"

# What the pandas calls return (window_start as epoch micros; turned into a timestamp natively).
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
    """Typed rows, country rule applied, of the requested windows, their look-backs and
    look-aheads only.

    ``counted`` marks the events of a requested window; the others lie in a look-back or a
    look-ahead and only serve as previous or next events. Rows outside all three can be no
    counted event's neighbour within ``MAX_GAP_S``: dropping them changes nothing and spares the
    shuffles.
    """
    if kind not in WINDOW_SECONDS:
        raise ValueError(f"window must be one of {sorted(WINDOW_SECONDS)}, got {kind!r}")
    starts_us = _starts_us(starts, kind)
    ts_us = F.unix_micros(F.col("timestamp"))
    # An event at t lies in the look-ahead of the window holding t - MAX_GAP_S and in the
    # look-back of the window holding t + MAX_GAP_S.
    lookahead_of = window_start_us(F.col("ts_us") - F.lit(MAX_GAP_US), kind)
    lookback_of = window_start_us(F.col("ts_us") + F.lit(MAX_GAP_US), kind)
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
        .filter(F.col("counted") | lookahead_of.isin(starts_us) | lookback_of.isin(starts_us))
    )


def visit_marks(prepared: DataFrame) -> DataFrame:
    """The counted events of ``prepared`` with their time on page and whether each is an entrance.

    Each user's events are ordered by (``ts_us``, ``row_key``); ``time_on_page_s`` is the gap to
    the next one when at most ``MAX_GAP_S`` (a double of seconds, null when undefined: the event
    is an exit), ``entrance`` is true when there is no previous event or the gap from it is over
    ``MAX_GAP_S``. Previous and next events may be look-back and look-ahead rows, which are then
    dropped. An exit that is an entrance is a bounce.
    """
    by_user = SparkWindow.partitionBy("user_id").orderBy("ts_us", "row_key")
    ts_us = F.col("ts_us")
    to_next = F.lead(ts_us).over(by_user) - ts_us
    from_previous = ts_us - F.lag(ts_us).over(by_user)
    return prepared.select(
        *prepared.columns,
        # int micros / 1e6 is the correctly rounded quotient: the seconds of the gap, exactly.
        F.when(to_next <= MAX_GAP_US, to_next / F.lit(1e6)).alias(metrics.TIME_ON_PAGE),
        F.coalesce(from_previous > MAX_GAP_US, F.lit(True)).alias(ENTRANCE),
    ).filter(F.col("counted"))


def _is_bounce() -> Column:
    return F.col(ENTRANCE) & F.col(metrics.TIME_ON_PAGE).isNull()


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


def _summary_call(pdf: pd.DataFrame) -> pd.DataFrame:
    """Body of the pandas calls: metrics of every group in one bucket, from merged counts."""
    return metrics.summarise_counts(pdf)


def _counts(marked: DataFrame, n: int) -> DataFrame:
    """Natively count per (group, time on page) the events, users, entrances and bounces, with
    the bucket of the pandas calls.

    A user counts once per group: on its first event there, found by ``row_number`` over the
    user's events of the group (``marked`` is already partitioned by user, so this costs one sort,
    no shuffle). Shuffling by the bucket BEFORE counting lets the aggregation reuse that
    partitioning, so the pandas calls' ``groupBy(GROUP_BUCKET)`` needs no second shuffle.
    """
    in_group = SparkWindow.partitionBy("user_id", *metrics.GROUP_COLUMNS).orderBy(
        "ts_us", "row_key"
    )
    bucket = F.pmod(F.xxhash64(*metrics.GROUP_COLUMNS), F.lit(n))
    return (
        marked.withColumn(FIRST_IN_GROUP, F.row_number().over(in_group) == 1)
        .withColumn(GROUP_BUCKET, bucket)
        .repartition(GROUP_BUCKET)
        .groupBy(GROUP_BUCKET, *metrics.GROUP_COLUMNS, metrics.TIME_ON_PAGE)
        .agg(
            F.count(F.lit(1)).alias("events"),
            F.count(F.when(F.col(FIRST_IN_GROUP), 1)).alias("users"),
            F.count(F.when(F.col(ENTRANCE), 1)).alias("entrances"),
            F.count(F.when(_is_bounce(), 1)).alias("bounces"),
        )
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

    ``events`` must contain every event of the windows and of their look-backs and look-aheads
    (:func:`clickstream_spark.windows.hours_to_read`); other rows are ignored. ``starts`` are
    window starts (UTC; naive = UTC). ``rows`` is the input row count if known (else one
    ``count()`` sizes the buckets; cache the input). A pandas call receives about
    ``max_rows_per_call`` rows, more only if ONE GROUP has more distinct times on page.
    """
    marked = visit_marks(_prepare(events, kind, starts))
    n = _n_buckets(events, rows, max_rows_per_call)
    summary = _counts(marked, n).groupBy(GROUP_BUCKET).applyInPandas(_summary_call, _SUMMARY_SCHEMA)
    return _finish(summary, kind)


# --------------------------------------------------------------------------- native version


def aggregate_windows_native(
    events: DataFrame, kind: WindowKind, starts: Sequence[datetime]
) -> DataFrame:
    """The same metrics with native Spark only (benchmark baseline and cross-check).

    The same :func:`visit_marks`, then ``count``, ``countDistinct``, ``avg`` and the exact
    ``percentile`` (linear interpolation; ``percentile_approx`` is not exact).
    """
    marked = visit_marks(_prepare(events, kind, starts))
    on_page = F.col(metrics.TIME_ON_PAGE)
    median_and_p90 = F.percentile(on_page, F.array(F.lit(0.5), F.lit(0.9)))
    summary = (
        marked.groupBy(*metrics.GROUP_COLUMNS)
        .agg(
            F.count(F.lit(1)).alias("clicks"),
            F.countDistinct("user_id").alias("unique_users"),
            F.avg(on_page).alias("avg_time_on_page_s"),
            median_and_p90.alias("median_and_p90"),
            F.count(on_page).alias("with_time_on_page"),
            F.count(F.when(F.col(ENTRANCE), 1)).alias("entrances"),
            F.count(F.when(_is_bounce(), 1)).alias("bounces"),
        )
        .withColumn("exits", F.col("clicks") - F.col("with_time_on_page"))
        .select(
            *metrics.GROUP_COLUMNS,
            "clicks",
            "unique_users",
            "avg_time_on_page_s",
            F.col("median_and_p90")[0].alias("median_time_on_page_s"),
            F.col("median_and_p90")[1].alias("p90_time_on_page_s"),
            (F.col("with_time_on_page") / F.col("clicks")).alias("time_on_page_coverage"),
            "entrances",
            "exits",
            "bounces",
            F.when(F.col("entrances") > 0, F.col("bounces") / F.col("entrances")).alias(
                "bounce_rate"
            ),
            (F.col("exits") / F.col("clicks")).alias("exit_rate"),
        )
    )
    return _finish(summary, kind)


__all__ = [
    "DEFAULT_MAX_ROWS_PER_CALL",
    "ENTRANCE",
    "MAX_GAP_US",
    "UNKNOWN_COUNTRY",
    "WINDOW_SECONDS",
    "aggregate_windows",
    "aggregate_windows_native",
    "country_or_unknown",
    "visit_marks",
    "window_start_us",
]
