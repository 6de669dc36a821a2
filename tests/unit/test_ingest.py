"""The stream's own plumbing, without servers: observed metrics and the progress line."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

from clickstream_spark.ingest.batch import OBSERVATION_NAME, BatchReport, observed
from clickstream_spark.ingest.parse import parse_kafka
from clickstream_spark.schema import KAFKA_SOURCE_SCHEMA

VALID = json.dumps(
    {"row_key": "r1", "user_id": "u1", "timestamp": "2026-01-01T00:00:00Z", "url": "/"}
).encode()


def test_observed_counts_reach_the_streaming_progress(spark: SparkSession, tmp_path: Path) -> None:
    # A file source stands in for Kafka: same columns, same parser, same foreachBatch shape.
    rows = [
        (b"k", VALID, "t", 0, 0, dt.datetime(2026, 1, 1)),
        (b"k", b"not json", "t", 0, 1, dt.datetime(2026, 1, 1)),
        (b"k", None, "t", 1, 0, dt.datetime(2026, 1, 1)),
    ]
    spark.createDataFrame(rows, KAFKA_SOURCE_SCHEMA).write.parquet(str(tmp_path / "in"))
    source = spark.readStream.schema(KAFKA_SOURCE_SCHEMA).parquet(str(tmp_path / "in"))
    seen: list[int] = []

    def sink(batch: DataFrame, _batch_id: int) -> None:
        seen.append(batch.count())

    query = (
        observed(parse_kafka(source))
        .writeStream.foreachBatch(sink)
        .option("checkpointLocation", str(tmp_path / "checkpoint"))
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination(120)
    progress = next(p for p in query.recentProgress if p["numInputRows"] > 0)
    assert seen == [3]
    assert progress["observedMetrics"][OBSERVATION_NAME] == {
        "rows": 3,
        "valid": 1,
        "quarantined": 2,
    }


def test_batch_report_line() -> None:
    report = BatchReport(7, {1: (10, 19), 0: (0, 4)}, 15, 12, 3, 4, 2.345)
    assert report.line() == (
        "batch 7: offsets [p0:0-4 p1:10-19] rows 15 valid 12 quarantined 3 windows 4 in 2.3s"
    )
    empty = BatchReport(8, {}, 0, 0, 0, 0, 0.1)
    assert "offsets [none] rows 0" in empty.line()
