"""The event contract: one Kafka message value → a typed click event, or why it is not one.

:func:`classify` is the whole contract (README, "The event contract"), a plain function of the raw
bytes and of the moment they are read (event times are judged against it); the stream runs the
same code over Arrow batches (:func:`classify_batch`), so what the tests prove here is what the
stream does. Nothing in a message's content can make it raise.

Why Python and not Spark's ``from_json``: it turns any scalar into a string field (``"123"``,
``123`` and ``true`` look alike), silently keeps the last of duplicated keys and accepts timestamps
without a zone. ``json`` with hooks sees all of that exactly.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple

import orjson
import pyarrow as pa

from clickstream_spark.ingest.event_time import (
    DEFAULT_EVENT_TIME_LIMITS,
    ISO_8601,
    MAX_EPOCH_MS_DIGITS,
    MAX_TIMESTAMP_US,
    MIN_TIMESTAMP_US,
    ONE_US,
    EventTimeLimits,
    epoch_micros,
)
from clickstream_spark.schema import EPOCH, EVENT_FIELDS, OPTIONAL_FIELDS

# A click event is ~300 bytes and the longest legitimate one (an 8 KiB URL, the practical limit of
# browsers and CDNs, plus every optional field) under 16 KiB: 64 KiB leaves headroom while bounding
# what one message costs to parse and to keep in quarantine. The broker's 1 MiB default is too
# loose to be the contract.
MAX_MESSAGE_BYTES = 64 * 1024

# Events are flat (depth 1). A fixed limit makes the verdict independent of the interpreter's
# recursion limit (a test run and a Spark worker differ) and keeps "[[[[...]]]]" as cheap as a scan.
MAX_JSON_DEPTH = 64

# Bytes (UTF-8, of the decoded value) a field may hold; a longer value is quarantined as
# too_long:<field>. 8 KiB is the practical URL limit of browsers and CDNs; 256 bytes is far above
# any real id, country, city, browser, os or device. Both stay below Elasticsearch's 32,766-byte
# keyword limit, past which every aggregation of the event's windows would fail.
MAX_URL_BYTES = 8 * 1024
MAX_FIELD_BYTES = 256


class Reason(StrEnum):
    """Why a message is quarantined. These strings are stored and counted: never rename one.

    Checks run in this order and the first failing one is the reason; for the fields, the first
    failing field in contract order (:data:`clickstream_spark.schema.EVENT_FIELDS`), each field
    checked for its form (missing_or_bad), then its length (too_long) or, for the timestamp, its
    distance from the moment the message is read (out_of_range).
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
    OUT_OF_RANGE_TIMESTAMP = "out_of_range:timestamp"  # outside EventTimeLimits of the read moment
    TOO_LONG_ROW_KEY = "too_long:row_key"  # more than MAX_FIELD_BYTES
    TOO_LONG_USER_ID = "too_long:user_id"
    TOO_LONG_URL = "too_long:url"  # more than MAX_URL_BYTES
    TOO_LONG_COUNTRY = "too_long:country"
    TOO_LONG_CITY = "too_long:city"
    TOO_LONG_BROWSER = "too_long:browser"
    TOO_LONG_OS = "too_long:os"
    TOO_LONG_DEVICE = "too_long:device"


REASONS: tuple[str, ...] = tuple(r.value for r in Reason)

# Plain strings for the hot path and the Arrow columns (a StrEnum member is a str subclass).
# Reason(...) raises at import if a field's reason were missing from the enum.
_EMPTY, _TOO_LARGE = Reason.EMPTY_VALUE.value, Reason.TOO_LARGE.value
_INVALID_UTF8, _MALFORMED = Reason.INVALID_UTF8.value, Reason.MALFORMED_JSON.value
_NOT_OBJECT, _DUPLICATE = Reason.NOT_AN_OBJECT.value, Reason.DUPLICATE_KEY.value
_BAD_FIELD = {f: Reason(f"missing_or_bad:{f}").value for f in EVENT_FIELDS}
_TOO_LONG = {f: Reason(f"too_long:{f}").value for f in EVENT_FIELDS if f != "timestamp"}
_OUT_OF_RANGE = Reason.OUT_OF_RANGE_TIMESTAMP.value
# A string of at most this many characters is within its bound whatever they are (UTF-8 takes at
# most 4 bytes per character): the one comparison almost every value needs.
_SURELY_SHORT = MAX_FIELD_BYTES // 4
_SURELY_SHORT_URL = MAX_URL_BYTES // 4

# Only these count as "blank" (a value of nothing but them is empty). ASCII on purpose: Unicode
# whitespace classes differ between Python, Java and Cassandra tooling, ASCII ones do not.
_BLANK = " \t\n\r\f\v"
JSON_WHITESPACE = " \t\n\r"  # insignificant whitespace of RFC 8259
_JSON_WS_BYTES = JSON_WHITESPACE.encode("ascii")


def _longer_than(text: str, limit: int) -> bool:
    """Whether ``text`` takes more than ``limit`` bytes in UTF-8 (a lone surrogate counts 3)."""
    if len(text) > limit:
        return True
    return not text.isascii() and len(text.encode("utf-8", "surrogatepass")) > limit


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
        return EPOCH + timedelta(microseconds=self.timestamp_us)


class _JsonInt(str):
    """The digits of a JSON integer, as written.

    ``parse_int`` hands over the text, so an integer id keeps its exact decimal text (no int()
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
        if ISO_8601.fullmatch(value) is None:
            return None
        try:
            micros = (datetime.fromisoformat(value) - EPOCH) // ONE_US
        except ValueError:  # month 13, hour 24, second 60, offset of 24h...
            return None
    elif kind is _JsonInt:
        if len(value) > MAX_EPOCH_MS_DIGITS:
            return None
        micros = int(value) * 1000
    else:
        return None
    return micros if MIN_TIMESTAMP_US <= micros <= MAX_TIMESTAMP_US else None


def _after_duplicate(text: str) -> str:
    # A duplicate is seen when its object closes, maybe before a later syntax error or before we
    # know the top level is not an object. Re-parse without the check so that the earlier
    # reasons keep precedence (only messages with a duplicated key take this path).
    try:
        obj = _LENIENT.decode(text)
    except (ValueError, RecursionError):
        return _MALFORMED
    return _DUPLICATE if type(obj) is dict else _NOT_OBJECT


def _fast_row(value: bytes, first_us: int, last_us: int) -> _Row | None:
    """The verdict of a plain valid event, or None: then only :func:`_exact_row` can tell.

    Almost every message is a flat object without escapes, and for those orjson (no hooks, much
    cheaper) is exact: without a backslash no key or string holds a quote, so the text has two
    quotes per key and per string value, and a duplicated key (which orjson drops) adds two more.
    Whatever orjson reads differently (NaN, lone surrogates, integers beyond 64 bits, nesting)
    falls through to the exact path, as does every bad message; a property test checks that a
    row returned here is :func:`_exact_row`'s. Written inline: it runs once per message.
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
        if len(field) > _SURELY_SHORT and _longer_than(field, MAX_FIELD_BYTES):
            return None
        ids.append(field)
    timestamp = get("timestamp")
    kind = type(timestamp)
    if kind is int:
        micros = timestamp * 1000
    elif kind is str and ISO_8601.fullmatch(timestamp) is not None:
        try:
            micros = (datetime.fromisoformat(timestamp) - EPOCH) // ONE_US
        except ValueError:
            return None
    else:
        return None
    if not first_us <= micros <= last_us:
        return None
    url = get("url")
    if type(url) is not str or not url.strip(_BLANK):
        return None
    if len(url) > _SURELY_SHORT_URL and _longer_than(url, MAX_URL_BYTES):
        return None
    optional: list[str | None] = []
    for name in OPTIONAL_FIELDS:
        field = get(name)
        if field is not None:
            if type(field) is not str:
                return None
            if not field.strip(_BLANK):
                field = None
            elif len(field) > _SURELY_SHORT and _longer_than(field, MAX_FIELD_BYTES):
                return None
        optional.append(field)
    return (None, ids[0], ids[1], micros, url, *optional, None, None)


def _classify_row(value: bytes | None, first_us: int, last_us: int) -> _Row:
    """:func:`classify` as a plain tuple, for event times in [first_us, last_us]: what the Arrow
    batches are built from."""
    if value is not None:
        row = _fast_row(value, first_us, last_us)
        if row is not None:
            return row
    return _exact_row(value, first_us, last_us)


def _exact_row(value: bytes | None, first_us: int, last_us: int) -> _Row:
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
        reason = _MALFORMED if text.strip(JSON_WHITESPACE) else _EMPTY
        return (reason, *_NO_EVENT, text, "utf8")
    if type(obj) is not dict:
        return (_NOT_OBJECT, *_NO_EVENT, text, "utf8")

    get = obj.get
    ids: list[str] = []
    for name in ("row_key", "user_id"):
        field = _id_text(get(name))
        if field is None:
            return (_BAD_FIELD[name], *_NO_EVENT, text, "utf8")
        if _longer_than(field, MAX_FIELD_BYTES):
            return (_TOO_LONG[name], *_NO_EVENT, text, "utf8")
        ids.append(field)
    row_key, user_id = ids
    timestamp_us = _timestamp_us(get("timestamp"))
    if timestamp_us is None:
        return (_BAD_FIELD["timestamp"], *_NO_EVENT, text, "utf8")
    if not first_us <= timestamp_us <= last_us:
        return (_OUT_OF_RANGE, *_NO_EVENT, text, "utf8")
    url = get("url")
    if not (
        type(url) is str and url.strip(_BLANK) and (url.isascii() or _SURROGATE.search(url) is None)
    ):
        return (_BAD_FIELD["url"], *_NO_EVENT, text, "utf8")
    if _longer_than(url, MAX_URL_BYTES):
        return (_TOO_LONG["url"], *_NO_EVENT, text, "utf8")
    optional: list[str | None] = []
    for name in OPTIONAL_FIELDS:
        # missing, null or blank → None; a string → itself, if not too long; anything else → bad
        field = get(name)
        if field is not None:
            if type(field) is not str or (not field.isascii() and _SURROGATE.search(field)):
                return (_BAD_FIELD[name], *_NO_EVENT, text, "utf8")
            if not field.strip(_BLANK):
                field = None
            elif _longer_than(field, MAX_FIELD_BYTES):
                return (_TOO_LONG[name], *_NO_EVENT, text, "utf8")
        optional.append(field)
    return (None, row_key, user_id, timestamp_us, url, *optional, None, None)


def classify(
    value: bytes | None, read_at: datetime, limits: EventTimeLimits = DEFAULT_EVENT_TIME_LIMITS
) -> Verdict:
    """Classify one Kafka message value (``None`` for a tombstone), read at ``read_at`` (an aware
    datetime: the event time must lie within ``limits`` of it). Never raises on content.

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
      spellings differ only by escapes (``"url"`` and ``"\\u0075rl"`` are the same key);
    * a field's length is that of its decoded value in UTF-8 (an escaped ``"\\u00e9"`` is 2
      bytes); a blank optional field is None whatever its length.
    """
    return Verdict._make(_classify_row(value, *limits.accepted_us(epoch_micros(read_at))))


# One Arrow column per Verdict field; the timestamp stays epoch micros, so that Spark types it
# natively (no pandas nanosecond range or time zone involved).
CLASSIFIED_FIELDS: tuple[tuple[str, pa.DataType], ...] = (
    ("reason", pa.string()),
    ("row_key", pa.string()),
    ("user_id", pa.string()),
    ("timestamp_us", pa.int64()),
    ("url", pa.string()),
    *((name, pa.string()) for name in OPTIONAL_FIELDS),
    ("raw_value", pa.string()),
    ("raw_encoding", pa.string()),
)
_CLASSIFIED_STRUCT = pa.struct(list(CLASSIFIED_FIELDS))


def classify_batch(
    values: pa.Array,
    read_at_us: int,
    limits: EventTimeLimits = DEFAULT_EVENT_TIME_LIMITS,
    oversized: pa.Array | None = None,
) -> pa.RecordBatch:
    """Classify an Arrow array of message values (binary, nulls for tombstones), row by row, all
    read at ``read_at_us`` (microseconds since the epoch): :func:`classify` of each.

    ``oversized``, when given, marks the messages over MAX_MESSAGE_BYTES whose value was left out
    (null: it fits; true: only JSON whitespace; false: anything else): they get their reason and
    no raw copy (what :func:`clickstream_spark.ingest.parse.parse_kafka` does with
    ``oversized_raw=False``).
    """
    # to_numpy() builds the bytes objects in C; Array.to_pylist() would go through Arrow scalars.
    messages = values.to_numpy(zero_copy_only=False).tolist()
    first_us, last_us = limits.accepted_us(read_at_us)
    if oversized is None:
        rows = [_classify_row(v, first_us, last_us) for v in messages]
    else:
        rows = [
            _classify_row(v, first_us, last_us) if blank is None else _LEFT_OUT[blank]
            for v, blank in zip(messages, oversized.to_pylist(), strict=True)
        ]
    # Arrow reads the tuples as structs in C, cheaper than transposing them into columns here.
    return pa.RecordBatch.from_struct_array(pa.array(rows, type=_CLASSIFIED_STRUCT))


__all__ = [
    "CLASSIFIED_FIELDS",
    "JSON_WHITESPACE",
    "MAX_FIELD_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_MESSAGE_BYTES",
    "MAX_TIMESTAMP_US",
    "MAX_URL_BYTES",
    "MIN_TIMESTAMP_US",
    "REASONS",
    "EventTimeLimits",
    "Reason",
    "Verdict",
    "classify",
    "classify_batch",
]
