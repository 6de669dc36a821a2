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


def test_hours_to_read_adds_the_look_ahead() -> None:
    look_ahead = dt.timedelta(minutes=30)
    assert hours_to_read("hour", [T(2026, 1, 1, 23)], look_ahead) == [
        T(2026, 1, 1, 23),
        T(2026, 1, 2, 0),
    ]
    day = hours_to_read("day", [T(2026, 1, 1)], look_ahead)
    assert day == [T(2026, 1, 1, h) for h in range(24)] + [T(2026, 1, 2, 0)]
    # Adjacent windows share the hours they both need.
    assert hours_to_read("hour", [T(2026, 1, 1, 5), T(2026, 1, 1, 6)], look_ahead) == [
        T(2026, 1, 1, 5),
        T(2026, 1, 1, 6),
        T(2026, 1, 1, 7),
    ]


def _touched(spark: SparkSession, *timestamps: dt.datetime | None) -> list[Window]:
    """The windows that events at ``timestamps`` change (null: a bad message's missing one)."""
    events = spark.createDataFrame([(ts,) for ts in timestamps], "timestamp timestamp")
    (hours,) = events.agg(touched_hours(F.col("timestamp")).alias("hours")).first()
    return windows_of_hours(hours)


def test_changed_windows_include_the_window_of_the_previous_event(spark: SparkSession) -> None:
    # 00:10 on Jan 2: the user's previous event may be as early as 23:40 on Jan 1.
    assert _touched(spark, T(2026, 1, 2, 0, 10), T(2026, 1, 2, 0, 50)) == [
        Window("hour", T(2026, 1, 1, 23)),
        Window("hour", T(2026, 1, 2, 0)),
        Window("day", T(2026, 1, 1)),
        Window("day", T(2026, 1, 2)),
    ]


def test_changed_windows_exact_boundary(spark: SparkSession) -> None:
    # Exactly 30 minutes after the hour: the previous event can be exactly on the hour.
    assert _touched(spark, T(2026, 1, 2, 10, 30)) == [
        Window("hour", T(2026, 1, 2, 10)),
        Window("day", T(2026, 1, 2)),
    ]


def test_null_timestamps_touch_no_window(spark: SparkSession) -> None:
    assert _touched(spark, None, T(2026, 1, 2, 10, 45), None) == [
        Window("hour", T(2026, 1, 2, 10)),
        Window("day", T(2026, 1, 2)),
    ]
    assert _touched(spark, None) == []
