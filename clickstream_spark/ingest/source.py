"""The topic as Spark reads it: a stream for the query, or a range of offsets as a batch."""

from __future__ import annotations

import json

from pyspark.sql import DataFrame, SparkSession

from clickstream_spark.config import Config
from clickstream_spark.kafka_clients import spark_source_options


def kafka_source(spark: SparkSession, config: Config) -> DataFrame:
    """The topic as a stream of Kafka rows; losing data (e.g. retention) fails the query."""
    source = (
        spark.readStream.format("kafka")
        .options(**spark_source_options(config.kafka))
        .option("subscribe", config.kafka.topic)
        .option("startingOffsets", config.stream.starting_offsets)
        .option("failOnDataLoss", "true")
        .option("maxOffsetsPerTrigger", str(config.stream.max_offsets_per_trigger))
    )
    if config.stream.min_partitions > 0:
        source = source.option("minPartitions", str(config.stream.min_partitions))
    return source.load()


def kafka_range(
    spark: SparkSession, config: Config, offsets: dict[int, tuple[int, int]]
) -> DataFrame:
    """The messages of ``offsets`` (partition -> first and last offset, inclusive), as a batch."""
    topic = config.kafka.topic
    return (
        spark.read.format("kafka")
        .options(**spark_source_options(config.kafka))
        .option("assign", json.dumps({topic: sorted(offsets)}))
        .option(
            "startingOffsets", json.dumps({topic: {str(p): a for p, (a, _) in offsets.items()}})
        )
        .option(
            "endingOffsets", json.dumps({topic: {str(p): b + 1 for p, (_, b) in offsets.items()}})
        )
        .option("failOnDataLoss", "true")
        .load()
    )
