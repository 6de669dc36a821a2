"""The event contract inside Spark: parse_kafka gives exactly the plain classifier's verdicts."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from clickstream_spark.ingest.contract import (
    MAX_MESSAGE_BYTES,
    MAX_URL_BYTES,
    MIN_TIMESTAMP_US,
    EventTimeLimits,
    Verdict,
    classify,
)
from clickstream_spark.ingest.event_time import epoch_micros
from clickstream_spark.ingest.parse import (
    oversized_quarantine,
    parse_kafka,
    quarantine_rows,
    raw_left_out,
    valid_events,
)
from clickstream_spark.schema import (
    EVENT_SCHEMA,
    KAFKA_SOURCE_SCHEMA,
    PARSED_SCHEMA,
    QUARANTINE_SCHEMA,
)
from clickstream_spark.tools.generate import generate_messages
from tests.unit.test_contract import ANY_TIME, DROP, READ_AT, encode, event

KAFKA_TS = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
INGESTED = datetime(2024, 5, 2, 8, 0, tzinfo=UTC)


def kafka_rows(values: list[bytes | None]) -> list[tuple[Any, ...]]:
    return [(b"k", v, "clickstream_topic", i % 3, 100 + i, KAFKA_TS) for i, v in enumerate(values)]


MESSAGES: list[bytes | None] = [
    encode(event()),  # offset 100
    encode(event(row_key=42, user_id=7, timestamp=1714558830123, country="", city=None)),
    encode(event(row_key="r-3", timestamp="2024-05-01T15:50:30.123+05:30", os=DROP)),
    None,  # tombstone
    b"\xffnot utf-8",
    b'{"url":"/a","url":"/b"}',
    encode(event(url="")),
    b"[1, 2]",
    encode(event(row_key="r-9", timestamp="1969-07-20T20:17:40+00:00", device="tv")),  # < 1970
]


def test_parse_kafka_splits_into_exact_valid_and_quarantine_rows(spark: SparkSession) -> None:
    kafka = spark.createDataFrame(kafka_rows(MESSAGES), KAFKA_SOURCE_SCHEMA)
    parsed = parse_kafka(kafka, read_at=F.lit(READ_AT))
    assert [(f.name, f.dataType) for f in parsed.schema] == [
        (f.name, f.dataType) for f in PARSED_SCHEMA
    ]
    url = "https://shop.example.com/"
    ts = datetime(2024, 5, 1, 10, 20, 30, 123000, tzinfo=UTC)
    expected_events = spark.createDataFrame(
        [
            ("r-1", "u-1", ts, url, "FR", "Paris", "Firefox", "Linux", "desktop"),
            ("42", "7", ts, url, None, None, "Firefox", "Linux", "desktop"),
            ("r-3", "u-1", ts, url, "FR", "Paris", "Firefox", None, "desktop"),
        ],
        EVENT_SCHEMA,
    )
    quarantined = quarantine_rows(parsed, F.lit(INGESTED))
    expected_quarantine = spark.createDataFrame(
        [
            ("clickstream_topic", 0, 103, None, "none", "empty_value", KAFKA_TS, INGESTED),
            (
                "clickstream_topic",
                1,
                104,
                base64.b64encode(b"\xffnot utf-8").decode(),
                "base64",
                "invalid_utf8",
                KAFKA_TS,
                INGESTED,
            ),
            (
                "clickstream_topic",
                2,
                105,
                '{"url":"/a","url":"/b"}',
                "utf8",
                "duplicate_key",
                KAFKA_TS,
                INGESTED,
            ),
            (
                "clickstream_topic",
                0,
                106,
                MESSAGES[6].decode(),
                "utf8",  # type: ignore[union-attr]
                "missing_or_bad:url",
                KAFKA_TS,
                INGESTED,
            ),
            ("clickstream_topic", 1, 107, "[1, 2]", "utf8", "not_an_object", KAFKA_TS, INGESTED),
            (
                "clickstream_topic",
                2,
                108,
                MESSAGES[8].decode(),  # type: ignore[union-attr]
                "utf8",
                "missing_or_bad:timestamp",
                KAFKA_TS,
                INGESTED,
            ),
        ],
        QUARANTINE_SCHEMA,
    )
    assertDataFrameEqual(valid_events(parsed), expected_events)
    assertDataFrameEqual(quarantined, expected_quarantine)
    assert valid_events(parsed).columns == EVENT_SCHEMA.names
    assert quarantined.columns == QUARANTINE_SCHEMA.names


def test_parse_kafka_agrees_with_classify_row_for_row(spark: SparkSession) -> None:
    # The plain function is the oracle: Spark must give exactly its verdict for every message.
    generated = generate_messages(
        1500,
        start=datetime(2024, 5, 1, tzinfo=UTC),
        end=datetime(2024, 5, 2, tzinfo=UTC),
        bad_fraction=0.3,
        seed=11,
    )
    values = [m.value for m in generated] + [
        encode(event(timestamp="2099-12-31T23:59:59.999999Z")),
        encode(event(timestamp=MIN_TIMESTAMP_US // 1000)),
    ]
    kafka = spark.createDataFrame(kafka_rows(values), KAFKA_SOURCE_SCHEMA).repartition(3)
    got = {
        row["offset"]: row
        for row in parse_kafka(kafka, ANY_TIME, read_at=F.lit(READ_AT))
        .withColumn("timestamp_us", F.unix_micros("timestamp"))
        .drop("timestamp")
        .collect()
    }
    assert len(got) == len(values)
    for i, value in enumerate(values):
        v = classify(value, READ_AT, ANY_TIME)
        row = got[100 + i]
        assert row["reason"] == v.reason
        assert tuple(row[f] for f in ("raw_value", "raw_encoding")) == (v.raw_value, v.raw_encoding)
        assert tuple(row[f] for f in Verdict._fields[1:10]) == tuple(v[1:10]), value


def test_messages_over_the_limit_are_quarantined_natively_as_classify_does(
    spark: SparkSession,
) -> None:
    # The stream keeps their values away from Python and its cache: the reason is decided
    # natively (parse_kafka with oversized_raw=False), the raw copy by oversized_quarantine. Both
    # must say exactly what classify says.
    over = MAX_MESSAGE_BYTES + 1
    values = [
        b" " * over,  # only JSON whitespace: empty at any size
        b"\r\n\t " * (over // 4 + 1),
        b"\f" * over,  # not JSON whitespace
        b" " * (over - 1) + b"x",
        encode(event(url="/" + "a" * over)),  # a valid event, but too large
        ("é" * over).encode(),  # UTF-8, multi-byte
        b"\xff" + b"a" * over,  # not UTF-8
        b"a" * over + b"\xed\xa0\x80",  # an encoded surrogate: not UTF-8 for either
        b"a" * over + b"\xc0\xaf",  # an overlong encoding
        b"a" * over + "\ufffd".encode(),  # the replacement character itself is fine
        b"\x00" * over,
    ]
    kafka = spark.createDataFrame(kafka_rows(values), KAFKA_SOURCE_SCHEMA).repartition(2)
    at = F.lit(datetime(2024, 5, 2, 3, 4, 5))
    lean_rows = parse_kafka(kafka, read_at=F.lit(READ_AT), oversized_raw=False).collect()
    lean = {row["offset"]: row for row in lean_rows}
    raw = {row["offset"]: row for row in oversized_quarantine(kafka, at).collect()}
    assert len(lean) == len(raw) == len(values)
    for i, value in enumerate(values):
        v = classify(value, READ_AT)
        assert (lean[100 + i]["reason"], lean[100 + i]["raw_encoding"]) == (v.reason, None), i
        assert lean[100 + i]["row_key"] is None and lean[100 + i]["timestamp"] is None
        assert (raw[100 + i]["reason"], raw[100 + i]["raw_encoding"]) == (v.reason, v.raw_encoding)
        assert raw[100 + i]["raw_value"] == v.raw_value, i


def test_oversized_messages_can_be_quarantined_from_the_source_instead(
    spark: SparkSession,
) -> None:
    # What the stream does: its cached batch leaves their raw copies out, and their quarantine
    # rows are computed from Kafka again. Together: exactly the quarantine of parse_kafka.
    over = MAX_MESSAGE_BYTES + 1
    values = [b" " * over, b"\xff" * over, encode(event()), b"{", None, b"x" * over]
    kafka = spark.createDataFrame(kafka_rows(values), KAFKA_SOURCE_SCHEMA)
    at = F.lit(datetime(2024, 5, 2, 3, 4, 5))
    lean = parse_kafka(kafka, read_at=F.lit(READ_AT), oversized_raw=False)
    left_out = lean.filter(raw_left_out())
    assert sorted(r["offset"] for r in left_out.collect()) == [100, 101, 105]
    assert sorted(r["offset"] for r in quarantine_rows(lean, at).collect()) == [103, 104]
    assert sorted(r["offset"] for r in oversized_quarantine(kafka, at).collect()) == [100, 101, 105]
    assertDataFrameEqual(
        quarantine_rows(lean, at).unionByName(oversized_quarantine(kafka, at)),
        quarantine_rows(parse_kafka(kafka, read_at=F.lit(READ_AT)), at),
    )
    assert lean.count() == len(values)


def test_valid_plus_quarantined_is_everything(spark: SparkSession) -> None:
    kafka = spark.createDataFrame(kafka_rows(MESSAGES * 7), KAFKA_SOURCE_SCHEMA).repartition(4)
    parsed = parse_kafka(kafka, read_at=F.lit(READ_AT))
    valid, bad = (
        valid_events(parsed).count(),
        quarantine_rows(parsed, F.current_timestamp()).count(),
    )
    assert (valid, bad) == (3 * 7, 6 * 7)


def test_empty_input_gives_empty_outputs(spark: SparkSession) -> None:
    parsed = parse_kafka(spark.createDataFrame([], KAFKA_SOURCE_SCHEMA), read_at=F.lit(READ_AT))
    assert valid_events(parsed).count() == 0
    assert quarantine_rows(parsed, F.current_timestamp()).count() == 0


def test_extra_kafka_columns_are_ignored(spark: SparkSession) -> None:
    kafka = spark.createDataFrame(kafka_rows(MESSAGES[:1]), KAFKA_SOURCE_SCHEMA).withColumn(
        "timestampType", F.lit(0)
    )
    expected = spark.createDataFrame(
        [("r-1", "u-1", datetime(2024, 5, 1, 10, 20, 30, 123000, tzinfo=UTC),
          "https://shop.example.com/", "FR", "Paris", "Firefox", "Linux", "desktop")],
        EVENT_SCHEMA,
    )  # fmt: skip
    assertDataFrameEqual(valid_events(parse_kafka(kafka, read_at=F.lit(READ_AT))), expected)


def test_event_times_are_judged_against_the_read_moment(spark: SparkSession) -> None:
    # Two days ahead of READ_AT: out of range then; read three days later, a valid past event.
    ahead = encode(event(row_key="ahead", timestamp="2024-05-04T00:00:00Z"))
    long_url = encode(event(row_key="long", url="/" + "a" * MAX_URL_BYTES))
    kafka = spark.createDataFrame(kafka_rows([ahead, long_url]), KAFKA_SOURCE_SCHEMA)
    now = [(r["offset"], r["reason"]) for r in parse_kafka(kafka, read_at=F.lit(READ_AT)).collect()]
    assert sorted(now) == [(100, "out_of_range:timestamp"), (101, "too_long:url")]
    later = F.lit(READ_AT + timedelta(days=3))
    assert [r["row_key"] for r in valid_events(parse_kafka(kafka, read_at=later)).collect()] == [
        "ahead"
    ]
    limits = EventTimeLimits(max_age=timedelta(hours=1), max_lead=timedelta(days=1))
    assert valid_events(parse_kafka(kafka, limits, read_at=later)).count() == 0


def test_the_read_moment_is_one_moment(spark: SparkSession) -> None:
    # Escaped: the JVM leaves these to the Python parser, whose batches must be read at one moment.
    escaped = encode(event(url="https://x.example.com/caf\\u00e9"))
    kafka = spark.createDataFrame(kafka_rows([escaped] * 2), KAFKA_SOURCE_SCHEMA)
    per_row = F.timestamp_micros(F.lit(epoch_micros(READ_AT)) + F.col("offset"))
    with pytest.raises(Exception, match="read_at must be one moment per batch"):
        parse_kafka(kafka.coalesce(1), read_at=per_row).collect()
