"""The Spark aggregations against the plain-Python reference, for hour and day windows."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType, TimestampType
from pyspark.testing import assertDataFrameEqual, assertSchemaEqual

from clickstream_spark.aggregate import plan
from clickstream_spark.aggregate.plan import (
    aggregate_windows,
    aggregate_windows_native,
    country_or_unknown,
)
from clickstream_spark.schema import METRICS_SCHEMA
from tests.reference import reference_metrics

INPUT_SCHEMA = StructType(
    [
        StructField("row_key", StringType(), False),
        StructField("user_id", StringType(), False),
        StructField("timestamp", TimestampType(), False),
        StructField("url", StringType(), False),
        StructField("country", StringType(), True),
    ]
)
DAY1 = datetime(2024, 3, 1, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)


def at(h: int, m: int = 0, s: float = 0, day: datetime = DAY1) -> datetime:
    return day + timedelta(hours=h, minutes=m, seconds=s)


# Hand-written edge cases (ids say which); users are independent of each other.
EDGE_ROWS = [
    # exits and the exact 1800 s boundary
    ("e1", "exit", at(10, 0), "/a", "DE"),
    ("e2", "exit", at(10, 30), "/b", "DE"),  # 1800 s: defined
    ("e3", "exit", at(11, 0, 0.001), "/a", "DE"),  # 1800.001 s: e2 exits
    # ties on timestamp, row_key order decides
    ("t2", "tie", at(10, 5), "/b", "FR"),
    ("t1", "tie", at(10, 5), "/a", "FR"),
    ("t3", "tie", at(10, 6), "/a", "FR"),
    # null and empty country
    ("c1", "c", at(10, 10), "/a", None),
    ("c2", "c", at(10, 11), "/a", ""),
    ("c3", "c2", at(10, 12), "/a", None),
    # a session crossing midnight: the 00:10 event is look-ahead for day 1 / hour 23, the 23:55
    # one look-back for day 2 / hour 0 (m2 continues the visit: no entrance on day 2)
    ("m1", "night", at(23, 55), "/a", "DE"),
    ("m2", "night", at(0, 10, day=DAY2), "/b", "DE"),
    # before hour 10: for hour windows from 10 on, not counted but e1's previous event (1 s)
    ("x1", "exit", at(9, 59, 59), "/z", "DE"),
    # entrances: exactly 1800 s after the previous event continues a visit, 1801 s starts one
    ("g1", "gap", at(12, 40), "/g", "NL"),
    ("g2", "gap", at(13, 10), "/g", "NL"),  # 1800 s after g1, across an hour: no entrance
    ("g3", "gap", at(13, 40, 1), "/g", "NL"),  # 1801 s after g2: an entrance, g2 an exit
    # one-event visits: bounces (b2 lies in hour 14's look-back, but an hour before b1)
    ("b1", "lone", at(14, 45), "/lone", "NL"),
    ("b2", "lone", at(13, 45), "/lone", "NL"),
]


def random_rows(n: int, seed: int = 3) -> list[tuple]:
    """Sessions of a few users over day 1 with second resolution (ties happen)."""
    rnd = random.Random(seed)
    rows = []
    for i in range(n):
        user = f"u{rnd.randrange(40)}"
        ts = DAY1 + timedelta(seconds=rnd.randrange(0, 86400 + 1800, 10))
        country = rnd.choice(["DE", "FR", "US", None, ""])
        rows.append((f"r{i:05d}", user, ts, f"/p{int(rnd.paretovariate(1.2)) % 15}", country))
    return rows


def frame(spark: SparkSession, rows: list[tuple]) -> DataFrame:
    return spark.createDataFrame(rows, INPUT_SCHEMA)


def expected(spark: SparkSession, rows: list[tuple], kind: str, starts) -> DataFrame:
    dicts = [dict(zip(INPUT_SCHEMA.names, r, strict=True)) for r in rows]
    return spark.createDataFrame(reference_metrics(dicts, kind, starts), METRICS_SCHEMA)


HOURS = [at(h) for h in range(24)]


@pytest.mark.parametrize(
    ("kind", "starts"),
    [("hour", [at(10), at(11), at(23)]), ("hour", HOURS), ("day", [DAY1]), ("day", [DAY2])],
)
@pytest.mark.parametrize("rows_name", ["edge", "random"])
def test_both_versions_equal_the_reference(
    spark: SparkSession, kind: str, starts: list[datetime], rows_name: str
) -> None:
    rows = EDGE_ROWS if rows_name == "edge" else random_rows(3000)
    events = frame(spark, rows)
    want = expected(spark, rows, kind, starts)
    # A small max_rows_per_call forces many buckets: groups spread over several pandas calls.
    got = aggregate_windows(events, kind, starts, max_rows_per_call=500)
    native = aggregate_windows_native(events, kind, starts)
    assert got.schema == METRICS_SCHEMA
    assertSchemaEqual(native.schema, METRICS_SCHEMA)
    assertDataFrameEqual(got, want, rtol=1e-12, atol=0)
    assertDataFrameEqual(native, want, rtol=1e-12, atol=0)
    assertDataFrameEqual(got, native, rtol=1e-12, atol=0)


def test_edge_cases_spelled_out(spark: SparkSession) -> None:
    got = aggregate_windows(frame(spark, EDGE_ROWS), "day", [DAY1]).collect()
    by_key = {(r.url, r.country): r for r in got}
    # /a DE: e1 (1800 s), e3 (exit), m1 (900 s via the look-ahead event of day 2)
    a_de = by_key[("/a", "DE")]
    assert (a_de.clicks, a_de.unique_users) == (3, 2)
    assert (a_de.median_time_on_page_s, a_de.time_on_page_coverage) == (1350.0, 2 / 3)
    # /b DE: e2 only (exit by 1 ms); the look-ahead m2 and the early x1 are not counted
    b_de = by_key[("/b", "DE")]
    assert (b_de.clicks, b_de.avg_time_on_page_s, b_de.time_on_page_coverage) == (1, None, 0.0)
    # x1 (09:59:59) is in day 1: counted, 1 s to e1
    assert by_key[("/z", "DE")].avg_time_on_page_s == 1.0
    # ties: t1 (0 s to t2) then t2 (60 s to t3)
    assert by_key[("/a", "FR")].avg_time_on_page_s == 0.0
    assert by_key[("/b", "FR")].avg_time_on_page_s == 60.0
    # null and empty country are one "unknown" group
    unknown = by_key[("/a", "unknown")]
    assert (unknown.clicks, unknown.unique_users, unknown.avg_time_on_page_s) == (3, 2, 60.0)
    hourly = aggregate_windows(frame(spark, EDGE_ROWS), "hour", [at(10), at(23)])
    de = hourly.filter(F.col("country") == "DE").select(F.hour("window_start"), "url")
    assert {tuple(r) for r in de.collect()} == {
        (10, "/a"),
        (10, "/b"),
        (23, "/a"),
    }


def visits(row) -> tuple:
    return (row.entrances, row.exits, row.bounces, row.bounce_rate, row.exit_rate)


def test_visit_fields_spelled_out(spark: SparkSession) -> None:
    events = frame(spark, EDGE_ROWS)
    day1 = {(r.url, r.country): r for r in aggregate_windows(events, "day", [DAY1]).collect()}
    # /a DE: e1 continues x1's visit (1 s), e3 lands 1800.001 s after e2 and leaves (a bounce),
    # m1 lands (the night user's first event) and is no exit (m2, 15 min later, on day 2)
    assert visits(day1[("/a", "DE")]) == (2, 1, 1, 0.5, 1 / 3)
    # /b DE: e2, exactly 1800 s after e1, is no entrance; an exit by 1 ms: no landing, no rate
    assert visits(day1[("/b", "DE")]) == (0, 1, 0, None, 1.0)
    assert visits(day1[("/z", "DE")]) == (1, 0, 0, 0.0, 0.0)  # x1 lands, e1 follows
    # /g NL: g1 lands, g2 (1800 s later) continues and exits, g3 (1801 s later) lands and exits
    assert visits(day1[("/g", "NL")]) == (2, 2, 1, 0.5, 2 / 3)
    assert visits(day1[("/lone", "NL")]) == (2, 2, 2, 1.0, 1.0)  # two one-event visits
    # ties: t1 lands (t2 and t1 share a timestamp; row_key order puts t1 first), t3 exits
    assert visits(day1[("/a", "FR")]) == (1, 1, 0, 0.0, 0.5)
    assert visits(day1[("/b", "FR")]) == (0, 0, 0, None, 0.0)
    # Across midnight: m2 continues m1's visit of day 1, so day 2 has an exit but no entrance.
    (day2,) = aggregate_windows(events, "day", [DAY2]).collect()
    assert (day2.url, *visits(day2)) == ("/b", 0, 1, 0, None, 1.0)
    # Across an hour: g2 continues g1's visit of hour 12.
    hours = aggregate_windows(events, "hour", [at(12), at(13), at(14)])
    g = {r.window_start.hour: r for r in hours.filter(F.col("url") == "/g").collect()}
    assert visits(g[12]) == (1, 0, 0, 0.0, 0.0)
    assert visits(g[13]) == (1, 2, 1, 1.0, 1.0)
    lone = {r.window_start.hour: r for r in hours.filter(F.col("url") == "/lone").collect()}
    assert visits(lone[13]) == visits(lone[14]) == (1, 1, 1, 1.0, 1.0)


HEAVY_URL = "/home"


def heavy_rows(users: int = 400, visits: int = 8, seed: int = 5) -> list[tuple]:
    """One (day, url, country) group far larger than the bound: many users' sessions on /home.

    Gaps are whole seconds from 1 to 30 (and an exit after each session), so the group's many
    events have few distinct times on page.
    """
    rnd = random.Random(seed)
    rows = []
    for u in range(users):
        ts = at(8, s=rnd.randrange(0, 8 * 3600))
        for v in range(visits):
            rows.append((f"h{u:03d}-{v}", f"heavy{u}", ts, HEAVY_URL, "US"))
            ts += timedelta(seconds=rnd.randrange(1, 31))
    return rows


def record_call_sizes(monkeypatch: pytest.MonkeyPatch, log: Path) -> None:
    """Wrap the pandas calls' body so that every call appends "<rows> <rows of HEAVY_URL>" to
    ``log``. The wrapper is a closure, so it is pickled by value and runs in the Python workers.
    """
    body = plan._summary_call

    def recorded(pdf: pd.DataFrame) -> pd.DataFrame:
        with log.open("a") as f:
            f.write(f"{len(pdf)} {int((pdf['url'] == HEAVY_URL).sum())}\n")
        return body(pdf)

    monkeypatch.setattr(plan, "_summary_call", recorded)


def call_sizes(log: Path) -> list[tuple[int, int]]:
    return [tuple(map(int, line.split())) for line in log.read_text().splitlines()]


def test_a_group_larger_than_the_bound_reaches_pandas_as_value_counts_yet_exact(
    spark: SparkSession, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bound = 100
    rows = heavy_rows() + random_rows(1000)
    record_call_sizes(monkeypatch, tmp_path / "calls")
    # Collected once: the recorded sizes are those of exactly one run of the plan.
    got = aggregate_windows(frame(spark, rows), "day", [DAY1], max_rows_per_call=bound).collect()
    want = expected(spark, rows, "day", [DAY1]).collect()
    assertDataFrameEqual(got, want, rtol=1e-12, atol=0)

    (heavy,) = [r for r in got if (r.url, r.country) == (HEAVY_URL, "US")]
    assert heavy.clicks == 3200 > 30 * bound
    calls = call_sizes(tmp_path / "calls")
    # The group arrives as its distinct times on page (at most 30) and the exits' row, in one
    # call; no call is much above the bound (a call holds the groups of one hash bucket).
    assert sum(h > 0 for _, h in calls) == 1
    assert 2 <= max(h for _, h in calls) <= 31
    assert max(n for n, _ in calls) <= 2 * bound


def test_null_or_empty_country_is_unknown_and_nothing_else_is(spark: SparkSession) -> None:
    countries = spark.createDataFrame([(None,), ("",), (" ",), ("FR",), ("unknown",)], "c string")
    got = countries.select(country_or_unknown(F.col("c"))).collect()
    assert [r[0] for r in got] == ["unknown", "unknown", " ", "FR", "unknown"]


def test_window_starts_must_be_window_boundaries() -> None:
    with pytest.raises(ValueError, match="not the start"):
        aggregate_windows_native(None, "hour", [at(10, 1)])  # type: ignore[arg-type]


BOT_EVENTS = 1_000_000
BOT_PAUSE_US = 1_900_000_000  # between the two bursts: over 1800 s, so two visits


def bot_events(spark: SparkSession, n: int) -> DataFrame:
    """One user's ``n`` events within hour 10: two bursts of events 1 ms apart, 1900 s between
    them, over 7 URLs. Built by Spark: nothing of size ``n`` crosses from Python."""
    i = F.col("id")
    offset_us = F.when(i < n // 2, i * 1000).otherwise(BOT_PAUSE_US + i * 1000)
    return spark.range(n).select(
        F.format_string("b%07d", i).alias("row_key"),
        F.lit("bot").alias("user_id"),
        F.timestamp_micros(F.lit(int(at(10).timestamp()) * 1_000_000) + offset_us).alias(
            "timestamp"
        ),
        F.concat(F.lit("/bot/"), (i % 7).cast("string")).alias("url"),
        F.lit("XX").alias("country"),
    )


def bot_dicts(n: int) -> list[dict]:
    """The same events as :func:`bot_events`, for the reference."""
    ms = timedelta(milliseconds=1)
    pause = timedelta(microseconds=BOT_PAUSE_US)
    return [
        {"row_key": f"b{i:07d}", "user_id": "bot", "url": f"/bot/{i % 7}", "country": "XX",
         "timestamp": at(10) + i * ms + (pause if i >= n // 2 else timedelta(0))}
        for i in range(n)
    ]  # fmt: skip


@pytest.mark.slow  # a million rows: about a minute on a loaded 2-core machine
def test_one_user_with_a_million_events_in_an_hour_never_makes_a_large_pandas_call(
    spark: SparkSession, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A bot's events are ordered by Spark (sorted with spilling), not in one pandas call: the
    aggregation fits the test session's 1 GB driver and equals the reference."""
    bound = 10_000
    record_call_sizes(monkeypatch, tmp_path / "calls")
    events = bot_events(spark, BOT_EVENTS)
    got = aggregate_windows(events, "hour", [at(10)], max_rows_per_call=bound).collect()

    want = reference_metrics(bot_dicts(BOT_EVENTS), "hour", [at(10)])
    assertDataFrameEqual(got, spark.createDataFrame(want, METRICS_SCHEMA), rtol=1e-12, atol=0)
    assert sum(r.clicks for r in got) == BOT_EVENTS
    assert (sum(r.entrances for r in got), sum(r.exits for r in got)) == (2, 2)
    # Every pandas call is small: the bot's events reach pandas as counts of their few distinct
    # times on page (0.001 s, and the exits), never as one call of a million rows.
    assert max(n for n, _ in call_sizes(tmp_path / "calls")) <= bound
