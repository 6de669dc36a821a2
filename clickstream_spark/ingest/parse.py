"""Kafka message → typed click event, or a quarantine row saying why not.

The contract (one JSON object per message) is enforced by :func:`classify`, a plain function on
the raw bytes. The Spark side (:func:`parse_kafka`) runs that same function over Arrow batches, so
what the unit tests prove about ``classify`` is what the stream does: no second implementation.

Why Python and not ``from_json``: Spark's JSON reader turns any scalar into a StringType field (it
cannot tell ``"123"`` from ``123`` or ``true``), silently keeps the last of duplicated keys and
accepts timestamps without a zone. ``json`` with hooks sees all of that exactly.

Every message ends up in exactly one output: ``reason`` is null for a valid event and one of
:data:`REASONS` otherwise, and nothing about the content can make the transform raise.

Cost: the Python side takes ~9 µs per generated message on one core (bench/parse.py), a quarter of
it orjson: :func:`_fast_row` gives the exact verdict of plain valid events, everything else takes
the exact path (~15 µs). Before the fast path the whole classifier ran at ~85k rows/s on
local[2] (noop sink), against ~250k for a bare ``from_json`` into strings. A native fast path was
measured and rejected: proving a row unambiguous natively (one regex over the message for token
types, escapes and duplicates, plus ``json_object_keys``) ran at ~35k rows/s. ``mapInArrow``
beats a scalar pandas UDF (~65k rows/s) by skipping pandas on both sides.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple

import orjson
import pyarrow as pa
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StringType, StructField, StructType

from clickstream_spark.schema import (
    EVENT_FIELDS,
    EVENT_SCHEMA,
    OPTIONAL_FIELDS,
    PARSED_SCHEMA,
)

# A click event is ~300 bytes; the longest legitimate one (an 8 KiB URL, the practical limit of
# browsers and CDNs, plus every optional field) stays under 16 KiB. 64 KiB leaves 4x headroom over
# that while bounding what one message costs: Python parse time (~0.2 ms at worst) and the size of
# a quarantine cell in Cassandra. The broker's own default (message.max.bytes = 1 MiB) is far too
# loose to be the contract: anything between the two is abuse or a bug, and is quarantined whole.
MAX_MESSAGE_BYTES = 64 * 1024

# Rows per Arrow batch between the JVM and the Python parser (the stream sets
# spark.sql.execution.arrow.maxRecordsPerBatch to it). Spark 3.5 sizes these batches by rows only,
# and the JVM side of a batch is one direct-memory buffer (capped by the heap size): Spark's
# default of 10,000 rows of values up to MAX_MESSAGE_BYTES could ask for 640 MiB per task. An
# OutOfMemoryError there kills Spark's writer thread and leaves the task waiting for ever
# (seen with 12,000 messages of 100 KB before larger messages stopped reaching Python).
# 1,000 rows bound a batch to 64 MiB; typical batches are ~300 KB.
ARROW_BATCH_ROWS = 1000

# Objects and arrays nested deeper than this are refused as malformed. Events are flat (depth 1);
# the limit makes the verdict independent of the interpreter's recursion limit and of the call
# stack (which differ between a test run and a Spark Python worker), and keeps a hostile
# "[[[[...]]]]" from costing more than a scan.
MAX_JSON_DEPTH = 64


class Reason(StrEnum):
    """Why a message is quarantined. These strings are stored and counted: never rename one.

    Checks run in this order and the first failing one is the reason; for the fields, the first
    failing field in contract order (:data:`clickstream_spark.schema.EVENT_FIELDS`).
    """

    EMPTY_VALUE = "empty_value"  # Kafka null (tombstone), zero bytes, or only JSON whitespace
    TOO_LARGE = "too_large"  # more than MAX_MESSAGE_BYTES bytes
    INVALID_UTF8 = "invalid_utf8"  # bytes that are not UTF-8 (JSON text must be)
    MALFORMED_JSON = "malformed_json"  # not JSON, NaN/Infinity, or nested > MAX_JSON_DEPTH
    NOT_AN_OBJECT = "not_an_object"  # JSON, but an array, string, number, boolean or null
    DUPLICATE_KEY = "duplicate_key"  # some object (at any depth) repeats a key: ambiguous
    MISSING_OR_BAD_ROW_KEY = "missing_or_bad:row_key"
    MISSING_OR_BAD_USER_ID = "missing_or_bad:user_id"
    MISSING_OR_BAD_TIMESTAMP = "missing_or_bad:timestamp"
    MISSING_OR_BAD_URL = "missing_or_bad:url"
    MISSING_OR_BAD_COUNTRY = "missing_or_bad:country"
    MISSING_OR_BAD_CITY = "missing_or_bad:city"
    MISSING_OR_BAD_BROWSER = "missing_or_bad:browser"
    MISSING_OR_BAD_OS = "missing_or_bad:os"
    MISSING_OR_BAD_DEVICE = "missing_or_bad:device"


REASONS: tuple[str, ...] = tuple(r.value for r in Reason)

# Plain strings for the hot path and the Arrow columns (a StrEnum member is a str subclass).
# Reason(...) raises at import if a field's reason were missing from the enum.
_EMPTY, _TOO_LARGE = Reason.EMPTY_VALUE.value, Reason.TOO_LARGE.value
_INVALID_UTF8, _MALFORMED = Reason.INVALID_UTF8.value, Reason.MALFORMED_JSON.value
_NOT_OBJECT, _DUPLICATE = Reason.NOT_AN_OBJECT.value, Reason.DUPLICATE_KEY.value
_BAD_FIELD = {f: Reason(f"missing_or_bad:{f}").value for f in EVENT_FIELDS}

# Only these count as "blank" (a value of nothing but them is empty). ASCII on purpose: Unicode
# whitespace classes differ between Python, Java and Cassandra tooling, ASCII ones do not.
_BLANK = " \t\n\r\f\v"
_JSON_WS = " \t\n\r"  # insignificant whitespace of RFC 8259
_JSON_WS_BYTES = _JSON_WS.encode("ascii")

# The accepted ISO-8601 profile: extended calendar date, 'T', hh:mm[:ss[.fraction]], and a zone
# that is 'Z' or ±hh:mm. datetime.fromisoformat alone would also take week dates, basic format,
# '+0530', '+05' and seconds offsets; the regex keeps the rule small and stateable. Digits of the
# fraction beyond microseconds are truncated (EVENT_SCHEMA is microsecond precision). Offset
# minutes are 00-59 here because fromisoformat does not check them ("+05:60" would be +06:00).
_ISO_8601 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?"
    r"(?:Z|[+-][0-9]{2}:[0-5][0-9])"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
# Accepted instants: 1970-01-01 to the end of 2099, UTC. No click predates the epoch, and the
# bound keeps every window (and the 30 minutes before an event) inside what Spark, Python's
# datetime and Cassandra all represent: a year-1 event would make windows in year 0, which
# PySpark cannot collect. Outside it a timestamp is bad, as ISO text or as epoch milliseconds.
MIN_TIMESTAMP_US = 0
MAX_TIMESTAMP_US = (datetime(2100, 1, 1, tzinfo=UTC) - _EPOCH) // _ONE_US - 1
_MAX_EPOCH_MS_DIGITS = 16  # longer integer text is out of range: no need to build the int

_SURROGATE = re.compile("[\ud800-\udfff]")
_DEPTH_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


class Verdict(NamedTuple):
    """The classification of one message.

    Valid: ``reason`` is None, the event fields are set (optional ones may be None) and the raw
    fields are None (the raw text is only kept for quarantine). Bad: ``reason`` is set, the event
    fields are None, ``raw_value`` holds the text (or base64 when not UTF-8, None for a tombstone)
    and ``raw_encoding`` says which (``utf8`` | ``base64`` | ``none``).
    """

    reason: str | None
    row_key: str | None
    user_id: str | None
    timestamp_us: int | None  # microseconds since the epoch, UTC
    url: str | None
    country: str | None
    city: str | None
    browser: str | None
    os: str | None
    device: str | None
    raw_value: str | None
    raw_encoding: str | None

    @property
    def valid(self) -> bool:
        return self.reason is None

    @property
    def timestamp(self) -> datetime | None:
        """The event time as an aware UTC datetime (None for a bad message)."""
        if self.timestamp_us is None:
            return None
        return _EPOCH + timedelta(microseconds=self.timestamp_us)


class _JsonInt(str):
    """The digits of a JSON integer, as written.

    ``parse_int`` hands us the text, so an integer id keeps its exact decimal text (no int()
    round trip, no 4300-digit limit), and ``type(v) is _JsonInt`` tells it from a JSON string.
    """

    __slots__ = ()


class _DuplicateKeyError(ValueError):
    pass


def _object_no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _DuplicateKeyError
    return obj


def _reject_constant(name: str) -> Any:
    # Python's json accepts NaN, Infinity and -Infinity; RFC 8259 does not.
    raise ValueError(f"{name} is not JSON")


# Built once: json.loads(..., object_pairs_hook=...) would build a decoder per call.
_STRICT = json.JSONDecoder(
    object_pairs_hook=_object_no_duplicates, parse_int=_JsonInt, parse_constant=_reject_constant
)
_LENIENT = json.JSONDecoder(parse_int=_JsonInt, parse_constant=_reject_constant)

_orjson_loads = orjson.loads
_OrjsonError = orjson.JSONDecodeError

_Row = tuple[Any, ...]  # the fields of a Verdict, as a plain tuple (cheaper on the hot path)
_NO_EVENT = (None,) * 9
_TOMBSTONE: _Row = (_EMPTY, *_NO_EVENT, None, "none")
# Over the size limit, value left out: only JSON whitespace (True) or anything else (False).
_LEFT_OUT: dict[bool, _Row] = {
    True: (_EMPTY, *_NO_EVENT, None, None),
    False: (_TOO_LARGE, *_NO_EVENT, None, None),
}


def _raw(value: bytes) -> tuple[str, str]:
    """The quarantine form of a message: its text, or base64 when it is not UTF-8."""
    try:
        return value.decode("utf-8"), "utf8"
    except UnicodeDecodeError:
        return base64.b64encode(value).decode("ascii"), "base64"


def _too_deep(text: str) -> bool:
    # Depth can only exceed the number of opening brackets: one cheap count settles almost all.
    if text.count("{") + text.count("[") <= MAX_JSON_DEPTH:
        return False
    depth = 0
    for token in _DEPTH_TOKEN.finditer(text):  # strings are matched whole, so skipped
        char = token.group()
        if char == "{" or char == "[":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return True
        elif char == "}" or char == "]":
            depth -= 1
    return False


def _id_text(value: Any) -> str | None:
    """row_key / user_id: a non-blank string, or a JSON integer as its decimal text."""
    kind = type(value)
    if kind is str:
        # "\ud800" is valid JSON but decodes to a lone surrogate, which is not Unicode and cannot
        # be written as UTF-8 (Arrow, Cassandra): a bad value, not a crash later.
        if value.strip(_BLANK) and (value.isascii() or _SURROGATE.search(value) is None):
            return value
        return None
    if kind is _JsonInt:
        return "0" if value == "-0" else str(value)
    return None  # missing, null, boolean, float, array, object


def _timestamp_us(value: Any) -> int | None:
    """ISO-8601 text with a zone, or epoch milliseconds; microseconds since the epoch, UTC."""
    kind = type(value)
    if kind is str:
        if _ISO_8601.fullmatch(value) is None:
            return None
        try:
            micros = (datetime.fromisoformat(value) - _EPOCH) // _ONE_US
        except ValueError:  # month 13, hour 24, second 60, offset of 24h...
            return None
    elif kind is _JsonInt:
        if len(value) > _MAX_EPOCH_MS_DIGITS:
            return None
        micros = int(value) * 1000
    else:
        return None
    return micros if MIN_TIMESTAMP_US <= micros <= MAX_TIMESTAMP_US else None


def _after_duplicate(text: str) -> str:
    # A duplicate is seen when its object closes, maybe before a later syntax error or before we
    # know the top level is not an object. Re-parse without the check so that the earlier
    # reasons keep precedence (rare path: only messages with a duplicated key get here).
    try:
        obj = _LENIENT.decode(text)
    except (ValueError, RecursionError):
        return _MALFORMED
    return _DUPLICATE if type(obj) is dict else _NOT_OBJECT


def _fast_row(value: bytes) -> _Row | None:
    """The verdict of a plain valid event, or None: then only :func:`_exact_row` can tell.

    Almost every message is a flat object without escapes, and for those a cheaper parse gives
    the exact verdict: orjson is ~4x faster than ``json`` with hooks, and what the hooks check
    is settled otherwise. Without a backslash, a key or a string contains no quote, so the
    quotes in the text are exactly two per key and per string value: any duplicated key
    (which orjson silently drops) adds two more. A flat object has depth 1. orjson refuses NaN,
    lone surrogates and infinite numbers, turns integers beyond 64 bits into floats, and the
    text was decoded by Python first: each of these falls through to the exact path. So this
    returns a row only where :func:`_exact_row` returns the same row (a property test checks
    it), and anything unusual (every bad message among them) goes there.
    """
    if len(value) > MAX_MESSAGE_BYTES or b"\\" in value:
        return None
    try:
        obj = _orjson_loads(value.decode("utf-8"))
    except (UnicodeDecodeError, _OrjsonError):
        return None
    if type(obj) is not dict:
        return None
    strings = 0
    for member in obj.values():
        kind = type(member)
        if kind is str:
            strings += 1
        elif kind is dict or kind is list:
            return None
    if value.count(b'"') != 2 * (len(obj) + strings):
        return None

    get = obj.get
    ids: list[str] = []
    for name in ("row_key", "user_id"):
        field = get(name)
        kind = type(field)
        if kind is int:  # not bool: type() is exact. str() is the text as sent ("-0" → "0")
            field = str(field)
        elif kind is not str or not field.strip(_BLANK):
            return None
        ids.append(field)
    timestamp = get("timestamp")
    kind = type(timestamp)
    if kind is int:
        micros = timestamp * 1000
    elif kind is str and _ISO_8601.fullmatch(timestamp) is not None:
        try:
            micros = (datetime.fromisoformat(timestamp) - _EPOCH) // _ONE_US
        except ValueError:
            return None
    else:
        return None
    if not MIN_TIMESTAMP_US <= micros <= MAX_TIMESTAMP_US:
        return None
    url = get("url")
    if type(url) is not str or not url.strip(_BLANK):
        return None
    optional: list[str | None] = []
    for name in OPTIONAL_FIELDS:
        field = get(name)
        if field is not None:
            if type(field) is not str:
                return None
            if not field.strip(_BLANK):
                field = None
        optional.append(field)
    return (None, ids[0], ids[1], micros, url, *optional, None, None)


def _classify_row(value: bytes | None) -> _Row:
    """:func:`classify` as a plain tuple: what the Spark batches are built from."""
    if value is not None:
        row = _fast_row(value)
        if row is not None:
            return row
    return _exact_row(value)


def _exact_row(value: bytes | None) -> _Row:
    """Every rule, in order, on any message: the reference behaviour of :func:`classify`.

    The path of a valid event is written inline: at a few µs per message every call counts.
    """
    if value is None:
        return _TOMBSTONE
    if len(value) > MAX_MESSAGE_BYTES:
        # Only whitespace is empty whatever its size (empty_value is checked before too_large).
        reason = _TOO_LARGE if value.strip(_JSON_WS_BYTES) else _EMPTY
        return (reason, *_NO_EVENT, *_raw(value))
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return (_INVALID_UTF8, *_NO_EVENT, base64.b64encode(value).decode("ascii"), "base64")
    try:
        if text.count("{") + text.count("[") > MAX_JSON_DEPTH and _too_deep(text):
            raise ValueError("nested too deep")
        obj = _STRICT.decode(text)
    except _DuplicateKeyError:
        return (_after_duplicate(text), *_NO_EVENT, text, "utf8")
    except (ValueError, RecursionError):  # JSONDecodeError is a ValueError
        reason = _MALFORMED if text.strip(_JSON_WS) else _EMPTY
        return (reason, *_NO_EVENT, text, "utf8")
    if type(obj) is not dict:
        return (_NOT_OBJECT, *_NO_EVENT, text, "utf8")

    get = obj.get
    row_key = _id_text(get("row_key"))
    if row_key is None:
        return (_BAD_FIELD["row_key"], *_NO_EVENT, text, "utf8")
    user_id = _id_text(get("user_id"))
    if user_id is None:
        return (_BAD_FIELD["user_id"], *_NO_EVENT, text, "utf8")
    timestamp_us = _timestamp_us(get("timestamp"))
    if timestamp_us is None:
        return (_BAD_FIELD["timestamp"], *_NO_EVENT, text, "utf8")
    url = get("url")
    if not (
        type(url) is str and url.strip(_BLANK) and (url.isascii() or _SURROGATE.search(url) is None)
    ):
        return (_BAD_FIELD["url"], *_NO_EVENT, text, "utf8")
    optional: list[str | None] = []
    for name in OPTIONAL_FIELDS:
        # missing, null or blank → None; a string → itself; anything else → bad
        field = get(name)
        if field is not None:
            if type(field) is not str or (not field.isascii() and _SURROGATE.search(field)):
                return (_BAD_FIELD[name], *_NO_EVENT, text, "utf8")
            if not field.strip(_BLANK):
                field = None
        optional.append(field)
    return (None, row_key, user_id, timestamp_us, url, *optional, None, None)


def classify(value: bytes | None) -> Verdict:
    """Classify one Kafka message value (``None`` for a tombstone). Never raises on content.

    Decisions beyond the contract's letter:

    * blank means only ASCII whitespace: a blank row_key/user_id/url is bad, a blank optional
      field is None, other strings are kept exactly as sent (not trimmed);
    * a value of only JSON whitespace is ``empty_value``; the JSON literal ``null`` is
      ``not_an_object``;
    * JSON integer ids keep their decimal text exactly (``-0`` becomes ``0``); booleans and
      numbers with a fraction or exponent (``1.0``, ``1e3``) are bad;
    * ``\\u0000`` inside a string is legal JSON and valid UTF-8: kept as is (Cassandra and
      Elasticsearch store it); an unescaped control character is malformed JSON;
    * a string with a lone surrogate escape (``"\\ud800"``) is a bad value for that field
      (ignored, like the rest, when the field is unknown);
    * duplicated keys are refused at any depth, also inside ignored fields, and also when the two
      spellings differ only by escapes (``"url"`` and ``"\\u0075rl"`` are the same key).
    """
    return Verdict._make(_classify_row(value))


# --- Spark --------------------------------------------------------------------------------------

# What the Python side returns per row, as Arrow and as Spark types (timestamp as epoch micros:
# turned into a TimestampType natively, with no pandas nanosecond range or time zone involved).
_CLASSIFIED_FIELDS: tuple[tuple[str, pa.DataType], ...] = (
    ("reason", pa.string()),
    ("row_key", pa.string()),
    ("user_id", pa.string()),
    ("timestamp_us", pa.int64()),
    ("url", pa.string()),
    *((name, pa.string()) for name in OPTIONAL_FIELDS),
    ("raw_value", pa.string()),
    ("raw_encoding", pa.string()),
)
_CLASSIFIED_STRUCT = pa.struct(list(_CLASSIFIED_FIELDS))
# The Kafka coordinates pass through the Python worker untouched (Arrow buffers, no per-row work).
_COORDINATES = ("topic", "partition", "offset", "kafka_timestamp")


def classify_batch(values: pa.Array, oversized: pa.Array | None = None) -> pa.RecordBatch:
    """Classify an Arrow array of message values (binary, nulls for tombstones), row by row.

    ``oversized``, when given, marks the messages over MAX_MESSAGE_BYTES whose value was left out
    (null: it fits; true: only JSON whitespace; false: anything else): they get their reason and
    no raw copy (:func:`parse_kafka` with ``oversized_raw=False``).
    """
    # to_numpy() builds the bytes objects in C; Array.to_pylist() would go through Arrow scalars.
    messages = values.to_numpy(zero_copy_only=False).tolist()
    if oversized is None:
        rows = [_classify_row(v) for v in messages]
    else:
        rows = [
            _classify_row(v) if blank is None else _LEFT_OUT[blank]
            for v, blank in zip(messages, oversized.to_pylist(), strict=True)
        ]
    # Arrow reads the tuples as structs in C: ~4x cheaper than transposing them into columns.
    return pa.RecordBatch.from_struct_array(pa.array(rows, type=_CLASSIFIED_STRUCT))


def _classify_batches(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        names = batch.schema.names
        oversized = batch.column("oversized") if "oversized" in names else None
        classified = classify_batch(batch.column("value"), oversized)
        yield pa.RecordBatch.from_arrays(
            [batch.column(name) for name in _COORDINATES] + classified.columns,
            names=[*_COORDINATES, *classified.schema.names],
        )


def _mapped_schema() -> StructType:
    coordinates = {f.name: f.dataType for f in PARSED_SCHEMA.fields if f.name in _COORDINATES}
    spark_types = {pa.string(): StringType(), pa.int64(): LongType()}
    return StructType(
        [StructField(name, coordinates[name], True) for name in _COORDINATES]
        + [StructField(name, spark_types[t], True) for name, t in _CLASSIFIED_FIELDS]
    )


def _only_json_whitespace() -> Column:
    return F.length(F.btrim(F.col("value").cast("string"), F.lit(_JSON_WS))) == 0


def _oversized(source: DataFrame) -> DataFrame:
    """The verdict of messages over MAX_MESSAGE_BYTES, natively: the same as :func:`classify`'s.

    Only JSON whitespace is ``empty_value`` (at any size), anything else ``too_large``; the raw
    copy is the text when the bytes are UTF-8 (Java's decoder, like Python's, refuses malformed
    and surrogate sequences, so decode-then-encode gives the bytes back exactly when they are
    UTF-8), base64 otherwise.
    """
    text = F.col("value").cast("string")  # the bytes as they are: no decoding, no copy of them
    blank = _only_json_whitespace()
    utf8 = F.encode(F.decode(F.col("value"), "UTF-8"), "UTF-8") == F.col("value")
    # Spark 3.5's base64() breaks lines every 76 characters unless
    # spark.sql.chunkBase64String.enabled is false; the alphabet has no CR or LF, so dropping them
    # gives Python's b64encode whatever the session says.
    base64 = F.translate(F.base64(F.col("value")), "\r\n", "")
    nothing = F.lit(None)
    return source.select(
        nothing.cast("string").alias("row_key"),
        nothing.cast("string").alias("user_id"),
        nothing.cast("timestamp").alias("timestamp"),
        nothing.cast("string").alias("url"),
        *(nothing.cast("string").alias(name) for name in OPTIONAL_FIELDS),
        F.when(blank, F.lit(_EMPTY)).otherwise(F.lit(_TOO_LARGE)).alias("reason"),
        F.when(utf8, text).otherwise(base64).alias("raw_value"),
        F.when(utf8, F.lit("utf8")).otherwise(F.lit("base64")).alias("raw_encoding"),
        *(F.col(name) for name in _COORDINATES),
    )


def parse_kafka(kafka: DataFrame, *, oversized_raw: bool = True) -> DataFrame:
    """Kafka source rows → one row per message with the event columns, ``reason`` and provenance.

    Input: the Kafka source columns (``value`` binary, ``topic``, ``partition``, ``offset``,
    ``timestamp``; others are ignored). Output: :data:`~clickstream_spark.schema.PARSED_SCHEMA`,
    one row per input row (never more, never fewer). Select the outputs with
    :func:`valid_events` and :func:`quarantine_rows`; when writing both from one micro-batch,
    ``persist()`` the parsed batch first, or the classifier runs once per output.

    ``oversized_raw=False`` is for a stream that caches its micro-batches: the values of
    messages over MAX_MESSAGE_BYTES never reach Python (so what crosses to the Python worker is
    bounded by ``ARROW_BATCH_ROWS x MAX_MESSAGE_BYTES`` whatever the producers send; Spark sizes
    Arrow batches by rows only), and their rows carry the reason but no raw copy (null
    ``raw_value`` and ``raw_encoding``), which keeps a cached batch small: write their
    quarantine rows from Kafka with :func:`oversized_quarantine`.
    """
    source = _kafka_columns(kafka)
    if not oversized_raw:
        fits = F.col("value").isNull() | (F.length("value") <= MAX_MESSAGE_BYTES)
        source = source.select(
            F.when(fits, F.col("value")).alias("value"),
            F.when(~fits, _only_json_whitespace()).alias("oversized"),
            *(F.col(name) for name in _COORDINATES),
        )
    mapped = source.mapInArrow(_classify_batches, _mapped_schema())
    return mapped.select(
        F.col("row_key"),
        F.col("user_id"),
        F.timestamp_micros(F.col("timestamp_us")).alias("timestamp"),
        F.col("url"),
        *(F.col(name) for name in OPTIONAL_FIELDS),
        F.col("reason"),
        F.col("raw_value"),
        F.col("raw_encoding"),
        *(F.col(name) for name in _COORDINATES),
    )


def _kafka_columns(kafka: DataFrame) -> DataFrame:
    return kafka.select(
        F.col("value"),
        F.col("topic"),
        F.col("partition"),
        F.col("offset"),
        F.col("timestamp").alias("kafka_timestamp"),
    )


def oversized_quarantine(kafka: DataFrame, ingested_at_col: Column) -> DataFrame:
    """QUARANTINE_SCHEMA rows of the messages over MAX_MESSAGE_BYTES in ``kafka``, raw copy
    included: computed row by row from the source, never cached or sent to Python."""
    source = _kafka_columns(kafka)
    oversized = _oversized(source.filter(F.length("value") > MAX_MESSAGE_BYTES))
    return quarantine_rows(oversized, ingested_at_col)


def valid_events(parsed: DataFrame) -> DataFrame:
    """The valid events of :func:`parse_kafka`'s output: the EVENT_SCHEMA columns, in order.

    Names and types are EVENT_SCHEMA's; Spark reports the columns as nullable (it cannot infer
    that a filter on ``reason`` makes them non-null), which the writers do not care about.
    """
    return parsed.filter(F.col("reason").isNull()).select(
        *(F.col(field.name) for field in EVENT_SCHEMA.fields)
    )


def raw_left_out() -> Column:
    """The bad messages whose raw copy :func:`parse_kafka` left out (``oversized_raw=False``):
    a reason but a null ``raw_encoding`` (every other bad message has one, tombstones ``none``)."""
    return F.col("reason").isNotNull() & F.col("raw_encoding").isNull()


def quarantine_rows(parsed: DataFrame, ingested_at_col: Column) -> DataFrame:
    """The bad messages of :func:`parse_kafka`'s output, as QUARANTINE_SCHEMA rows.

    ``ingested_at_col`` is usually ``F.current_timestamp()`` (fixed per micro-batch); it is a
    parameter so that tests can pin it.
    """
    # A message whose raw copy was left out gets its row from oversized_quarantine.
    bad = F.col("reason").isNotNull() & ~raw_left_out()
    return parsed.filter(bad).select(
        F.col("topic"),
        F.col("partition"),
        F.col("offset"),
        F.col("raw_value"),
        F.col("raw_encoding"),
        F.col("reason"),
        F.col("kafka_timestamp"),
        ingested_at_col.alias("ingested_at"),
    )


__all__ = [
    "ARROW_BATCH_ROWS",
    "MAX_JSON_DEPTH",
    "MAX_MESSAGE_BYTES",
    "REASONS",
    "Reason",
    "Verdict",
    "classify",
    "classify_batch",
    "oversized_quarantine",
    "parse_kafka",
    "quarantine_rows",
    "raw_left_out",
    "valid_events",
]
