"""Bad messages: one kind per way a producer can break the event contract, and what it sends.

A bad message replaces a valid one (same user, same time); a run cycles through ``BAD_KINDS`` in
order, so any run with at least ``len(BAD_KINDS)`` bad messages covers each kind.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import NamedTuple

from clickstream_spark.ingest.parse import MAX_MESSAGE_BYTES, Reason
from clickstream_spark.tools.generate.world import SITE

Fields = list[tuple[str, str]]  # (name, JSON fragment), in the order producers send them


class BadKind(NamedTuple):
    name: str
    reason: str  # what parse.classify must answer


BAD_KINDS: tuple[BadKind, ...] = (
    BadKind("tombstone", Reason.EMPTY_VALUE.value),
    BadKind("empty_value", Reason.EMPTY_VALUE.value),
    BadKind("too_large", Reason.TOO_LARGE.value),
    BadKind("invalid_utf8", Reason.INVALID_UTF8.value),
    BadKind("not_json", Reason.MALFORMED_JSON.value),
    BadKind("truncated_json", Reason.MALFORMED_JSON.value),
    BadKind("nan_literal", Reason.MALFORMED_JSON.value),
    BadKind("deep_nesting", Reason.MALFORMED_JSON.value),
    BadKind("not_an_object", Reason.NOT_AN_OBJECT.value),
    BadKind("duplicate_key", Reason.DUPLICATE_KEY.value),
    BadKind("missing_row_key", Reason.MISSING_OR_BAD_ROW_KEY.value),
    BadKind("bool_row_key", Reason.MISSING_OR_BAD_ROW_KEY.value),
    BadKind("float_user_id", Reason.MISSING_OR_BAD_USER_ID.value),
    BadKind("blank_user_id", Reason.MISSING_OR_BAD_USER_ID.value),
    BadKind("missing_timestamp", Reason.MISSING_OR_BAD_TIMESTAMP.value),
    BadKind("timestamp_no_zone", Reason.MISSING_OR_BAD_TIMESTAMP.value),
    BadKind("timestamp_unparseable", Reason.MISSING_OR_BAD_TIMESTAMP.value),
    BadKind("timestamp_overflow", Reason.MISSING_OR_BAD_TIMESTAMP.value),
    BadKind("empty_url", Reason.MISSING_OR_BAD_URL.value),
    BadKind("country_not_string", Reason.MISSING_OR_BAD_COUNTRY.value),
    BadKind("city_object", Reason.MISSING_OR_BAD_CITY.value),
    BadKind("browser_array", Reason.MISSING_OR_BAD_BROWSER.value),
    BadKind("os_boolean", Reason.MISSING_OR_BAD_OS.value),
    BadKind("device_number", Reason.MISSING_OR_BAD_DEVICE.value),
)

# Kinds that set one field to a wrong JSON value (None: leave the field out).
_WRONG_FIELD: dict[str, tuple[str, str | None]] = {
    "missing_row_key": ("row_key", None),
    "bool_row_key": ("row_key", "true"),
    "float_user_id": ("user_id", "12345.0"),
    "blank_user_id": ("user_id", '"  "'),
    "missing_timestamp": ("timestamp", None),
    "empty_url": ("url", '""'),
    "country_not_string": ("country", "250"),
    "city_object": ("city", '{"name":"Paris"}'),
    "browser_array": ("browser", '["Chrome","124.0"]'),
    "os_boolean": ("os", "true"),
    "device_number": ("device", "1"),
}

# Kinds that append one more field.
_EXTRA_FIELD: dict[str, tuple[str, str]] = {
    "too_large": ("debug", json.dumps("x" * MAX_MESSAGE_BYTES)),
    "nan_literal": ("load_time", "NaN"),
    "deep_nesting": ("ctx", "[" * 5000 + "]" * 5000),
    "duplicate_key": ("url", json.dumps(SITE + "/other")),
}


def _utc_text(ts_ms: int, layout: str) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).strftime(layout)


# Kinds whose timestamp is wrong, from the click's time in epoch milliseconds.
_WRONG_TIMESTAMP: dict[str, Callable[[int], str]] = {
    "timestamp_no_zone": lambda ts_ms: f'"{_utc_text(ts_ms, "%Y-%m-%dT%H:%M:%S")}"',
    "timestamp_unparseable": lambda ts_ms: f'"{_utc_text(ts_ms, "%d/%m/%Y %H:%M")}"',
    "timestamp_overflow": lambda ts_ms: str(ts_ms * 1_000_000),  # nanoseconds in a ms field
}


def bad_value(kind: str, fields: Fields, ts_ms: int) -> bytes | None:
    """The payload of a bad message of ``kind``, built from the valid event's fields."""
    if kind in _WRONG_FIELD:
        return _join(_replace(fields, *_WRONG_FIELD[kind])).encode()
    if kind in _EXTRA_FIELD:
        return _join([*fields, _EXTRA_FIELD[kind]]).encode()
    if kind in _WRONG_TIMESTAMP:
        return _join(_replace(fields, "timestamp", _WRONG_TIMESTAMP[kind](ts_ms))).encode()
    return _broken_message(kind, fields)


def _broken_message(kind: str, fields: Fields) -> bytes | None:
    """Kinds that break the message as a whole rather than one field."""
    text = _join(fields)
    match kind:
        case "tombstone":
            return None
        case "empty_value":
            return b""
        case "invalid_utf8":  # a client that encodes Latin-1
            return _join(_replace(fields, "city", '"Montréal"')).encode("latin-1", "replace")
        case "not_json":
            return "&".join(n + "=" + v.strip('"') for n, v in fields).encode()  # a form post
        case "truncated_json":
            return text[: len(text) // 2].encode()
        case "not_an_object":
            return f"[{text}]".encode()
    raise ValueError(f"unknown bad kind {kind!r}")


def _join(fields: Iterable[tuple[str, str]]) -> str:
    return "{" + ",".join(f'"{name}":{value}' for name, value in fields) + "}"


def _replace(fields: Fields, name: str, value: str | None) -> Fields:
    """Set (or, with None, drop) one field, keeping the order producers send."""
    if value is None:
        return [(n, v) for n, v in fields if n != name]
    if any(n == name for n, _ in fields):
        return [(n, value if n == name else v) for n, v in fields]
    return [*fields, (name, value)]
