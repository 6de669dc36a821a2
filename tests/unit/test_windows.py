from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from clickstream_spark.windows import (
    Window,
    hours_to_read,
    touched_hours,
    window_start,
    window_starts,
    windows_of_hours,
)

T = dt.datetime


def test_window_start() -> None:
    timestamp = T(2026, 3, 1, 13, 45, 12, 5)
    assert window_start("hour", timestamp) == T(2026, 3, 1, 13)
    assert window_start("day", timestamp) == T(2026, 3, 1)
    with pytest.raises(ValueError, match="unknown window kind"):
        window_start("week", timestamp)  # type: ignore[arg-type]


def test_window_starts_includes_both_ends() -> None:
    assert list(window_starts("day", T(2026, 2, 27, 5), T(2026, 3, 1))) == [
        T(2026, 2, 27),
        T(2026, 2, 28),
        T(2026, 3, 1),
    ]


def test_hours_to_read_adds_the_look_back_and_the_look_ahead() -> None:
    margin = dt.timedelta(minutes=30)
    assert hours_to_read("hour", [T(2026, 1, 1, 23)], margin, margin) == [
        T(2026, 1, 1, 22),
        T(2026, 1, 1, 23),
        T(2026, 1, 2, 0),
    ]
    day = hours_to_read("day", [T(2026, 1, 1)], margin, margin)
    assert day == [T(2025, 12, 31, 23)] + [T(2026, 1, 1, h) for h in range(24)] + [T(2026, 1, 2, 0)]
    # Adjacent windows share the hours they both need.
    assert hours_to_read("hour", [T(2026, 1, 1, 5), T(2026, 1, 1, 6)], margin, margin) == [
        T(2026, 1, 1, 4),
        T(2026, 1, 1, 5),
        T(2026, 1, 1, 6),
        T(2026, 1, 1, 7),
    ]
    # The defaults are the 30 minutes of MAX_GAP_S; without margins, the window alone.
    assert hours_to_read("hour", [T(2026, 1, 1, 5)]) == [T(2026, 1, 1, h) for h in (4, 5, 6)]
    none = dt.timedelta(0)
    assert hours_to_read("hour", [T(2026, 1, 1, 5)], none, none) == [T(2026, 1, 1, 5)]


def _touched(spark: SparkSession, *timestamps: dt.datetime | None) -> list[Window]:
    """The windows that events at ``timestamps`` change (null: a bad message's missing one)."""
    events = spark.createDataFrame([(ts,) for ts in timestamps], "timestamp timestamp")
    (hours,) = events.agg(touched_hours(F.col("timestamp")).alias("hours")).first()
    return windows_of_hours(hours)


def test_changed_windows_include_those_of_the_previous_and_next_events(
    spark: SparkSession,
) -> None:
    # 00:10 on Jan 2: the user's previous event may be as early as 23:40 on Jan 1.
    assert _touched(spark, T(2026, 1, 2, 0, 10), T(2026, 1, 2, 0, 20)) == [
        Window("hour", T(2026, 1, 1, 23)),
        Window("hour", T(2026, 1, 2, 0)),
        Window("day", T(2026, 1, 1)),
        Window("day", T(2026, 1, 2)),
    ]
    # 23:45 on Jan 1: the user's next event may be as late as 00:15 on Jan 2.
    assert _touched(spark, T(2026, 1, 1, 23, 45)) == [
        Window("hour", T(2026, 1, 1, 23)),
        Window("hour", T(2026, 1, 2, 0)),
        Window("day", T(2026, 1, 1)),
        Window("day", T(2026, 1, 2)),
    ]


def test_changed_windows_exact_boundaries(spark: SparkSession) -> None:
    # Exactly 30 minutes after the hour: the previous event can be exactly on the hour (10:00),
    # the next one exactly on the next hour (11:00); both gaps of 1800 s join a visit.
    assert _touched(spark, T(2026, 1, 2, 10, 30)) == [
        Window("hour", T(2026, 1, 2, 10)),
        Window("hour", T(2026, 1, 2, 11)),
        Window("day", T(2026, 1, 2)),
    ]
    # One microsecond earlier, the next event's hour cannot change any more.
    assert _touched(spark, T(2026, 1, 2, 10, 29, 59, 999999)) == [
        Window("hour", T(2026, 1, 2, 9)),
        Window("hour", T(2026, 1, 2, 10)),
        Window("day", T(2026, 1, 2)),
    ]


def test_null_timestamps_touch_no_window(spark: SparkSession) -> None:
    assert _touched(spark, None, T(2026, 1, 2, 10, 30), None) == [
        Window("hour", T(2026, 1, 2, 10)),
        Window("hour", T(2026, 1, 2, 11)),
        Window("day", T(2026, 1, 2)),
    ]
    assert _touched(spark, None) == []
