"""Visits: entrances, exits and bounces at the edges, and what a late event changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from clickstream_spark.aggregate.plan import aggregate_windows, visit_marks
from clickstream_spark.schema import METRICS_SCHEMA
from clickstream_spark.windows import Window, touched_hours, windows_of_hours
from tests.reference import reference_metrics

H10 = datetime(2024, 3, 1, 10, tzinfo=UTC)
S = 1_000_000  # microseconds in a second


def marks(spark: SparkSession, rows: list[tuple]) -> list[tuple]:
    """(row_key, time_on_page_s, entrance) of the counted rows of (row_key, user_id, seconds,
    counted), in row_key order."""
    prepared = spark.createDataFrame(
        [(key, user, round(s * S), counted) for key, user, s, counted in rows],
        "row_key string, user_id string, ts_us long, counted boolean",
    )
    got = visit_marks(prepared).select("row_key", "time_on_page_s", "entrance")
    return sorted(tuple(r) for r in got.collect())


def test_1800_seconds_continue_a_visit_1801_do_not_both_ways(spark: SparkSession) -> None:
    rows = [
        ("a", "u", 0, True),
        ("b", "u", 1800, True),  # exactly 1800 s after a: a has a time on page, b is no entrance
        ("c", "u", 3601, True),  # 1801 s after b: b is an exit, c an entrance (and an exit)
        ("d", "v", 0, True),
        ("e", "v", 1800.000001, True),  # one microsecond more: two visits
    ]
    assert marks(spark, rows) == [
        ("a", 1800.0, True),
        ("b", None, False),
        ("c", None, True),
        ("d", None, True),
        ("e", None, True),
    ]


def test_equal_timestamps_follow_row_key_order(spark: SparkSession) -> None:
    rows = [("k2", "u", 5, True), ("k3", "u", 5, True), ("k1", "u", 5, True), ("k0", "w", 5, True)]
    assert marks(spark, rows) == [
        ("k0", None, True),  # another user: no tie with u, a one-event visit
        ("k1", 0.0, True),
        ("k2", 0.0, False),
        ("k3", None, False),
    ]


def test_neighbours_outside_the_windows_decide_without_being_counted(spark: SparkSession) -> None:
    # p and r lie in a look-back and a look-ahead: q neither begins nor ends a visit.
    rows = [("p", "u", 0, False), ("q", "u", 600, True), ("r", "u", 1000, False)]
    assert marks(spark, rows) == [("q", 400.0, False)]
    assert marks(spark, [("q", "u", 600, True)]) == [("q", None, True)]  # alone: a bounce


# --------------------------------------------------------------------------- late events


def events_frame(spark: SparkSession, rows: list[tuple]) -> DataFrame:
    """Events of (row_key, user_id, minutes after 10:00, url)."""
    return spark.createDataFrame(
        [(k, u, H10 + timedelta(minutes=m), url, "DE") for k, u, m, url in rows],
        "row_key string, user_id string, timestamp timestamp, url string, country string",
    )


def visit_fields(spark: SparkSession, rows: list[tuple], kind: str, starts) -> dict:
    """(hour of window_start, url) -> (clicks, entrances, exits, bounces, bounce_rate), checked
    against the reference."""
    got = aggregate_windows(events_frame(spark, rows), kind, starts)
    dicts = [
        {"row_key": k, "user_id": u, "timestamp": H10 + timedelta(minutes=m), "url": url,
         "country": "DE"}
        for k, u, m, url in rows
    ]  # fmt: skip
    want = spark.createDataFrame(reference_metrics(dicts, kind, starts), METRICS_SCHEMA)
    assert sorted(got.collect()) == sorted(want.collect())
    return {
        (r.window_start.hour, r.url): (r.clicks, r.entrances, r.exits, r.bounces, r.bounce_rate)
        for r in got.collect()
    }


def marked_windows(spark: SparkSession, minutes: float) -> list[Window]:
    """The windows the stream marks for a late event at 10:00 + ``minutes``."""
    late = spark.createDataFrame([(H10 + timedelta(minutes=minutes),)], "timestamp timestamp")
    (hours,) = late.agg(touched_hours(F.col("timestamp"))).first()
    return windows_of_hours(hours)


HOURS = [H10, H10 + timedelta(hours=1)]


def test_a_late_event_joins_two_visits_across_an_hour(spark: SparkSession) -> None:
    # Two one-page visits 50 minutes apart (10:20 and 11:10), then a late event at 10:45.
    rows = [("a", "u", 20, "/a"), ("b", "u", 70, "/b")]
    before = visit_fields(spark, rows, "hour", HOURS)
    assert before == {(10, "/a"): (1, 1, 1, 1, 1.0), (11, "/b"): (1, 1, 1, 1, 1.0)}

    after = visit_fields(spark, [*rows, ("late", "u", 45, "/late")], "hour", HOURS)

    # One visit: /a lands, /b ends it; the 11:00 window changed though the late event is at 10:45.
    assert after == {
        (10, "/a"): (1, 1, 0, 0, 0.0),
        (10, "/late"): (1, 0, 0, 0, None),
        (11, "/b"): (1, 0, 1, 0, None),
    }
    assert Window("hour", H10.replace(tzinfo=None, hour=11)) in marked_windows(spark, 45)


def test_a_late_event_inside_a_visit_splits_nothing(spark: SparkSession) -> None:
    # A visit 10:00 -> 10:20; a late event at 10:10 only shortens a time on page.
    rows = [("a", "u", 0, "/a"), ("b", "u", 20, "/b")]
    before = visit_fields(spark, rows, "day", [H10.replace(hour=0)])
    after = visit_fields(spark, [*rows, ("late", "u", 10, "/a")], "day", [H10.replace(hour=0)])
    assert before == {(0, "/a"): (1, 1, 0, 0, 0.0), (0, "/b"): (1, 0, 1, 0, None)}
    assert after == {(0, "/a"): (2, 1, 0, 0, 0.0), (0, "/b"): (1, 0, 1, 0, None)}


@pytest.mark.parametrize("minutes", [-40, 12, 58, 110])
def test_a_late_event_changes_only_windows_the_stream_marks(
    spark: SparkSession, minutes: float
) -> None:
    """Wherever it falls, a late event changes no hour window besides those marked for it: at
    9:20 it continues into a (no entrance any more), at 10:12 it joins a's visit to b's (across
    10:00), at 10:58 b's to c's (across 11:00), at 11:50 it follows c by exactly 30 minutes."""
    rows = [("a", "u", -10, "/a"), ("b", "u", 35, "/b"), ("c", "u", 80, "/c")]  # 45 min apart
    starts = [H10 + timedelta(hours=h) for h in range(-1, 3)]
    before = visit_fields(spark, rows, "hour", starts)
    after = visit_fields(spark, [*rows, ("late", "u", minutes, "/late")], "hour", starts)
    changed = {hour for hour, url in before.keys() | after.keys() if url != "/late"
               and before.get((hour, url)) != after.get((hour, url))}  # fmt: skip
    marked = {w.start.hour for w in marked_windows(spark, minutes) if w.kind == "hour"}
    assert changed  # each late event changes some other event's visit
    assert changed <= marked
