"""Every schema of the pipeline, declared once.

Column order here is the output contract of the transform that produces it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pyspark.sql.types import (
    BinaryType,
    DateType,
    DoubleType,
    IntegerType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Fields of a click event, in the order producers document them.
REQUIRED_FIELDS = ("row_key", "user_id", "timestamp", "url")
OPTIONAL_FIELDS = ("country", "city", "browser", "os", "device")
EVENT_FIELDS = REQUIRED_FIELDS + OPTIONAL_FIELDS

# A valid, typed event as the rest of the pipeline sees it (timestamp in UTC).
EVENT_SCHEMA = StructType(
    [
        StructField("row_key", StringType(), False),
        StructField("user_id", StringType(), False),
        StructField("timestamp", TimestampType(), False),
        StructField("url", StringType(), False),
        StructField("country", StringType(), True),
        StructField("city", StringType(), True),
        StructField("browser", StringType(), True),
        StructField("os", StringType(), True),
        StructField("device", StringType(), True),
    ]
)

# Partitioning of clickstream.events: see conf/cassandra/10-events.cql for the why.
EVENT_BUCKETS = 8

# Row of clickstream.events (Cassandra), as written by the stream: the partition key (hour,
# bucket), then the event's columns with `timestamp` stored as `ts`.
EVENTS_TABLE_SCHEMA = StructType(
    [
        StructField("hour", TimestampType(), False),
        StructField("bucket", IntegerType(), False),
        *(
            StructField("ts" if f.name == "timestamp" else f.name, f.dataType, f.nullable)
            for f in EVENT_SCHEMA.fields
        ),
    ]
)

# Row of clickstream.quarantine.
QUARANTINE_SCHEMA = StructType(
    [
        StructField("topic", StringType(), False),
        StructField("partition", IntegerType(), False),
        StructField("offset", LongType(), False),
        StructField("raw_value", StringType(), True),
        StructField("raw_encoding", StringType(), False),
        StructField("reason", StringType(), False),
        StructField("kafka_timestamp", TimestampType(), True),
        StructField("ingested_at", TimestampType(), False),
    ]
)

# Row of clickstream.changed_windows: a window (hour | day) a micro-batch wrote events of.
CHANGED_WINDOWS_SCHEMA = StructType(
    [
        StructField("window", StringType(), False),
        StructField("window_start", TimestampType(), False),
        StructField("changed_at", TimestampType(), False),
        StructField("batch_id", LongType(), False),
    ]
)

# Row of clickstream.ingest_history: what one micro-batch of the stream did.
INGEST_HISTORY_SCHEMA = StructType(
    [
        StructField("day", DateType(), False),
        StructField("query_id", StringType(), False),
        StructField("batch_id", LongType(), False),
        StructField("batch_time", TimestampType(), False),
        StructField("rows", LongType(), False),
        StructField("valid", LongType(), False),
        StructField("quarantined", LongType(), False),
        StructField("quarantined_by_reason", MapType(StringType(), LongType(), False), False),
        StructField("erased", LongType(), False),
        StructField("windows", IntegerType(), False),
        StructField("seconds", DoubleType(), False),
    ]
)

# Row of the Kafka source as Structured Streaming reads it (the columns the parser uses).
KAFKA_SOURCE_SCHEMA = StructType(
    [
        StructField("key", BinaryType(), True),
        StructField("value", BinaryType(), True),
        StructField("topic", StringType(), True),
        StructField("partition", IntegerType(), True),
        StructField("offset", LongType(), True),
        StructField("timestamp", TimestampType(), True),
    ]
)

# ingest.parse.parse_kafka output: one row per Kafka message. The event columns (EVENT_SCHEMA
# order) are set when reason is null; reason, raw_value, raw_encoding when it is not (see
# ingest.contract.Verdict).
PARSED_SCHEMA = StructType(
    [
        *(StructField(f.name, f.dataType, True) for f in EVENT_SCHEMA.fields),
        StructField("reason", StringType(), True),
        StructField("raw_value", StringType(), True),
        StructField("raw_encoding", StringType(), True),
        StructField("topic", StringType(), True),
        StructField("partition", IntegerType(), True),
        StructField("offset", LongType(), True),
        StructField("kafka_timestamp", TimestampType(), True),
    ]
)

# One aggregation result = one Elasticsearch document.
METRICS_SCHEMA = StructType(
    [
        StructField("window", StringType(), False),
        StructField("window_start", TimestampType(), False),
        StructField("url", StringType(), False),
        StructField("country", StringType(), False),
        StructField("clicks", LongType(), False),
        StructField("unique_users", LongType(), False),
        StructField("avg_time_on_page_s", DoubleType(), True),
        StructField("median_time_on_page_s", DoubleType(), True),
        StructField("p90_time_on_page_s", DoubleType(), True),
        StructField("time_on_page_coverage", DoubleType(), False),
        StructField("entrances", LongType(), False),
        StructField("exits", LongType(), False),
        StructField("bounces", LongType(), False),
        StructField("bounce_rate", DoubleType(), True),
        StructField("exit_rate", DoubleType(), False),
    ]
)

__all__ = [
    "CHANGED_WINDOWS_SCHEMA",
    "EPOCH",
    "EVENTS_TABLE_SCHEMA",
    "EVENT_BUCKETS",
    "EVENT_FIELDS",
    "EVENT_SCHEMA",
    "INGEST_HISTORY_SCHEMA",
    "KAFKA_SOURCE_SCHEMA",
    "METRICS_SCHEMA",
    "OPTIONAL_FIELDS",
    "PARSED_SCHEMA",
    "QUARANTINE_SCHEMA",
    "REQUIRED_FIELDS",
]
