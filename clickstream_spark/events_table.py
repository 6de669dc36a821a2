"""Valid events <-> rows of ``clickstream.events`` (see conf/cassandra/10-events.cql)."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from clickstream_spark.schema import EVENT_BUCKETS, EVENT_SCHEMA, OPTIONAL_FIELDS


def bucket_of(row_key: Column) -> Column:
    """The row's bucket inside its hour; xxhash64 is stable across Spark versions and hosts."""
    return F.pmod(F.xxhash64(row_key), F.lit(EVENT_BUCKETS)).cast("int")


def to_table_rows(events: DataFrame) -> DataFrame:
    """Typed events (EVENT_SCHEMA) -> rows of clickstream.events (EVENTS_TABLE_SCHEMA)."""
    return events.select(
        F.date_trunc("hour", F.col("timestamp")).alias("hour"),
        bucket_of(F.col("row_key")).alias("bucket"),
        F.col("row_key"),
        F.col("user_id"),
        F.col("timestamp").alias("ts"),
        F.col("url"),
        *(F.col(name) for name in OPTIONAL_FIELDS),
    )


def from_table_rows(rows: DataFrame) -> DataFrame:
    """Rows of clickstream.events -> typed events (EVENT_SCHEMA)."""
    return rows.select(
        *[
            F.col("ts").alias("timestamp") if name == "timestamp" else F.col(name)
            for name in EVENT_SCHEMA.fieldNames()
        ]
    )


__all__ = ["bucket_of", "from_table_rows", "to_table_rows"]
