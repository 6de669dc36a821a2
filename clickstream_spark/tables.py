"""The Cassandra tables the jobs read and write, through the Spark Cassandra connector."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession

from clickstream_spark.config import Config

CASSANDRA_FORMAT = "org.apache.spark.sql.cassandra"

EVENTS_TABLE = "events"
QUARANTINE_TABLE = "quarantine"
CHANGED_WINDOWS_TABLE = "changed_windows"
AGGREGATED_WINDOWS_TABLE = "aggregated_windows"
LEASE_TABLE = "aggregate_lease"
BACKFILLS_TABLE = "backfills"
INGEST_HISTORY_TABLE = "ingest_history"
ERASED_USERS_TABLE = "erased_users"
ERASURE_LOG_TABLE = "erasure_log"


def read_table(spark: SparkSession, config: Config, table: str) -> DataFrame:
    """``table`` of the configured keyspace, lazily (resolving it checks that it exists)."""
    return (
        spark.read.format(CASSANDRA_FORMAT)
        .options(keyspace=config.cassandra.keyspace, table=table)
        .load()
    )


def append_to_table(
    frame: DataFrame, config: Config, table: str, options: dict[str, str] | None = None
) -> None:
    """Upsert the rows of ``frame`` into ``table`` (Cassandra writes are upserts by key)."""
    (
        frame.write.format(CASSANDRA_FORMAT)
        .options(keyspace=config.cassandra.keyspace, table=table, **(options or {}))
        .mode("append")
        .save()
    )
