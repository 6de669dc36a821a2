"""The event contract: one Kafka message value → a typed click event, or why it is not one.

:func:`classify` is the whole contract (README, "The event contract"), a plain function on the raw
bytes; the stream runs the same code over Arrow batches (:func:`classify_batch`), so what the tests
prove here is what the stream does. Nothing in a message's content can make it raise.

Why Python and not Spark's ``from_json``: it turns any scalar into a string field (``"123"``,
``123`` and ``true`` look alike), silently keeps the last of duplicated keys and accepts timestamps
without a zone. ``json`` with hooks sees all of that exactly.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple

import orjson
import pyarrow as pa

from clickstream_spark.schema import EPOCH, EVENT_FIELDS, OPTIONAL_FIELDS

# A click event is ~300 bytes and the longest legitimate one (an 8 KiB URL, the practical limit of
# browsers and CDNs, plus every optional field) under 16 KiB: 64 KiB leaves headroom while bounding
# what one message costs to parse and to keep in quarantine. The broker's 1 MiB default is too
# loose to be the contract.
MAX_MESSAGE_BYTES = 64 * 1024

# Events are flat (depth 1). A fixed limit makes the verdict independent of the interpreter's
# recursion limit (a test run and a Spark worker differ) and keeps "[[[[...]]]]" as cheap as a scan.
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
JSON_WHITESPACE = " \t\n\r"  # insignificant whitespace of RFC 8259
_JSON_WS_BYTES = JSON_WHITESPACE.encode("ascii")

# The accepted ISO-8601 profile: extended calendar date, 'T', hh:mm[:ss[.fraction]], and a zone
# that is 'Z' or ±hh:mm. datetime.fromisoformat alone would also take week dates, basic format,
# '+0530', '+05' and seconds offsets, and reads "+05:60" as +06:00 (hence minutes 00-59 here).
# Fraction digits beyond microseconds are truncated (EVENT_SCHEMA is microsecond precision).
_ISO_8601 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?"
    r"(?:Z|[+-][0-9]{2}:[0-5][0-9])"
)
_ONE_US = timedelta(microseconds=1)
# Accepted instants: 1970-01-01 to the end of 2099, UTC. No click predates the epoch, and the bound
# keeps every window (and the 30 minutes before an event) inside what Spark, Python's datetime and
# Cassandra all represent (a year-1 event would make windows in year 0, which PySpark cannot
# collect). Outside it a timestamp is bad, as ISO text or as epoch milliseconds.
MIN_TIMESTAMP_US = 0
MAX_TIMESTAMP_US = (datetime(2100, 1, 1, tzinfo=UTC) - EPOCH) // _ONE_US - 1
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
        if _ISO_8601.fullmatch(value) is None:
            return None
        try:
            micros = (datetime.fromisoformat(value) - EPOCH) // _ONE_US
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
    # reasons keep precedence (only messages with a duplicated key take this path).
    try:
        obj = _LENIENT.decode(text)
    except (ValueError, RecursionError):
        return _MALFORMED
    return _DUPLICATE if type(obj) is dict else _NOT_OBJECT


def _fast_row(value: bytes) -> _Row | None:
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
        ids.append(field)
    timestamp = get("timestamp")
    kind = type(timestamp)
    if kind is int:
        micros = timestamp * 1000
    elif kind is str and _ISO_8601.fullmatch(timestamp) is not None:
        try:
            micros = (datetime.fromisoformat(timestamp) - EPOCH) // _ONE_US
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
    """:func:`classify` as a plain tuple: what the Arrow batches are built from."""
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
        reason = _MALFORMED if text.strip(JSON_WHITESPACE) else _EMPTY
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


def classify_batch(values: pa.Array, oversized: pa.Array | None = None) -> pa.RecordBatch:
    """Classify an Arrow array of message values (binary, nulls for tombstones), row by row.

    ``oversized``, when given, marks the messages over MAX_MESSAGE_BYTES whose value was left out
    (null: it fits; true: only JSON whitespace; false: anything else): they get their reason and
    no raw copy (what :func:`clickstream_spark.ingest.parse.parse_kafka` does with
    ``oversized_raw=False``).
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
    # Arrow reads the tuples as structs in C, cheaper than transposing them into columns here.
    return pa.RecordBatch.from_struct_array(pa.array(rows, type=_CLASSIFIED_STRUCT))


__all__ = [
    "CLASSIFIED_FIELDS",
    "JSON_WHITESPACE",
    "MAX_JSON_DEPTH",
    "MAX_MESSAGE_BYTES",
    "MAX_TIMESTAMP_US",
    "MIN_TIMESTAMP_US",
    "REASONS",
    "Reason",
    "Verdict",
    "classify",
    "classify_batch",
]
