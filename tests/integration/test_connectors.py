"""Spark writes to and reads back from each real server through its connector.

These prove the connector jars (make setup) and the endpoints from config work together; the
pipeline's own tests build on them.
"""

from __future__ import annotations

import datetime as dt

from cassandra.cluster import Session
from confluent_kafka.admin import AdminClient, NewTopic
from elasticsearch import Elasticsearch
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StringType, StructField, StructType, TimestampType
from pyspark.testing import assertDataFrameEqual

from clickstream_spark.config import Config

ROWS_SCHEMA = StructType(
    [
        StructField("id", StringType(), False),
        StructField("clicks", LongType(), False),
        StructField("seen_at", TimestampType(), False),
    ]
)
ROWS = [
    ("a", 1, dt.datetime(2026, 1, 1, 0, 0, 0)),
    ("b", 20, dt.datetime(2026, 1, 1, 23, 59, 59, 123000)),
    ("é-ünïcode", 300, dt.datetime(2026, 6, 30, 12, 30, 0)),
]


def test_kafka_round_trip(
    spark: SparkSession, config: Config, kafka_admin: AdminClient, run_id: str
) -> None:
    topic = f"it_roundtrip_{run_id}"
    kafka_admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])[
        topic
    ].result(timeout=30)
    try:
        rows = spark.createDataFrame(ROWS, ROWS_SCHEMA)
        messages = rows.select(
            F.col("id").alias("key"), F.to_json(F.struct(*rows.columns)).alias("value")
        )
        (
            messages.write.format("kafka")
            .option("kafka.bootstrap.servers", config.kafka.bootstrap_servers)
            .option("topic", topic)
            .save()
        )
        read = (
            spark.read.format("kafka")
            .option("kafka.bootstrap.servers", config.kafka.bootstrap_servers)
            .option("subscribe", topic)
            .option("startingOffsets", "earliest")
            .option("endingOffsets", "latest")
            .load()
        )
        assert read.count() == len(ROWS)
        decoded = read.select(
            F.from_json(F.col("value").cast("string"), ROWS_SCHEMA).alias("row")
        ).select("row.*")
        assertDataFrameEqual(decoded, rows)
    finally:
        kafka_admin.delete_topics([topic])[topic].result(timeout=30)


def test_cassandra_round_trip(
    spark: SparkSession, config: Config, cassandra: Session, run_id: str
) -> None:
    keyspace, table = config.cassandra.keyspace, f"it_roundtrip_{run_id}"
    cassandra.execute(
        f"CREATE TABLE {keyspace}.{table} (id text PRIMARY KEY, clicks bigint, seen_at timestamp)"
    )
    try:
        rows = spark.createDataFrame(ROWS, ROWS_SCHEMA)
        (
            rows.write.format("org.apache.spark.sql.cassandra")
            .options(keyspace=keyspace, table=table)
            .mode("append")
            .save()
        )
        read = (
            spark.read.format("org.apache.spark.sql.cassandra")
            .options(keyspace=keyspace, table=table)
            .load()
        )
        assertDataFrameEqual(read.select(*ROWS_SCHEMA.fieldNames()), rows)
        # The rows really are in Cassandra, not only visible to Spark.
        count = cassandra.execute(f"SELECT count(*) FROM {keyspace}.{table}").one()[0]
        assert count == len(ROWS)
    finally:
        cassandra.execute(f"DROP TABLE IF EXISTS {keyspace}.{table}")


def test_elasticsearch_round_trip(
    spark: SparkSession, config: Config, es: Elasticsearch, run_id: str
) -> None:
    index = f"it_roundtrip_{run_id}"
    es.indices.create(
        index=index,
        settings={"number_of_shards": 1, "number_of_replicas": 0},
        mappings={
            "dynamic": "strict",
            "properties": {
                "id": {"type": "keyword"},
                "clicks": {"type": "long"},
                "seen_at": {"type": "date"},
            },
        },
    )
    try:
        rows = spark.createDataFrame(ROWS, ROWS_SCHEMA)
        (
            rows.write.format("org.elasticsearch.spark.sql")
            .option("es.resource", index)
            .option("es.mapping.id", "id")
            .option("es.write.operation", "index")
            .mode("append")
            .save()
        )
        es.indices.refresh(index=index)
        assert es.count(index=index)["count"] == len(ROWS)
        assert es.get(index=index, id="b")["_source"]["clicks"] == 20
        read = (
            spark.read.format("org.elasticsearch.spark.sql")
            .option("es.read.field.include", "id,clicks,seen_at")
            .load(index)
        )
        assertDataFrameEqual(read.select(*ROWS_SCHEMA.fieldNames()), rows)
    finally:
        es.indices.delete(index=index, ignore_unavailable=True)
