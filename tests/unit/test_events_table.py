from __future__ import annotations

import datetime as dt

from pyspark.sql import SparkSession
from pyspark.testing import assertDataFrameEqual

from clickstream_spark.events_table import from_table_rows, to_table_rows
from clickstream_spark.schema import EVENT_BUCKETS, EVENT_SCHEMA, EVENTS_TABLE_SCHEMA

EVENTS = [
    (
        "k1",
        "u1",
        dt.datetime(2026, 1, 1, 23, 59, 59, 999000),
        "/a",
        "FR",
        "Paris",
        "Firefox",
        "Linux",
        "desktop",
    ),
    ("k2", "u2", dt.datetime(2026, 1, 2, 0, 0, 0), "/b", None, None, None, None, None),
]


def test_to_table_rows_partitions_by_hour_and_bucket(spark: SparkSession) -> None:
    rows = to_table_rows(spark.createDataFrame(EVENTS, EVENT_SCHEMA))
    assert rows.schema.fieldNames() == EVENTS_TABLE_SCHEMA.fieldNames()
    got = {r["row_key"]: r for r in rows.collect()}
    assert got["k1"]["hour"] == dt.datetime(2026, 1, 1, 23)
    assert got["k2"]["hour"] == dt.datetime(2026, 1, 2, 0)
    assert got["k1"]["ts"] == EVENTS[0][2]
    # The bucket is a pure function of row_key, in range, stable from run to run.
    assert all(0 <= r["bucket"] < EVENT_BUCKETS for r in got.values())
    again = {
        r["row_key"]: r["bucket"]
        for r in to_table_rows(spark.createDataFrame(EVENTS, EVENT_SCHEMA)).collect()
    }
    assert again == {k: r["bucket"] for k, r in got.items()}


def test_round_trip_is_identity(spark: SparkSession) -> None:
    events = spark.createDataFrame(EVENTS, EVENT_SCHEMA)
    assertDataFrameEqual(from_table_rows(to_table_rows(events)), events)


def test_buckets_spread_row_keys(spark: SparkSession) -> None:
    rows = [
        (f"key-{i}", "u", dt.datetime(2026, 1, 1), "/", None, None, None, None, None)
        for i in range(800)
    ]
    buckets = (
        to_table_rows(spark.createDataFrame(rows, EVENT_SCHEMA)).groupBy("bucket").count().collect()
    )
    counts = sorted(r["count"] for r in buckets)
    assert len(counts) == EVENT_BUCKETS
    assert counts[0] > 50  # roughly uniform: 100 expected per bucket
