"""The stream's own plumbing, without servers: observed metrics, batch counts, the batch line."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import Callable
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from clickstream_spark.erasure.erased_users import mark_erased
from clickstream_spark.ingest.batch import BatchSummary, _count, _Counts
from clickstream_spark.ingest.contract import MAX_MESSAGE_BYTES
from clickstream_spark.ingest.parse import parse_kafka, quarantine_rows, valid_events
from clickstream_spark.ingest.query import OBSERVATION_NAME, observed
from clickstream_spark.schema import KAFKA_SOURCE_SCHEMA

VALID = json.dumps(
    {"row_key": "r1", "user_id": "u1", "timestamp": "2026-01-01T00:00:00Z", "url": "/"}
).encode()


def _event_at(moment: dt.datetime) -> bytes:
    return VALID.replace(b"2026-01-01T00:00:00Z", moment.isoformat().encode())


def _drain(
    source: DataFrame, sink: Callable[[DataFrame, int], None], checkpoint: Path
) -> StreamingQuery:
    """The stream's query shape over ``source`` (observed, parsed, foreachBatch), run until it
    has read everything."""
    query = (
        observed(parse_kafka(source))
        .writeStream.foreachBatch(sink)
        .option("checkpointLocation", str(checkpoint))
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination(120)
    return query


def test_observed_counts_reach_the_streaming_progress(spark: SparkSession, tmp_path: Path) -> None:
    # A file source stands in for Kafka: same columns, same parser, same foreachBatch shape. The
    # micro-batch is read now: an event of an hour ago is valid, one two days ahead is not.
    now = dt.datetime.now(dt.UTC)
    rows = [
        (b"k", _event_at(now - dt.timedelta(hours=1)), "t", 0, 0, dt.datetime(2026, 1, 1)),
        (b"k", b"not json", "t", 0, 1, dt.datetime(2026, 1, 1)),
        (b"k", None, "t", 1, 0, dt.datetime(2026, 1, 1)),
        (b"k", _event_at(now + dt.timedelta(days=2)), "t", 1, 1, dt.datetime(2026, 1, 1)),
    ]
    spark.createDataFrame(rows, KAFKA_SOURCE_SCHEMA).write.parquet(str(tmp_path / "in"))
    source = spark.readStream.schema(KAFKA_SOURCE_SCHEMA).parquet(str(tmp_path / "in"))
    seen: list[int] = []

    def sink(batch: DataFrame, _batch_id: int) -> None:
        seen.append(batch.count())

    query = _drain(source, sink, tmp_path / "checkpoint")
    progress = next(p for p in query.recentProgress if p["numInputRows"] > 0)
    assert seen == [4]
    assert progress["observedMetrics"][OBSERVATION_NAME] == {
        "rows": 4,
        "valid": 1,
        "quarantined": 3,
    }


def test_micro_batches_after_the_first_compile_no_code(spark: SparkSession, tmp_path: Path) -> None:
    # Each micro-batch has its own moment (the read moment, the quarantine's ingested_at): were it
    # written into the generated Java, every micro-batch would compile new classes.
    compilations = spark.sparkContext._jvm.org.apache.spark.metrics.source.CodegenMetrics
    now = dt.datetime.now(dt.UTC)
    for part in range(3):
        rows = [
            (b"k", _event_at(now - dt.timedelta(minutes=part)), "t", 0, 2 * part, now),
            (b"k", b"not json", "t", 1, 2 * part + 1, now),
        ]
        frame = spark.createDataFrame(rows, KAFKA_SOURCE_SCHEMA).coalesce(1)
        frame.write.mode("append").parquet(str(tmp_path / "in"))
    source = (
        spark.readStream.schema(KAFKA_SOURCE_SCHEMA)
        .option("maxFilesPerTrigger", 1)
        .parquet(str(tmp_path / "in"))
    )
    written: list[tuple[int, int]] = []
    compiled: list[int] = []  # by the end of each micro-batch, since Spark started

    def sink(batch: DataFrame, _batch_id: int) -> None:
        batch.persist()
        events = valid_events(batch).count()
        bad = quarantine_rows(batch, F.lit(dt.datetime.now(dt.UTC))).count()
        batch.unpersist()
        written.append((events, bad))
        compiled.append(compilations.METRIC_COMPILATION_TIME().getCount())

    _drain(source, sink, tmp_path / "checkpoint")

    assert written == [(1, 1)] * 3
    assert [later - earlier for earlier, later in itertools.pairwise(compiled)] == [0, 0]


def test_the_counts_of_a_batch_come_from_one_scan(spark: SparkSession) -> None:
    # Partition 0: a valid event at 00:10 (it also touches the previous day's 23:00 hour), a
    # message left out of the cache for its size, and a tombstone; partition 1: one valid event
    # at 01:45 (it also touches the 02:00 hour).
    over = b" x" * (MAX_MESSAGE_BYTES // 2 + 1)
    at_0010 = VALID.replace(b"00:00:00Z", b"00:10:00Z")
    rows = [
        (b"k", at_0010, "t", 0, 5, dt.datetime(2026, 1, 1)),
        (b"k", over, "t", 0, 6, dt.datetime(2026, 1, 1)),
        (b"k", None, "t", 0, 7, dt.datetime(2026, 1, 1)),
        (b"k", VALID.replace(b"00:00:00Z", b"01:45:00Z"), "t", 1, 40, dt.datetime(2026, 1, 1)),
    ]
    read_at = F.lit(dt.datetime(2026, 1, 2, tzinfo=dt.UTC))
    kafka = spark.createDataFrame(rows, KAFKA_SOURCE_SCHEMA)
    parsed = parse_kafka(kafka, read_at=read_at, oversized_raw=False)
    hour = dt.datetime(2026, 1, 1)
    assert _count(mark_erased(parsed, None)) == _Counts(
        offsets={0: (5, 7), 1: (40, 40)},
        oversized_spans={0: (6, 6)},
        rows=4,
        valid=2,
        erased=0,
        oversized=1,
        windows=[
            ("hour", hour - dt.timedelta(hours=1)),
            ("hour", hour),
            ("hour", hour + dt.timedelta(hours=1)),
            ("hour", hour + dt.timedelta(hours=2)),
            ("day", hour - dt.timedelta(days=1)),
            ("day", hour),
        ],
        by_reason={"too_large": 1, "empty_value": 1},
    )


def test_events_of_erased_users_are_counted_and_mark_no_window(spark: SparkSession) -> None:
    # u1's two events are erased, and the bad message that names u1; u2's event at 01:45 is
    # stored and marks its windows; the bad message naming nobody stays bad.
    rows = [
        (b"k", VALID.replace(b"00:00:00Z", b"00:10:00Z"), "t", 0, 5, dt.datetime(2026, 1, 1)),
        (b"k", VALID, "t", 0, 6, dt.datetime(2026, 1, 1)),
        (b"k", b"{", "t", 0, 7, dt.datetime(2026, 1, 1)),
        (b"k", VALID.replace(b'"u1"', b'"u2"').replace(b"00:00:00Z", b"01:45:00Z"), "t", 1, 40,
         dt.datetime(2026, 1, 1)),
        (b"k", b'{"user_id": "u1", "url": ', "t", 1, 41, dt.datetime(2026, 1, 1)),
    ]  # fmt: skip
    read_at = F.lit(dt.datetime(2026, 1, 2, tzinfo=dt.UTC))
    parsed = parse_kafka(spark.createDataFrame(rows, KAFKA_SOURCE_SCHEMA), read_at=read_at)
    erased = spark.createDataFrame([("u1",), ("u9",)], "user_id string")

    marked = mark_erased(parsed, erased)

    assert marked.columns == [*parsed.columns, "erased"]
    flags = {(r["offset"], r["user_id"], r["erased"]) for r in marked.collect()}
    assert flags == {
        (5, "u1", True),
        (6, "u1", True),
        (7, None, False),
        (40, "u2", False),
        (41, None, True),
    }
    hour = dt.datetime(2026, 1, 1, 1)
    assert _count(marked) == _Counts(
        offsets={0: (5, 7), 1: (40, 41)},
        oversized_spans={},
        rows=5,
        valid=1,
        erased=3,
        oversized=0,
        windows=[
            ("hour", hour),
            ("hour", hour + dt.timedelta(hours=1)),
            ("day", dt.datetime(2026, 1, 1)),
        ],
        by_reason={"malformed_json": 1},  # offset 41 names an erased user: not counted
    )


def test_batch_summary_line() -> None:
    summary = BatchSummary(7, {1: (10, 19), 0: (0, 4)}, 15, 11, 3, 4, 2.345, erased=1)
    assert summary.line() == (
        "batch 7: offsets [p0:0-4 p1:10-19] rows 15 valid 11 quarantined 3 erased 1 windows 4 "
        "in 2.3s"
    )
    empty = BatchSummary(8, {}, 0, 0, 0, 0, 0.1)
    assert empty.line() == (
        "batch 8: offsets [none] rows 0 valid 0 quarantined 0 erased 0 windows 0 in 0.1s"
    )
