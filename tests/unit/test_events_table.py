from __future__ import annotations

import datetime as dt

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from clickstream_spark.events_table import bucket_of, from_table_rows, to_table_rows
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
    got = {r["row_key"]: (r["hour"], r["bucket"], r["ts"]) for r in rows.collect()}
    assert got == {
        "k1": (dt.datetime(2026, 1, 1, 23), 1, EVENTS[0][2]),
        "k2": (dt.datetime(2026, 1, 2, 0), 3, EVENTS[1][2]),
    }


# pmod(xxhash64(row_key), 8) as Spark 3.5.7 computes it (XXH64, seed 42, over the UTF-8 bytes).
# The upsert that makes ingestion idempotent relies on them: if an upgrade changed one, an event
# replayed or resent afterwards would land in another partition and be stored twice.
PINNED_BUCKETS = {
    "r-1": 0,
    "k1": 1,
    "k2": 3,
    "8ca93e91-5c8e-4a49-9d4c-0f1e2d3c4b5a": 4,
    "é": 4,
    "": 4,
    "key-1": 7,
    "12345678901234567890": 7,
}


def test_bucket_of_gives_the_pinned_values(spark: SparkSession) -> None:
    keys = spark.createDataFrame([(k,) for k in PINNED_BUCKETS], "row_key string")
    got = keys.select("row_key", bucket_of(F.col("row_key")).alias("bucket")).collect()
    assert {r["row_key"]: r["bucket"] for r in got} == PINNED_BUCKETS


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
