"""Hostile input, property-based: the classifier against an independent reference of the contract.

:func:`reference` is written from README.md ("The event contract") and the decisions documented on
``classify`` (blank = ASCII whitespace only, a value of only JSON whitespace is empty, a lone
surrogate makes a field bad, ``-0`` is ``0``), not from ``contract.py``'s code, and decides with
other techniques: ``json.loads`` with hooks that *keep* duplicated keys (checked afterwards, over
the whole tree), an iterative depth walk of the decoded document instead of a token scan, one
regex with named groups for the ISO profile and ``datetime`` arithmetic for the offset, the
1970..2099 range and the range around the read moment, ``str.encode`` to find lone surrogates
and to measure a field's bytes.

Messages are built by Hypothesis: valid events in every accepted form (string or integer ids, ISO
with ``Z``/``±hh:mm`` at any precision, epoch milliseconds, optional fields missing / null / blank,
extra fields, any key order, escaped or raw non-ASCII), then mutated: wrong types, missing and
extra fields, strings around their field's bound, huge strings (up to a 1 MiB url), deep nesting,
invalid UTF-8, raw and escaped NUL, overflowing epoch milliseconds, timestamps without a zone or
with a broken one, duplicated keys (also escaped, nested, or with an earlier error), empty and
whitespace values, tombstones and random bytes; each read at a drawn moment with drawn limits
(event times near the ends of the accepted range have a test of their own). Runs are
deterministic (``derandomize``, no example database); ``CLICKSTREAM_HYPOTHESIS_EXPLORE=1`` runs
20x the examples with fresh randomness.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from clickstream_spark.ingest.contract import (
    MAX_FIELD_BYTES,
    MAX_JSON_DEPTH,
    MAX_MESSAGE_BYTES,
    MAX_TIMESTAMP_US,
    MAX_URL_BYTES,
    MIN_TIMESTAMP_US,
    REASONS,
    EventTimeLimits,
    Verdict,
    _exact_row,
    _fast_row,
    classify,
)
from clickstream_spark.ingest.event_time import epoch_micros
from clickstream_spark.ingest.parse import parse_kafka, quarantine_rows, valid_events
from clickstream_spark.schema import EVENT_FIELDS, KAFKA_SOURCE_SCHEMA
from clickstream_spark.tools.generate import generate_messages

# --- the reference validator, from the contract --------------------------------------------------

LIMIT_BYTES = 64 * 1024  # "too_large (over 64 KiB)"
LIMIT_DEPTH = 64  # "malformed_json (also nesting deeper than 64)"
FIELDS = ("row_key", "user_id", "timestamp", "url", "country", "city", "browser", "os", "device")
OPTIONAL = FIELDS[4:]
FIRST = datetime(1970, 1, 1, tzinfo=UTC)  # "accepted from 1970 ..."
END = datetime(2100, 1, 1, tzinfo=UTC)  # "... to the end of 2099": END itself is out
LAST_US = (END - FIRST) // timedelta(microseconds=1) - 1
LAST_MS = LAST_US // 1000
LIMIT_URL = 8 * 1024  # "url: at most 8 KiB (UTF-8)"
LIMIT_TEXT = 256  # "other strings: at most 256 bytes (UTF-8)"
BOUND = {f: LIMIT_URL if f == "url" else LIMIT_TEXT for f in FIELDS if f != "timestamp"}


class Moment(NamedTuple):
    """When the message is read, and how far from then an event time may lie."""

    read_at: datetime
    limits: EventTimeLimits

    def accepts(self, instant: datetime) -> bool:
        """read_at - max_age <= instant <= read_at + max_lead (a bound past year 1 or 9999
        bounds nothing)."""
        try:
            if instant < self.read_at - self.limits.max_age:
                return False
        except OverflowError:
            pass
        try:
            return instant <= self.read_at + self.limits.max_lead
        except OverflowError:
            return True


# Read in 2024, any event time of 1970..2099 accepted: for the rules that are not about time.
ANY_TIME = Moment(
    datetime(2024, 5, 2, tzinfo=UTC),
    EventTimeLimits(timedelta(days=60_000), timedelta(days=60_000)),
)

_ONLY_JSON_WS = re.compile(rb"[ \t\n\r]*")  # RFC 8259 insignificant whitespace
_BLANK = re.compile(r"[ \t\n\r\f\v]*")  # ASCII whitespace: what "empty" means for a string
_ISO = re.compile(
    r"""
    (?P<year>[0-9]{4}) - (?P<month>[0-9]{2}) - (?P<day>[0-9]{2})
    T (?P<hour>[0-9]{2}) : (?P<minute>[0-9]{2})
    (?: : (?P<second>[0-9]{2}) (?: \. (?P<fraction>[0-9]+) )? )?
    (?: (?P<utc>Z) | (?P<sign>[+-]) (?P<off_h>[0-9]{2}) : (?P<off_m>[0-9]{2}) )
    """,
    re.VERBOSE | re.ASCII,
)


class Ref(NamedTuple):
    """A verdict as the contract states it: the reason, or the typed event (timestamp UTC)."""

    reason: str | None
    row_key: str | None = None
    user_id: str | None = None
    timestamp: datetime | None = None
    url: str | None = None
    country: str | None = None
    city: str | None = None
    browser: str | None = None
    os: str | None = None
    device: str | None = None


def as_ref(v: Verdict) -> Ref:
    return Ref(
        v.reason, v.row_key, v.user_id, v.timestamp, v.url, *(getattr(v, f) for f in OPTIONAL)
    )


class _Integer(str):
    """A JSON integer, as its text."""


class _Fraction(str):
    """A JSON number with a fraction or an exponent, as its text."""


class _Pairs(list):
    """A JSON object as its (key, value) pairs, in order, duplicates kept."""


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _depth_and_duplicates(doc: Any) -> tuple[int, bool]:
    """Deepest container level (the top one is 1, scalars do not count); any repeated key."""
    deepest, duplicated = 0, False
    todo = [(doc, 1)]
    while todo:
        node, level = todo.pop()
        if type(node) is _Pairs:
            keys = [key for key, _ in node]
            duplicated = duplicated or len(set(keys)) != len(keys)
            children = [value for _, value in node]
        elif type(node) is list:
            children = node
        else:
            continue
        deepest = max(deepest, level)
        todo.extend((child, level + 1) for child in children)
    return deepest, duplicated


def _storable(text: str) -> bool:
    """Unicode that UTF-8 can carry: no lone surrogate (JSON can escape one, UTF-8 cannot)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _required_text(value: Any) -> str | None:
    if type(value) is str and not _BLANK.fullmatch(value) and _storable(value):
        return value
    return None


def _identifier(value: Any) -> str | None:
    if type(value) is _Integer:  # JSON forbids leading zeros: the text is canonical but for -0
        return "0" if str(value) == "-0" else str(value)
    return _required_text(value)


def _instant(value: Any) -> datetime | None:
    try:
        if type(value) is _Integer:
            if len(value.lstrip("-")) > 15:  # 10**15 ms is past year 30000 anyway
                return None
            instant = FIRST + timedelta(milliseconds=int(value))
        elif type(value) is str:
            m = _ISO.fullmatch(value)
            if m is None:
                return None
            g = m.groupdict()
            fraction = ((g["fraction"] or "") + "000000")[:6]  # truncated to microseconds
            local = datetime(
                int(g["year"]), int(g["month"]), int(g["day"]),
                int(g["hour"]), int(g["minute"]), int(g["second"] or 0), int(fraction),
                tzinfo=UTC,
            )  # fmt: skip
            if g["utc"]:
                offset = timedelta(0)
            else:
                hours, minutes = int(g["off_h"]), int(g["off_m"])
                if hours > 23 or minutes > 59:
                    return None
                offset = timedelta(hours=hours, minutes=minutes)
                offset = -offset if g["sign"] == "-" else offset
            instant = local - offset
        else:
            return None
    except (ValueError, OverflowError):  # month 13, second 60, year 0, beyond year 9999...
        return None
    return instant if FIRST <= instant < END else None


def _typed(name: str, value: Any) -> tuple[bool, Any]:
    """(the field has the right form, its typed value: None for a missing optional field)."""
    if name in ("row_key", "user_id"):
        typed = _identifier(value)
    elif name == "timestamp":
        typed = _instant(value)
    elif name == "url":
        typed = _required_text(value)
    elif value is None:  # an optional field: missing or null
        return True, None
    elif type(value) is str and _storable(value):
        return True, None if _BLANK.fullmatch(value) else value
    else:
        return False, None
    return typed is not None, typed


def reference(value: bytes | None, moment: Moment) -> Ref:
    """The verdict the contract gives ``value`` (a Kafka message value, None for a tombstone)
    read at ``moment``."""
    if value is None or _ONLY_JSON_WS.fullmatch(value):
        return Ref("empty_value")
    if len(value) > LIMIT_BYTES:
        return Ref("too_large")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return Ref("invalid_utf8")
    try:
        doc = json.loads(
            text,
            object_pairs_hook=_Pairs,
            parse_int=_Integer,
            parse_float=_Fraction,
            parse_constant=_no_constant,
        )
    except (ValueError, RecursionError):  # RecursionError: far deeper than 64 anyway
        return Ref("malformed_json")
    deepest, duplicated = _depth_and_duplicates(doc)
    if deepest > LIMIT_DEPTH:
        return Ref("malformed_json")
    if type(doc) is not _Pairs:
        return Ref("not_an_object")
    if duplicated:
        return Ref("duplicate_key")
    event = dict(doc)
    typed: dict[str, Any] = {}
    for name in FIELDS:  # each field whole (form, then length or range), in contract order
        good, typed[name] = _typed(name, event.get(name))
        if not good:
            return Ref(f"missing_or_bad:{name}")
        if name == "timestamp":
            if not moment.accepts(typed[name]):
                return Ref("out_of_range:timestamp")
        elif typed[name] is not None and len(typed[name].encode("utf-8")) > BOUND[name]:
            return Ref(f"too_long:{name}")
    return Ref(None, **typed)


def test_the_contract_constants_are_the_parsers() -> None:
    assert (MAX_MESSAGE_BYTES, MAX_JSON_DEPTH) == (LIMIT_BYTES, LIMIT_DEPTH)
    assert (MIN_TIMESTAMP_US, MAX_TIMESTAMP_US) == (0, LAST_US)
    assert (MAX_URL_BYTES, MAX_FIELD_BYTES) == (LIMIT_URL, LIMIT_TEXT)
    assert list(REASONS[6:15]) == [f"missing_or_bad:{f}" for f in FIELDS]
    assert list(REASONS[15:]) == ["out_of_range:timestamp"] + [f"too_long:{f}" for f in BOUND]
    assert EventTimeLimits() == (timedelta(days=365), timedelta(days=1))  # README's defaults


# --- strategies: valid events --------------------------------------------------------------------

EXPLORE = os.environ.get("CLICKSTREAM_HYPOTHESIS_EXPLORE") == "1"


def _settings(examples: int, **extra: Any) -> settings:
    return settings(
        max_examples=examples * (20 if EXPLORE else 1),
        derandomize=not EXPLORE,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        **extra,
    )


# Strategies are built once here: building them inside a composite costs more than drawing.
_CHARS = st.characters(codec="utf-8")  # any Unicode scalar value: NUL, controls, astral...
_nonblank = st.text(_CHARS, min_size=1, max_size=12).map(
    lambda s: s + "x" if _BLANK.fullmatch(s) else s
)
_blank = st.text(" \t\n\r\f\v", max_size=3)
_URLS = ("https://shop.example.com/cart", "/", '/search?q=[{"}]', "https://e.example/ä?x=東京#f")
_urls = st.one_of(st.sampled_from(_URLS), _nonblank)
_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(_CHARS, max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
_extra_fields = st.dictionaries(st.text(max_size=6), _json_values, max_size=2)
_booleans = st.booleans()
_digits = st.text("0123456789", min_size=1, max_size=6)
_instants_us = st.integers(0, LAST_US)
_epoch_ms = st.integers(0, LAST_MS)
_offsets = st.one_of(st.none(), st.integers(-(23 * 60 + 59), 23 * 60 + 59))  # minutes, None: Z
_PRECISIONS = ("minutes", "seconds", 1, 2, 3, 4, 5, 6, 7, 9, 12)
_precisions = st.sampled_from(_PRECISIONS)
_ID_KINDS = ("text", "text", "int", "big", "minus_zero", "uuid")
_id_kinds = st.sampled_from(_ID_KINDS)
_integers = st.integers()
_uuids = st.uuids().map(str)
_big_ints = st.tuples(st.integers(1, 9), st.sampled_from([20, LIMIT_TEXT - 1])).map(
    lambda t: str(t[0]) + "7" * t[1]
)
_OPTIONAL_FORMS = ("text", "text", "missing", "null", "blank")
_optional_forms = st.sampled_from(_OPTIONAL_FORMS)
_WS = ("", "", " ", "\n", "\t", "\r\n  ")
_ws = st.sampled_from(_WS)

Draw = Callable[[st.SearchStrategy[Any]], Any]

# Read moments: mostly "any time accepted" (the other rules see valid events), else a drawn moment
# with the default limits, a narrow window, or years on both sides.
_LIMITS = (
    EventTimeLimits(),
    EventTimeLimits(timedelta(days=2), timedelta(0)),
    EventTimeLimits(timedelta(0), timedelta(minutes=5)),
    EventTimeLimits(timedelta(days=20 * 365), timedelta(days=10 * 365)),
)
_limits = st.sampled_from(_LIMITS)
_read_moments = st.integers(0, LAST_US).map(lambda us: FIRST + timedelta(microseconds=us))
_moments = st.one_of(
    st.just(ANY_TIME), st.just(ANY_TIME), st.builds(Moment, _read_moments, _limits)
)


def _accepted(moment: Moment) -> tuple[int, int]:
    """The contract's accepted range of ``moment``, as the private paths take it."""
    return moment.limits.accepted_us(epoch_micros(moment.read_at))


class Member(NamedTuple):
    name: str  # the decoded key
    key: str  # the key as JSON text
    value: str  # the value as JSON text


class Event(NamedTuple):
    members: list[Member]
    ws: str  # whitespace around every token
    expected: Ref  # what a correct parser must give, by construction


def render(members: list[Member], ws: str) -> bytes:
    body = ",".join(f"{ws}{m.key}{ws}:{ws}{m.value}{ws}" for m in members)
    return ("{" + body + ws + "}").encode("utf-8")


@st.composite
def iso_timestamps(draw: Draw) -> tuple[str, datetime]:
    """ISO-8601 text with a zone at any precision, for an instant in range; and that instant."""
    utc = FIRST + timedelta(microseconds=draw(_instants_us))
    precision = draw(_precisions)
    if precision == "minutes":
        utc = utc.replace(second=0, microsecond=0)
    elif precision == "seconds":
        utc = utc.replace(microsecond=0)
    elif precision < 6:
        step = 10 ** (6 - precision)
        utc = utc.replace(microsecond=utc.microsecond // step * step)
    offset = draw(_offsets)
    local = utc + timedelta(minutes=offset or 0)
    text = f"{local:%Y-%m-%dT%H:%M}"
    if precision != "minutes":
        text += f":{local:%S}"
    if isinstance(precision, int):  # digits past microseconds are truncated: any will do
        text += "." + f"{local.microsecond:06d}"[:precision]
        text += draw(_digits)[: precision - 6] if precision > 6 else ""
    if offset is None:
        text += "Z"
    else:
        sign = "-" if offset < 0 or (offset == 0 and draw(_booleans)) else "+"
        text += f"{sign}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}"
    return text, utc


@st.composite
def identifiers(draw: Draw) -> tuple[Any, str]:
    """(the JSON value: a str, or an int's text as ``_Integer``; the id it must give)."""
    kind = draw(_id_kinds)
    if kind == "int":
        text = str(draw(_integers))
    elif kind == "big":
        text = draw(_big_ints)
    elif kind == "minus_zero":
        return _Integer("-0"), "0"
    else:
        text = draw(_uuids if kind == "uuid" else _nonblank)
        return text, text
    return _Integer(text), text


def _json(value: Any, ascii_only: bool) -> str:
    if type(value) is _Integer:
        return str(value)
    return json.dumps(value, ensure_ascii=ascii_only)


@st.composite
def events(draw: Draw) -> Event:
    """A valid event in any accepted form, and what it must be typed as."""
    ascii_only = draw(_booleans)  # every non-ASCII character as a \\u escape, or raw UTF-8
    sent: dict[str, Any] = {}
    expected: dict[str, Any] = {}
    sent["row_key"], expected["row_key"] = draw(identifiers())
    sent["user_id"], expected["user_id"] = draw(identifiers())
    if draw(_booleans):
        sent["timestamp"], expected["timestamp"] = draw(iso_timestamps())
    else:
        ms = draw(_epoch_ms)
        sent["timestamp"], expected["timestamp"] = _Integer(ms), FIRST + timedelta(milliseconds=ms)
    sent["url"] = expected["url"] = draw(_urls)
    for name in OPTIONAL:
        form = draw(_optional_forms)
        expected[name] = None
        if form == "text":
            sent[name] = expected[name] = draw(_nonblank)
        elif form == "null":
            sent[name] = None
        elif form == "blank":
            sent[name] = draw(_blank)
    for name, value in draw(_extra_fields).items():
        if name not in FIELDS:
            sent[name] = value
    members = [Member(k, _json(k, ascii_only), _json(v, ascii_only)) for k, v in sent.items()]
    draw(st.randoms(use_true_random=False)).shuffle(members)  # any key order
    return Event(members, draw(_ws), Ref(None, **expected))


# --- strategies: mutations -----------------------------------------------------------------------

# JSON texts a field should not hold, or that sit on an edge of a rule.
_ODD_VALUES = (  # the subtle ones first: Hypothesis draws early entries more often
    '"\\ud800"', '" "', '"\\u00a0"', "-0", "10.0", '"x\\udfffy"', '"\\f\\u000b"', "true", "null",
    '"\\ude00\\ud83d"', '""', "1E2", '"\\u0000"', "false", "0", "1", "-1", "1e3", "-0.0", "1.5",
    "[]", "{}", "[1]", '{"id":1}', '"\\t\\n"', '"\\u2028"', '"a\\u0000b"', '"\\ud83d\\ude00"',
    '"1714558830123"', '"2024-05-01T10:20:30"', '"2024-05-01T10:20:30Z"', "1714558830123",
    "1714558830123.0", "17145588301230000000", '"\\u0032024-05-01T10:20:30Z"',
)  # fmt: skip
_odd_values = st.one_of(
    st.sampled_from(_ODD_VALUES), _json_values.map(lambda v: json.dumps(v, ensure_ascii=False))
)
_fields = st.sampled_from(FIELDS)
_TS_KINDS = (
    "zone", "range_edge", "component", "no_zone", "epoch_edge", "fuzz", "zone", "template",
    "range_edge", "component", "epoch", "odd",
)  # fmt: skip
_ts_kinds = st.sampled_from(_TS_KINDS)
_ISO_EDIT_CHARS = st.sampled_from("0123456789:+-TZtz., \u0660\uff10\n")
_ISO_EDITS = st.sampled_from(("replace", "insert", "delete"))
_YEARS = st.sampled_from([0, 1, 1969, 1970, 2024, 2099, 2100, 9999])
_date_time_parts = st.tuples(
    _YEARS, st.integers(0, 13), st.integers(0, 32), st.integers(0, 25), st.integers(0, 61),
    st.integers(0, 61),
)  # fmt: skip
# Zones on both sides of the rule: hours 00-23 and minutes 00-59 are an offset, nothing else is.
_zones = st.one_of(
    st.tuples(
        st.sampled_from("+-"),
        st.sampled_from([0, 24, 5, 23, 14, 99, 1, 25]),
        st.sampled_from([60, 0, 99, 59, 30, 61, 45, 75]),
    ).map(lambda t: f"{t[0]}{t[1]:02d}:{t[2]:02d}"),
    st.sampled_from(["z", "Z", "", "+0530", "+05", "+05:30:00", " Z", "Z ", "+5:30", "UTC"]),
)
_ZONE_AT_END = re.compile(r"(Z|[+-][0-9]{2}:[0-9]{2})$")
# One component of a valid text (year, month, day, hour, minute, second) set to any number.
_components = st.tuples(st.integers(0, 5), st.integers(0, 99))
_EPOCH_EDGES = (LAST_MS, LAST_MS + 1, -1, 10**13, 2**63 - 1, 2**63, 2**64, -(2**63), 10**30)
_epoch_edges = st.tuples(st.sampled_from(_EPOCH_EDGES), st.integers(-2, 2)).map(sum)
# Instants within 2 ms of either end of the accepted range, as ISO (any offset) or epoch ms.
_range_edges = st.tuples(
    st.sampled_from([FIRST, END]),
    st.integers(-2000, 2000),
    st.one_of(st.none(), st.integers(-(23 * 60 + 59), 23 * 60 + 59)),
    st.booleans(),
)
_ODD_EPOCHS = ("-0", "9" * 5000, "-" + "9" * 30, "1.7e12", "0.0", "true", "null")
_odd_epochs = st.sampled_from(_ODD_EPOCHS)


@st.composite
def odd_timestamps(draw: Draw) -> str:
    """A timestamp on the edge of the rules or past it, as JSON text."""
    kind = draw(_ts_kinds)
    if kind in ("no_zone", "zone", "component", "fuzz"):
        text, _ = draw(iso_timestamps())
        if kind == "no_zone":
            text = _ZONE_AT_END.sub("", text)
        elif kind == "zone":
            text = _ZONE_AT_END.sub("", text) + draw(_zones)
        elif kind == "component":  # yyyy-mm-ddThh:mm[:ss...]: components start at 0, 5, 8...
            which, number = draw(_components)
            at = (0, 5, 8, 11, 14, 17)[which]
            if at < len(text) and text[at].isdigit():
                width = 4 if which == 0 else 2
                text = text[:at] + f"{number:0{width}d}" + text[at + width :]
        else:  # a few edits
            for _ in range(draw(st.integers(1, 3))):
                i, char = draw(st.integers(0, len(text))), draw(_ISO_EDIT_CHARS)
                edit = draw(_ISO_EDITS)
                if edit == "insert":
                    text = text[:i] + char + text[i:]
                else:
                    text = text[:i] + (char if edit == "replace" else "") + text[i + 1 :]
        return json.dumps(text)
    if kind == "range_edge":
        edge, micros, offset, as_iso = draw(_range_edges)
        instant = edge + timedelta(microseconds=micros)
        if not as_iso:
            return str((instant - FIRST) // timedelta(milliseconds=1))
        local = instant + timedelta(minutes=offset or 0)
        zone = "Z" if offset is None else f"{'-' if offset < 0 else '+'}{abs(offset) // 60:02d}:"
        zone += "" if offset is None else f"{abs(offset) % 60:02d}"
        return json.dumps(f"{local:%Y-%m-%dT%H:%M:%S.%f}{zone}")
    if kind == "template":  # every component on or past its range, any zone
        year, month, day, hour, minute, second = draw(_date_time_parts)
        zone = draw(_zones)
        return json.dumps(
            f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}{zone}"
        )
    if kind == "epoch":
        return str(draw(_integers))
    if kind == "epoch_edge":
        return str(draw(_epoch_edges))
    return draw(_odd_epochs)


def _escape_one(name: str, i: int) -> str:
    """``name`` as a JSON string with its i-th character written as a \\u escape."""
    if not name:
        return '""'
    i %= len(name)
    escaped = f"\\u{ord(name[i]):04x}" if ord(name[i]) < 0x10000 else json.dumps(name[i])[1:-1]
    return json.dumps(name[:i])[:-1] + escaped + json.dumps(name[i + 1 :])[1:]


def _deep(depth: int, pattern: str) -> str:
    """A JSON value ``depth`` containers deep (``depth`` >= 1), brackets in strings included."""
    if pattern == "arrays":
        return "[" * depth + "]" * depth
    if pattern == "objects":
        return '{"a":' * (depth - 1) + "{}" + "}" * (depth - 1)
    opening = "".join("[" if i % 2 else '{"k":' for i in range(depth - 1))
    closing = "".join("]" if i % 2 else "}" for i in reversed(range(depth - 1)))
    return opening + '["[{]}\\"", {"x":"]]]"}]' + closing


def _set(members: list[Member], name: str, value: str) -> list[Member]:
    key = json.dumps(name)
    if any(m.name == name for m in members):
        return [Member(name, key, value) if m.name == name else m for m in members]
    return [*members, Member(name, key, value)]


_FIELD_OPS = (
    "wrong_type", "drop", "extra", "huge", "deep", "duplicate", "nested_duplicate", "timestamp",
    "timestamp", "surrogate", "nul", "rename", "long",
)  # fmt: skip
_field_ops = st.sampled_from(_FIELD_OPS)
_extra_names = st.text(max_size=8).filter(lambda n: n not in FIELDS)
# Mostly around the limit; 1 MiB (a url as big as a Kafka message by default) now and then.
_HUGE_SIZES = (60_000, 65_400, 65_600, 100_000, 60_000, 65_400, 65_600, 1_048_576)
_huge = st.tuples(
    st.sampled_from(_HUGE_SIZES),
    st.sampled_from(["url", "url", "city", "x_debug"]),
    st.sampled_from(["a", "é", "東", "\\u0000"]),
)
_DEPTHS = (64, 63, 65, 1, 62, 100, 2, 999, 20_000)  # the event is level 1: 64 is one too deep
_deep_values = st.tuples(
    st.sampled_from(_DEPTHS), st.sampled_from(["arrays", "objects", "mixed"])
).map(lambda t: _deep(*t))
_holders = st.sampled_from(["ctx", "url", "city"])


def _long_value(name: str, over: int, char: str) -> tuple[str, str]:
    """(field, JSON text of a value ``over`` bytes past the field's bound, decoded) made of
    ``char`` (a JSON escape counts as the character it stands for) and ASCII to fill."""
    if char == "digits":
        return name, "7" * (BOUND[name] + over)  # an integer id: its decimal text
    decoded = json.loads(f'"{char}"')
    unit = len(decoded.encode())
    size = BOUND[name] + over
    return name, '"' + char * (size // unit) + "y" * (size % unit) + '"'


_long_values = st.builds(
    _long_value,
    st.sampled_from(list(BOUND)),
    st.sampled_from([1, 0, -1, 1]),
    st.sampled_from(["a", "é", "東", "😀", "\\u00e9", "\\ud83d\\ude00", "digits"]),
).filter(lambda t: t[1].startswith('"') or t[0] in ("row_key", "user_id"))
_NESTED_DUPLICATES = ('{"a":1,"a":2}', '[{"b":[],"b":[]}]', '{"c":{"d":0,"d":0}}')
_SURROGATES = ('"\\ud800"', '"ab\\udc00"', '"\\ud83d\\ude00"', '"\\udbff\\udfff"')
_any_field = st.sampled_from([*FIELDS, "note"])
_NEAR_MISSES = ("upper", "space", "nul", "short", "escaped")
_small = st.integers(0, 20)


@st.composite
def mutate_fields(draw: Draw, members: list[Member], op: str | None = None) -> list[Member]:
    """One change to the members of an event (``op`` or a drawn one)."""
    op = op or draw(_field_ops)
    field = draw(_fields)
    if op == "wrong_type":
        return _set(members, field, draw(_odd_values))
    if op == "drop":
        return [m for m in members if m.name != field]
    if op == "extra":
        name = draw(_extra_names)
        if any(m.name == name for m in members):
            return members
        return [*members, Member(name, json.dumps(name), draw(_odd_values))]
    if op == "long":  # a string field one byte under, at or over its bound
        return _set(members, *draw(_long_values))
    if op == "huge":
        size, name, char = draw(_huge)
        unit = 6 if char.startswith("\\") else len(char.encode())
        return _set(members, name, '"https://e.example/' + char * (size // unit) + '"')
    if op == "deep":
        return _set(members, draw(_holders), draw(_deep_values))
    if op == "duplicate":  # the same key twice: same or escaped spelling, same or other value
        twin = draw(st.sampled_from(members)) if members else Member("url", '"url"', '"/"')
        key = _escape_one(twin.name, draw(_small)) if draw(_booleans) else twin.key
        value = twin.value if draw(_booleans) else draw(_odd_values)
        i = draw(st.integers(0, len(members)))
        return [*members[:i], Member(twin.name, key, value), *members[i:]]
    if op == "nested_duplicate":
        return _set(members, draw(_holders), draw(st.sampled_from(_NESTED_DUPLICATES)))
    if op == "timestamp":
        return _set(members, "timestamp", draw(odd_timestamps()))
    if op == "surrogate":
        return _set(members, draw(_any_field), draw(st.sampled_from(_SURROGATES)))
    if op == "nul":  # an escaped NUL: legal JSON, kept
        return _set(members, draw(_any_field), '"a\\u0000b"')
    # rename: a near miss of a field name, or the same name with an escape (still the field)
    near = draw(st.sampled_from(_NEAR_MISSES))
    if near == "escaped":
        name, key = field, _escape_one(field, draw(_small))
    else:
        name = {"upper": field.upper(), "space": " " + field, "nul": field + "\x00"}.get(
            near, field[:-1]
        )
        key = json.dumps(name)
    return [Member(name, key, m.value) if m.name == field else m for m in members]


_INVALID_UTF8 = (
    b"\xff", b"\xfe", b"\x80", b"\xc3", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
    b"\xe2\x82", b"\xf0\x9f\x98",
)  # fmt: skip
_BYTE_OPS = (
    "invalid_utf8", "raw_nul", "truncate", "flip", "insert", "wrap", "trailing", "bom",
    "pad_to_limit",
)  # fmt: skip
_byte_ops = st.sampled_from(_BYTE_OPS)
_invalid_utf8 = st.sampled_from(_INVALID_UTF8)
_bytes = st.integers(0, 255)
_short_binary = st.binary(min_size=1, max_size=4)
_WRAPS = (b"[%s]", b'{"event":%s}', b"[%s,%s]")
_TRAILING = (b" ", b"\n", b"x", b"}", b",", b" {}", b"\x00", b"\f")
_near_limit = st.sampled_from([LIMIT_BYTES - 1, LIMIT_BYTES, LIMIT_BYTES + 1])


@st.composite
def mutate_bytes(draw: Draw, value: bytes) -> bytes:
    """One change to the bytes of a message."""
    op = draw(_byte_ops)
    i = draw(st.integers(0, len(value)))
    if op == "invalid_utf8":
        return value[:i] + draw(_invalid_utf8) + value[i:]
    if op == "raw_nul":
        return value[:i] + b"\x00" + value[i:]
    if op == "truncate":
        return value[:i]
    if op == "flip":
        return value[:i] + bytes([draw(_bytes)]) + value[i + 1 :]
    if op == "insert":
        return value[:i] + draw(_short_binary) + value[i:]
    if op == "wrap":
        return draw(st.sampled_from(_WRAPS)).replace(b"%s", value)
    if op == "trailing":
        return value + draw(st.sampled_from(_TRAILING))
    if op == "bom":
        return b"\xef\xbb\xbf" + value
    # whitespace after the first byte, up to exactly the limit, one under or one over
    return value[:1] + b" " * max(0, draw(_near_limit) - len(value)) + value[1:]


_WHOLE_OPS = (
    "tombstone", "empty", "whitespace", "huge_whitespace", "random", "text", "scalar", "deep",
    "huge",
)  # fmt: skip
_whole_ops = st.sampled_from(_WHOLE_OPS)
_whitespace = st.one_of(
    st.text(" \t\n\r", min_size=1, max_size=6).map(str.encode),
    st.sampled_from([b"\f", b"\v", b" \x00", "\u00a0".encode(), "\u2028".encode()]),
)
_huge_whitespace = st.tuples(
    st.sampled_from([b" ", b"\t", b"\r\n", b"\n \r\t", b"\f"]),
    st.sampled_from([LIMIT_BYTES - 1, LIMIT_BYTES, LIMIT_BYTES + 1, 1_048_576]),
).map(lambda t: (t[0] * t[1])[: t[1]])
_random_bytes = st.binary(max_size=300)
_random_text = st.text(_CHARS, max_size=100).map(str.encode)
_scalars = _json_values.filter(lambda v: not isinstance(v, dict)).map(lambda v: json.dumps(v))
_deep_documents = st.tuples(
    st.sampled_from([65, 64, 63, 30_000]), st.sampled_from(["arrays", "objects", "mixed"])
).map(lambda t: _deep(*t).encode())
_HUGE_DOCUMENTS = (b"\xff" * (LIMIT_BYTES + 1), b"x" * 70_000, b"[" * 70_000)


@st.composite
def whole_messages(draw: Draw) -> bytes | None:
    """A message that is not an event at all."""
    op = draw(_whole_ops)
    if op == "tombstone":
        return None
    if op == "empty":
        return b""
    if op == "whitespace":
        return draw(_whitespace)
    if op == "huge_whitespace":  # around the size limit, and 1 MiB
        return draw(_huge_whitespace)
    if op == "random":
        return draw(_random_bytes)
    if op == "text":
        return draw(_random_text)
    if op == "scalar":
        return draw(_scalars).encode()
    if op == "deep":
        return draw(_deep_documents)
    return draw(st.sampled_from(_HUGE_DOCUMENTS))


class Message(NamedTuple):
    value: bytes | None
    expected: Ref | None  # known by construction (untouched valid events only)

    def __repr__(self) -> str:  # a 1 MiB value would flood the failure report
        v = self.value
        shown = repr(v) if v is None or len(v) <= 400 else f"{v[:200]!r} + ... + {v[-100:]!r}"
        return f"Message(value={shown} ({'-' if v is None else len(v)} bytes))"


# "field": one field made wrong or missing (every missing_or_bad reason, often); "fields": 1-3
# changes of any kind; "bytes": a byte-level change; "whole": not an event at all.
_PLANS = ("field", "valid", "fields", "bytes", "whole", "field", "valid", "fields+bytes", "field")
_plans = st.sampled_from(_PLANS)
_single_ops = st.sampled_from(
    ["timestamp", "wrong_type", "deep", "drop", "surrogate", "wrong_type", "duplicate", "huge",
     "long"]
)  # fmt: skip
_op_counts = st.integers(1, 3)


@st.composite
def messages(draw: Draw) -> Message:
    """A Kafka message value: a valid event, a mutated one, or no event at all."""
    plan = draw(_plans)
    if plan == "whole":
        return Message(draw(whole_messages()), None)
    event = draw(events())
    if plan == "valid":
        return Message(render(event.members, event.ws), event.expected)
    members = event.members
    if plan == "field":
        members = draw(mutate_fields(members, draw(_single_ops)))
    elif plan != "bytes":
        for _ in range(draw(_op_counts)):
            members = draw(mutate_fields(members))
    value = render(members, event.ws)
    if plan in ("bytes", "fields+bytes"):
        value = draw(mutate_bytes(value))
    return Message(value, None)


# --- properties of the classifier ----------------------------------------------------------------


def _check_quarantine_copy(value: bytes | None, v: Verdict) -> None:
    if v.valid:
        assert (v.raw_value, v.raw_encoding) == (None, None)
    elif v.raw_encoding == "none":
        assert value is None and v.raw_value is None
    elif v.raw_encoding == "base64":
        assert base64.b64decode(v.raw_value or "") == value
    else:
        assert v.raw_encoding == "utf8" and (v.raw_value or "").encode() == value


@_settings(300)
@given(events())
def test_valid_events_are_typed_as_built(event: Event) -> None:
    value = render(event.members, event.ws)
    assert (
        reference(value, ANY_TIME) == event.expected
    )  # the reference checked against construction
    assert as_ref(classify(value, *ANY_TIME)) == event.expected


@_settings(800)
@given(messages(), _moments)
def test_classify_agrees_with_the_reference(message: Message, moment: Moment) -> None:
    verdict = classify(message.value, *moment)  # never raises
    assert as_ref(verdict) == reference(message.value, moment)
    _check_quarantine_copy(message.value, verdict)


@_settings(800)
@given(messages(), _moments)
def test_the_fast_path_answers_only_what_the_exact_path_would(
    message: Message, moment: Moment
) -> None:
    if message.value is None:
        return
    fast = _fast_row(message.value, *_accepted(moment))
    if fast is not None:
        assert fast == _exact_row(message.value, *_accepted(moment))


def test_generated_clickstream_takes_the_fast_path() -> None:
    # Otherwise the stream would be correct but 1.5x slower, and nothing else would say so.
    start = datetime(2026, 11, 1, tzinfo=UTC)
    sent = generate_messages(2000, start=start, end=start + timedelta(days=1), seed=3)
    values = [m.value for m in sent]
    accepted = _accepted(Moment(start + timedelta(days=1), EventTimeLimits()))
    assert all(v is not None and _fast_row(v, *accepted) is not None for v in values)
    assert [_fast_row(v, *accepted) for v in values] == [_exact_row(v, *accepted) for v in values]


@_settings(300)
@given(events(), odd_timestamps(), _moments)
def test_timestamps_agree_with_the_reference(event: Event, timestamp: str, moment: Moment) -> None:
    # The richest rule of the contract, on its own: every other field of the event is valid.
    value = render(_set(event.members, "timestamp", timestamp), event.ws)
    assert as_ref(classify(value, *moment)) == reference(value, moment)


_limit_edges = st.tuples(
    st.sampled_from(["oldest", "newest"]),
    st.integers(-2000, 2000),  # microseconds from the end of the accepted range
    st.one_of(st.none(), st.integers(-(23 * 60 + 59), 23 * 60 + 59)),  # offset minutes, None: Z
    st.booleans(),  # ISO text, or epoch milliseconds
)


@_settings(400)
@given(events(), _read_moments, _limits, _limit_edges)
def test_event_times_at_the_ends_of_the_accepted_range_agree_with_the_reference(
    event: Event, read_at: datetime, limits: EventTimeLimits, edge: tuple
) -> None:
    end, micros, offset, as_iso = edge
    moment = Moment(read_at, limits)
    try:
        base = read_at - limits.max_age if end == "oldest" else read_at + limits.max_lead
        instant = base + timedelta(microseconds=micros)
    except OverflowError:
        return  # no such instant: that end of the range bounds nothing
    if as_iso:
        local = instant + timedelta(minutes=offset or 0)
        zone = "Z" if offset is None else f"{'-' if offset < 0 else '+'}{abs(offset) // 60:02d}:"
        zone += "" if offset is None else f"{abs(offset) % 60:02d}"
        text = json.dumps(f"{local:%Y-%m-%dT%H:%M:%S.%f}{zone}")
    else:
        text = str((instant - FIRST) // timedelta(milliseconds=1))
    value = render(_set(event.members, "timestamp", text), event.ws)
    assert as_ref(classify(value, *moment)) == reference(value, moment)


@_settings(300)
@given(st.one_of(st.none(), st.binary(max_size=200), st.text(_CHARS, max_size=60).map(str.encode)))
def test_random_bytes_agree_with_the_reference(value: bytes | None) -> None:
    verdict = classify(value, *ANY_TIME)
    assert as_ref(verdict) == reference(value, ANY_TIME)
    _check_quarantine_copy(value, verdict)


# --- disagreements found, decided from the contract, fixed in contract.py ------------------------


def _event_text(**fields: Any) -> bytes:
    event = {"row_key": "r", "user_id": "u", "timestamp": "2024-05-01T10:20:30Z", "url": "/"}
    return json.dumps({**event, **fields}).encode()


def test_offset_minutes_past_59_are_not_an_offset() -> None:
    # datetime.fromisoformat takes "+05:60" as +06:00 and "+00:99" as +01:39; ±hh:mm has
    # minutes 00-59 (ISO-8601), so the timestamp is bad, not silently shifted.
    for bad in ("2024-05-01T10:20:30+05:60", "2024-05-01T10:20:30+00:99", "2024-05-01T10:20-01:75"):
        assert classify(_event_text(timestamp=bad), *ANY_TIME).reason == "missing_or_bad:timestamp"
    assert classify(_event_text(timestamp="2024-05-01T10:20:30+05:59"), *ANY_TIME).valid


def test_only_whitespace_is_empty_whatever_its_size() -> None:
    # empty_value is checked before too_large, and a value of only JSON whitespace is empty.
    for blank in (b" " * (LIMIT_BYTES + 1), b"\r\n" * 600_000):
        v = classify(blank, *ANY_TIME)
        assert (v.reason, v.raw_value, v.raw_encoding) == ("empty_value", blank.decode(), "utf8")
    assert (
        classify(b"\f" * (LIMIT_BYTES + 1), *ANY_TIME).reason == "too_large"
    )  # \f is not JSON whitespace


# --- the same inside Spark -----------------------------------------------------------------------


def batch_settings(size: int) -> settings:
    """Draw ``size`` examples once, the same every run, for a batch (no shrinking)."""
    return settings(
        max_examples=size,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )


def hostile_batch(size: int) -> list[bytes | None]:
    """``size`` messages drawn from :func:`messages`, the same every run (no shrinking: a batch).

    Each is checked against the reference on the way (unshrunk; the property above shrinks).
    """
    batch: list[bytes | None] = []

    @batch_settings(size)
    @given(messages())
    def collect(message: Message) -> None:
        assert as_ref(classify(message.value, *ANY_TIME)) == reference(message.value, ANY_TIME), (
            message
        )
        batch.append(message.value)

    collect()
    return batch


KAFKA_TS = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
# Both valid and out-of-range event times among the drawn messages.
SPARK_MOMENT = Moment(
    datetime(2024, 5, 2, tzinfo=UTC),
    EventTimeLimits(timedelta(days=50 * 365), timedelta(days=30 * 365)),
)


# pyspark 3.5's own pandas conversions call pandas 2.2's deprecated dtype checks.
@pytest.mark.filterwarnings("ignore:is_.*_dtype is deprecated:DeprecationWarning")
def test_parse_kafka_agrees_with_classify_on_a_hostile_batch(spark: SparkSession) -> None:
    # The drawn batch, and one message per reason so that every rule is met whatever was drawn.
    values = [
        *hostile_batch(1000),
        b"",
        b"x" * (LIMIT_BYTES + 1),
        b"\xff",
        b"{",
        b"[]",
        b'{"a": 1, "a": 2}',
        *(_event_text(**{name: 5}) for name in EVENT_FIELDS),
        *(_event_text(**{name: "\u00e9" * (BOUND[name] // 2 + 1)}) for name in BOUND),
        _event_text(timestamp="2099-01-01T00:00:00Z"),
    ]
    verdicts = [classify(v, *SPARK_MOMENT) for v in values]
    covered = Counter(v.reason for v in verdicts)
    assert set(covered) == {None, *REASONS}, f"reasons not drawn: {set(REASONS) - set(covered)}"

    # In and out through Arrow (pandas): megabytes of values, pickled row by row, take longer.
    columns = {
        "key": [b"k"] * len(values),
        "value": values,
        "topic": "hostile",
        "partition": [i % 3 for i in range(len(values))],
        "offset": range(len(values)),
    }
    schema = StructType([f for f in KAFKA_SOURCE_SCHEMA if f.name in columns])
    kafka = spark.createDataFrame(pd.DataFrame(columns), schema).withColumn(
        "timestamp", F.lit(KAFKA_TS)
    )
    parsed = parse_kafka(kafka, SPARK_MOMENT.limits, read_at=F.lit(SPARK_MOMENT.read_at)).cache()
    try:
        got = (
            parsed.withColumn("timestamp_us", F.unix_micros("timestamp"))
            .drop("timestamp")
            .toPandas()
            .set_index("offset")
        )
        valid = valid_events(parsed).count()
        quarantined = quarantine_rows(parsed, F.current_timestamp()).count()
    finally:
        parsed.unpersist()

    assert sorted(got.index) == list(range(len(values)))
    assert (valid, quarantined) == (covered[None], len(values) - covered[None])
    for offset, (value, v) in enumerate(zip(values, verdicts, strict=True)):
        row = got.loc[offset]
        assert (row["topic"], row["partition"]) == ("hostile", offset % 3)
        fields = [None if pd.isna(row[f]) else row[f] for f in Verdict._fields]
        if fields[3] is not None:  # timestamp_us: float64 in pandas, next to nulls
            fields[3] = int(fields[3])
        assert tuple(fields) == tuple(v), value[:200] if value else value
