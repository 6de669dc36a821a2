"""The JVM's decisions (ingest.native) against classify: the same verdict and row, or no answer.

Messages are drawn by the strategies of test_contract_properties (valid events in every accepted
form, mutated ones, hostile bytes) and written by hand at the edges the JVM could read differently
from Python: 64-bit integers, every timestamp form and offset, invalid calendar dates, key case,
duplicated keys, raw and escaped Unicode, U+FFFD, BOMs. Each row is judged at its own read moment
and limits, in one Spark job.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import BinaryType, LongType, StructField, StructType

from clickstream_spark.ingest.contract import (
    MAX_FIELD_BYTES,
    MAX_MESSAGE_BYTES,
    MAX_TIMESTAMP_US,
    MAX_URL_BYTES,
    classify,
)
from clickstream_spark.ingest.event_time import EventTimeLimits, epoch_micros
from clickstream_spark.ingest.native import with_native_verdicts
from clickstream_spark.schema import EVENT_FIELDS
from clickstream_spark.tools.generate import generate_messages
from tests.unit.test_contract_properties import (
    ANY_TIME,
    Moment,
    _accepted,
    _moments,
    batch_settings,
    events,
    messages,
    render,
)

_SCHEMA = StructType(
    [
        StructField("id", LongType()),
        StructField("value", BinaryType()),
        StructField("first_us", LongType()),
        StructField("last_us", LongType()),
    ]
)
_EVENT = ("row_key", "user_id", "timestamp_us", "url", "country", "city", "browser", "os", "device")


def _event(**fields: Any) -> bytes:
    base: dict[str, Any] = {
        "row_key": "r-1",
        "user_id": "u-1",
        "timestamp": "2024-05-01T12:00:00Z",
        "url": "https://shop.example.com/",
        "country": "FR",
    }
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not None}, ensure_ascii=False).encode()


def _raw(text: str) -> bytes:
    return text.encode("utf-8")


# Where a JVM reading could part from Python's: each is judged at ANY_TIME.
EDGES: list[bytes | None] = [
    None,
    b"",
    b"{}",
    b"null",
    b"\xef\xbb\xbf" + _event(),  # a BOM: malformed for Python
    _event() + b" x",
    _event() + b"\n",
    b" \r\n\t" + _event() + b"\t ",
    *(_event(row_key=n) for n in (0, -1, 2**63 - 1, -(2**63), 2**63, 10**17, 10**18, 10**19)),
    *(_event(user_id=n) for n in (12345678901234567, -12345678901234567)),
    _raw('{"row_key":-0,"user_id":"u","timestamp":"2024-05-01T12:00:00Z","url":"/"}'),
    _raw('{"row_key":01,"user_id":"u","timestamp":"2024-05-01T12:00:00Z","url":"/"}'),
    _raw('{"row_key":1.0,"user_id":"u","timestamp":"2024-05-01T12:00:00Z","url":"/"}'),
    _raw('{"row_key":1e3,"user_id":"u","timestamp":"2024-05-01T12:00:00Z","url":"/"}'),
    _raw('{"row_key":true,"user_id":"u","timestamp":"2024-05-01T12:00:00Z","url":"/"}'),
    *(
        _event(timestamp=t)
        for t in (
            "2024-05-01T12:00:00Z",
            "2024-05-01T12:00Z",
            "2024-05-01T12:00:00.1Z",
            "2024-05-01T12:00:00.123456Z",
            "2024-05-01T12:00:00.1234567Z",
            "2024-05-01T12:00:00+18:00",
            "2024-05-01T12:00:00-18:00",
            "2024-05-01T12:00:00+19:00",
            "2024-05-01T12:00:00-23:59",
            "2024-05-01T12:00:00+24:00",
            "2024-05-01T12:00:00+05:60",
            "2024-05-01T12:00:00+0530",
            "2024-05-01T12:00:00",
            "2024-05-01 12:00:00Z",
            "2024-02-29T12:00:00Z",
            "2023-02-29T12:00:00Z",
            "2024-04-31T12:00:00Z",
            "2024-13-01T12:00:00Z",
            "2024-05-01T24:00:00Z",
            "2024-05-01T23:60:00Z",
            "2024-05-01T23:59:60Z",
            "1970-01-01T00:00:00Z",
            "1969-12-31T23:59:59.999999Z",
            "2099-12-31T23:59:59.999999Z",
            "2100-01-01T00:00:00Z",
            "1714564800000",
            " 2024-05-01T12:00:00Z",
            "2024-05-01T12:00:00z",
            "2024-05-01t12:00:00Z",
            "+2024-05-01T12:00:00Z",
            "١٩٧٠-01-01T00:00:00Z",
        )
    ),
    *(
        _event(timestamp=n)
        for n in (0, -1, 1714564800000, 4102444799999, 4102444800000, 10**13, 10**15, 2**63 - 1)
    ),
    _raw('{"row_key":"r","user_id":"u","timestamp":1714564800000.0,"url":"/"}'),
    _raw('{"row_key":"r","user_id":"u","timestamp":null,"url":"/"}'),
    _raw('{"row_key":"r","user_id":"u","timestamp":"2024-05-01T12:00:00Z","url":5}'),
    _raw('{"row_key":"r","user_id":"u","timestamp":"2024-05-01T12:00:00Z","URL":"/"}'),
    _raw('{"Row_Key":"r","row_key":"q","user_id":"u","timestamp":1714564800000,"url":"/"}'),
    _raw('{"row_key":"r","row_key":"r","user_id":"u","timestamp":1714564800000,"url":"/"}'),
    _raw('{"row_key":"r","user_id":"u","timestamp":1714564800000,"url":"/","a":1,"a":2}'),
    _raw('{"row_key":"r","user_id":"u","timestamp":1714564800000,"url":"/","x":{"a":1}}'),
    _raw('{"row_key":"r","user_id":"u","timestamp":1714564800000,"url":"/","x":[1]}'),
    _raw('{"row_key":"r","user_id":"u","timestamp":1714564800000,"url":"/","x":true}'),
    _raw('{"row_key":"r","user_id":"u","timestamp":1714564800000,"url":"/","é":"1"}'),
    _raw('{"row_key":"r","user_id":"u","timestamp":1714564800000,"url":"/","country":7}'),
    _raw('{"row_key":"r","user_id":"u","timestamp":1714564800000,"url":"/","city":-7}'),
    _raw('{"row_key":"r","user_id":"u","timestamp":1714564800000,"url":"/","os":null}'),
    _raw('{"row_key":"r","user_id":"u","timestamp":1714564800000,"url":"/","os":"   "}'),
    _raw('{"row_key":"r","user_id":"u","timestamp":1714564800000,"url":"/","os":"\\t"}'),
    _raw('{"row_key":"  ","user_id":"u","timestamp":1714564800000,"url":"/"}'),
    _raw('{"row_key":"r","user_id":"u","timestamp":1714564800000,"url":"\\u0000"}'),
    _raw('{"row_key":"r","user_id":"u","timestamp":1714564800000,"url":"a\tb"}'),
    _raw('{"row_key":"r","user_id":"u","timestamp":1714564800000,"url":"\\ud800"}'),
    _raw('{"row_key":"r","user_id":"u","timestamp":1714564800000,"url":"\u00a0"}'),
    _raw('{"row_key":"r","user_id":"u","timestamp":1714564800000,"url":"\ufffd"}'),
    _raw('{"row_key":"r","user_id":"u","timestamp":1714564800000,"url":"東京 😀 ä"}'),
    b'{"row_key":"r","user_id":"u","timestamp":1714564800000,"url":"\xff"}',
    b'{"row_key":"r","user_id":"u","timestamp":1714564800000,"url":"\xed\xa0\x80"}',
    b'{"row_key":"r","user_id":"u","timestamp":1714564800000,"url":"\xc0\xaf"}',
    *(
        _raw('{"row_key":"r","user_id":"u","timestamp":1714564800000,"url":"/",' + rest + "}")
        for rest in (
            '"a":"b",":x":1,":x":2',
            '"x:":1,"x:":2',
            '"sdk":3,"sdk":3',
            '"sdk":3,"Sdk":3',
            '"":1,"":2',
            '"x":1.5',
            '"x":-0,"y":99999999999999999999999',
            '"x":"\\"',
            '"x\\u0061":1,"xa":2',
        )
    ),
    _raw('{"row_key":"r","user_id":"u","timestamp":1714564800000,"url" :"/"}'),
    _event(row_key="x" * 256),
    _event(row_key="x" * 257),
    _event(row_key="é" * 128),
    _event(row_key="é" * 129),
    _event(url="/" + "x" * 8191),
    _event(url="/" + "x" * 8192),
    _event(city="😀" * 64),
    _event(city="😀" * 65),
    _raw(
        '{"row_key":"r","user_id":"u","timestamp":1714564800000,"url":"/",'
        + ",".join(f'"k{i}":{i}' for i in range(59))
        + "}"
    ),
    _raw(
        '{"row_key":"r","user_id":"u","timestamp":1714564800000,"url":"/",'
        + ",".join(f'"k{i}":{i}' for i in range(61))
        + "}"
    ),
]


def _draw(size: int) -> list[tuple[bytes | None, Moment]]:
    """``size`` (message, moment) pairs, half valid events in every accepted form, the same every
    run (a batch: no shrinking)."""
    drawn: list[tuple[bytes | None, Moment]] = []

    @batch_settings(size)
    @given(
        st.one_of(
            events().map(lambda e: render(e.members, e.ws)), messages().map(lambda m: m.value)
        ),
        _moments,
    )
    def collect(value: bytes | None, moment: Moment) -> None:
        drawn.append((value, moment))

    collect()
    return drawn


def _judge(spark: SparkSession, cases: list[tuple[bytes | None, Moment]]) -> dict[int, tuple]:
    """The JVM's answer per case: the event row when it decides, absent when it leaves it."""
    rows = [(i, value, *_accepted(moment)) for i, (value, moment) in enumerate(cases)]
    frame = spark.createDataFrame(rows, _SCHEMA)
    decided = with_native_verdicts(frame, F.col("first_us"), F.col("last_us"))
    answered = decided.filter("native").select("id", *(f"native_event.{f}" for f in _EVENT))
    return {r["id"]: tuple(r)[1:] for r in answered.collect()}


def _exact(value: bytes | None, moment: Moment) -> tuple:
    verdict = classify(value, *moment)
    return (verdict.reason, *verdict[1:10])


def test_the_jvm_answers_only_what_classify_would(spark: SparkSession) -> None:
    cases = [(v, ANY_TIME) for v in EDGES] + _draw(1500)
    answered = _judge(spark, cases)
    for i, row in answered.items():
        value, moment = cases[i]
        assert (None, *row) == _exact(value, moment), value
    assert len(answered) >= 100  # drawn valid events are mostly edge forms (big ints, escapes)


# Forms of a valid event the JVM must decide itself: anything else costs a Python round trip.
PLAIN: list[bytes] = [
    _event(),
    _event(row_key=7, user_id=-123456789012345678),
    _event(timestamp=1714564800123),
    _event(timestamp="2024-05-01T12:00:00.5+05:30"),
    _event(timestamp="2024-05-01T12:00:00.123456-08:00"),
    _event(country=None, city="", browser="  ", os="Linux", device="tablet"),
    _event(city="Zürich", url="https://e.example/ä?x=東京#f"),
    _raw('{ "row_key": "r" ,\n"user_id":"u",\t"timestamp":1714564800000,"url":"/","os":null }'),
    _raw(
        '{"row_key":"r","user_id":"u","timestamp":1714564800000,"url":"/","":1,"ref":"x","n":null,'
        '"b":true,"sdk_version":3,"x":-0}'
    ),
]


def test_plain_events_are_decided_in_the_jvm(spark: SparkSession) -> None:
    answered = _judge(spark, [(v, ANY_TIME) for v in PLAIN])
    assert sorted(answered) == list(range(len(PLAIN)))
    assert all((None, *answered[i]) == _exact(v, ANY_TIME) for i, v in enumerate(PLAIN))


@pytest.mark.parametrize("bad_fraction", [0.0, 0.02])
def test_generated_clickstream_is_decided_in_the_jvm(
    spark: SparkSession, bad_fraction: float
) -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    sent = generate_messages(
        2000, start=start, end=start + timedelta(days=1), bad_fraction=bad_fraction, seed=3
    )
    moment = Moment(start + timedelta(days=1), EventTimeLimits())
    cases = [(m.value, moment) for m in sent]
    answered = _judge(spark, cases)
    valid = {i for i, (v, m) in enumerate(cases) if _exact(v, m)[0] is None}
    assert set(answered) == valid
    assert all((None, *answered[i]) == _exact(*cases[i]) for i in valid)


def test_the_read_moment_bounds_the_event_time(spark: SparkSession) -> None:
    at = datetime(2024, 5, 1, 12, tzinfo=UTC)
    value = _event(timestamp=epoch_micros(at) // 1000)
    limits = EventTimeLimits(timedelta(seconds=1), timedelta(0))
    moments = [
        Moment(at + timedelta(microseconds=d), limits) for d in (-1, 0, 1_000_000, 1_000_001)
    ]
    answered = _judge(spark, [(value, m) for m in moments])
    assert sorted(answered) == [1, 2]


def test_the_jvm_bounds_are_the_contracts(spark: SparkSession) -> None:
    native = spark.sparkContext._jvm.clickstream.NativeEvent
    assert (
        native.MAX_MESSAGE_BYTES,
        native.MAX_FIELD_BYTES,
        native.MAX_URL_BYTES,
        native.MAX_TIMESTAMP_US,
    ) == (MAX_MESSAGE_BYTES, MAX_FIELD_BYTES, MAX_URL_BYTES, MAX_TIMESTAMP_US)
    assert list(native.FIELDS) == list(EVENT_FIELDS)
