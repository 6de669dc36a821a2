"""The event contract, rule by rule, on the plain classifier (no Spark)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clickstream_spark.ingest.contract import (
    MAX_JSON_DEPTH,
    MAX_MESSAGE_BYTES,
    MAX_TIMESTAMP_US,
    MIN_TIMESTAMP_US,
    REASONS,
    Reason,
    Verdict,
    classify,
    classify_batch,
)
from clickstream_spark.schema import EVENT_FIELDS

TS = "2024-05-01T10:20:30.123Z"
TS_US = 1714558830123000  # the same instant in epoch microseconds


def event(**fields: Any) -> dict[str, Any]:
    """A valid event; keyword arguments replace fields, ``DROP`` removes one."""
    base = {
        "row_key": "r-1",
        "user_id": "u-1",
        "timestamp": TS,
        "url": "https://shop.example.com/",
        "country": "FR",
        "city": "Paris",
        "browser": "Firefox",
        "os": "Linux",
        "device": "desktop",
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v is not DROP}


DROP = object()


def encode(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode()


def verdict_of(**fields: Any) -> Verdict:
    return classify(encode(event(**fields)))


def reason_of(**fields: Any) -> str | None:
    return verdict_of(**fields).reason


# --- the reasons ---------------------------------------------------------------------------------


def test_reason_strings_are_stable() -> None:
    # Stored in Cassandra and counted in dashboards: a rename is a breaking change.
    assert list(REASONS) == [
        "empty_value",
        "too_large",
        "invalid_utf8",
        "malformed_json",
        "not_an_object",
        "duplicate_key",
        *(f"missing_or_bad:{f}" for f in EVENT_FIELDS),
    ]
    assert Reason.DUPLICATE_KEY == "duplicate_key"


# --- valid events --------------------------------------------------------------------------------


def test_valid_event_is_typed_and_keeps_no_raw_copy() -> None:
    assert verdict_of() == Verdict(
        None, "r-1", "u-1", TS_US, "https://shop.example.com/", "FR", "Paris", "Firefox",
        "Linux", "desktop", None, None,
    )  # fmt: skip
    assert verdict_of().valid
    assert verdict_of().timestamp == datetime(2024, 5, 1, 10, 20, 30, 123000, tzinfo=UTC)


def test_unknown_fields_are_ignored_whatever_they_hold() -> None:
    v = verdict_of(sdk={"name": "web", "v": [1, 2.5, None, True]}, extra="x", n=1e308)
    assert v.valid and v.row_key == "r-1"


def test_field_order_and_whitespace_do_not_matter() -> None:
    text = '\n { "url" : "/a" ,\t"timestamp":"2024-05-01T00:00:00Z", "user_id":"u","row_key":"r"} '
    assert classify(text.encode()) == Verdict(
        None, "r", "u", 1714521600000000, "/a", None, None, None, None, None, None, None
    )


# --- row_key / user_id ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        (123, "123"),
        (-5, "-5"),
        (0, "0"),
        (12345678901234567890123456789, "12345678901234567890123456789"),
        ("abc", "abc"),
        (" padded ", " padded "),  # not trimmed: kept exactly as sent
        ("123", "123"),
    ],
)
def test_ids_are_non_empty_strings_or_integers_as_decimal_text(sent: Any, kept: str) -> None:
    assert verdict_of(row_key=sent).row_key == kept
    assert verdict_of(user_id=sent).user_id == kept


def test_minus_zero_and_huge_integers_keep_their_decimal_text() -> None:
    assert classify(encode(event()).replace(b'"r-1"', b"-0")).row_key == "0"
    digits = "9" * 5000  # above Python's int() digit limit: kept as text, no int conversion
    assert classify(encode(event()).replace(b'"r-1"', digits.encode())).row_key == digits


@pytest.mark.parametrize("field", ["row_key", "user_id"])
@pytest.mark.parametrize(
    "bad",
    [True, False, 1.0, 1.5, 1e3, "", "   ", "\t\n", None, [1], {"id": 1}, DROP],
    ids=["true", "false", "1.0", "1.5", "1e3", "empty", "spaces", "tab-nl", "null", "array",
         "object", "missing"],
)  # fmt: skip
def test_ids_reject_booleans_floats_blanks_and_non_scalars(field: str, bad: Any) -> None:
    assert reason_of(**{field: bad}) == f"missing_or_bad:{field}"


def test_float_written_like_an_integer_is_still_a_float() -> None:
    assert classify(encode(event()).replace(b'"r-1"', b"10.0")).reason == "missing_or_bad:row_key"
    assert classify(encode(event()).replace(b'"r-1"', b"1E2")).reason == "missing_or_bad:row_key"


# --- timestamp -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "utc"),
    [
        ("2024-05-01T10:20:30Z", datetime(2024, 5, 1, 10, 20, 30, tzinfo=UTC)),
        ("2024-05-01T15:50:30+05:30", datetime(2024, 5, 1, 10, 20, 30, tzinfo=UTC)),
        ("2024-05-01T05:20:30-05:00", datetime(2024, 5, 1, 10, 20, 30, tzinfo=UTC)),
        ("2024-05-01T10:20:30-00:00", datetime(2024, 5, 1, 10, 20, 30, tzinfo=UTC)),
        ("2024-05-01T10:20Z", datetime(2024, 5, 1, 10, 20, tzinfo=UTC)),  # seconds optional
        ("2024-05-01T10:20:30.5Z", datetime(2024, 5, 1, 10, 20, 30, 500000, tzinfo=UTC)),
        # beyond microseconds: truncated, not rounded
        ("2024-05-01T10:20:30.123456789Z", datetime(2024, 5, 1, 10, 20, 30, 123456, tzinfo=UTC)),
        ("2024-05-01T00:30:00+01:00", datetime(2024, 4, 30, 23, 30, tzinfo=UTC)),  # day before
        ("2024-02-29T12:00:00Z", datetime(2024, 2, 29, 12, tzinfo=UTC)),
        ("1970-01-01T00:00:00Z", datetime(1970, 1, 1, tzinfo=UTC)),
        ("1970-01-01T01:00:00+01:00", datetime(1970, 1, 1, tzinfo=UTC)),
        ("2099-12-31T23:59:59.999999Z", datetime(2099, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
        (1714558830123, datetime(2024, 5, 1, 10, 20, 30, 123000, tzinfo=UTC)),  # epoch ms
        (0, datetime(1970, 1, 1, tzinfo=UTC)),
        (MAX_TIMESTAMP_US // 1000, datetime(2099, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)),
        (MIN_TIMESTAMP_US // 1000, datetime(1970, 1, 1, tzinfo=UTC)),
    ],
)
def test_timestamps_iso_with_zone_or_epoch_millis_become_utc(sent: Any, utc: datetime) -> None:
    assert verdict_of(timestamp=sent).timestamp == utc


@pytest.mark.parametrize(
    "bad",
    [
        "2024-05-01T10:20:30",  # no zone
        "2024-05-01T10:20:30.123",  # no zone
        "2024-05-01",  # a date
        "2024-05-01 10:20:30Z",  # space separator: not ISO-8601
        "2024-05-01t10:20:30z",  # lower case
        "2024-05-01T10:20:30+0530",  # basic-format offset
        "2024-05-01T10:20:30+05",  # hour-only offset
        "2024-05-01T10:20:30+05:30:15",  # seconds in the offset
        "2024-05-01T10:20:30+24:00",  # offset out of range
        "20240501T102030Z",  # basic format
        "2024-W18-3T10:20:30Z",  # week date
        "2024-05-01T10Z",  # hour only
        "2024-05-01T10:20:30,5Z",  # decimal comma
        "2024-13-01T10:20:30Z",  # month 13
        "2023-02-29T10:20:30Z",  # not a leap year
        "2024-05-01T24:00:00Z",  # hour 24
        "2024-05-01T23:59:60Z",  # leap second
        "0001-01-01T00:00:00+01:00",  # year 0 in UTC
        "9999-12-31T23:59:59-01:00",  # year 10000 in UTC
        "0001-01-01T00:00:00Z",  # representable, but before the accepted range
        "1969-12-31T23:59:59.999Z",
        "1970-01-01T00:59:59+01:00",  # 1969 in UTC
        "2100-01-01T00:00:00Z",  # after the accepted range
        -1,  # epoch ms before 1970
        "\uff12024-05-01T10:20:30Z",  # a non-ASCII digit
        " 2024-05-01T10:20:30Z",  # padded
        "1714558830123",  # epoch ms as a string
        "yesterday",
        "",
        1714558830123.0,  # a float
        1.7e12,
        10**20,  # overflowing epoch ms
        MAX_TIMESTAMP_US // 1000 + 1,
        MIN_TIMESTAMP_US // 1000 - 1,
        True,
        None,
        {"$date": TS},
        DROP,
    ],
)
def test_bad_timestamps(bad: Any) -> None:
    assert reason_of(timestamp=bad) == "missing_or_bad:timestamp"


def test_epoch_millis_with_huge_digit_counts_are_bad_not_a_crash() -> None:
    value = encode(event()).replace(f'"{TS}"'.encode(), b"9" * 6000)
    assert classify(value).reason == "missing_or_bad:timestamp"


# --- url -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["", "  ", None, 1, ["/a"], {"href": "/a"}, False, DROP])
def test_url_is_a_required_non_empty_string(bad: Any) -> None:
    assert reason_of(url=bad) == "missing_or_bad:url"


# --- optional fields -----------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["country", "city", "browser", "os", "device"])
@pytest.mark.parametrize("empty", [None, "", " ", "\t", DROP], ids=["null", "empty", "space",
                                                                    "tab", "missing"])  # fmt: skip
def test_missing_null_or_blank_optional_fields_are_null(field: str, empty: Any) -> None:
    v = verdict_of(**{field: empty})
    assert v.valid and getattr(v, field) is None


@pytest.mark.parametrize("field", ["country", "city", "browser", "os", "device"])
@pytest.mark.parametrize("bad", [250, 1.5, True, ["FR"], {"code": "FR"}])
def test_non_string_optional_fields_are_bad(field: str, bad: Any) -> None:
    assert reason_of(**{field: bad}) == f"missing_or_bad:{field}"


def test_the_first_failing_field_in_contract_order_is_the_reason() -> None:
    assert reason_of(device=1, city=1) == "missing_or_bad:city"
    assert reason_of(city=1, url="") == "missing_or_bad:url"
    assert reason_of(url="", timestamp="x", user_id=None) == "missing_or_bad:user_id"
    assert classify(b"{}").reason == "missing_or_bad:row_key"


def test_non_ascii_text_is_kept_exactly() -> None:
    v = verdict_of(city="São Paulo", url="https://shop.example.com/bücher?q=東京", device="📱")
    assert (v.city, v.url, v.device) == (
        "São Paulo",
        "https://shop.example.com/bücher?q=東京",
        "📱",
    )


# --- NUL and surrogates --------------------------------------------------------------------------


def test_escaped_nul_is_legal_json_and_kept() -> None:
    # Decision: "\u0000" is a legal JSON string and valid UTF-8, stored as is (Cassandra and
    # Elasticsearch accept it); nothing in the contract forbids it.
    value = b'{"row_key":"a\\u0000b","user_id":"u","timestamp":"' + TS.encode() + b'","url":"/"}'
    assert classify(value).row_key == "a\x00b"


def test_raw_control_characters_inside_strings_are_malformed_json() -> None:
    value = b'{"row_key":"a\x00b","user_id":"u","timestamp":"' + TS.encode() + b'","url":"/"}'
    assert classify(value).reason == "malformed_json"
    assert classify(b'{"row_key":"a\nb"}').reason == "malformed_json"


def test_lone_surrogate_escapes_make_a_field_bad_but_pairs_are_fine() -> None:
    lone = encode(event()).replace(b"Paris", b"Par\\udc00is")
    assert classify(lone).reason == "missing_or_bad:city"
    assert classify(encode(event()).replace(b"r-1", b"\\ud800")).reason == "missing_or_bad:row_key"
    pair = encode(event()).replace(b"Paris", b"\\ud83d\\ude00")
    assert classify(pair).city == "\U0001f600"
    in_unknown_field = encode(event(note="x")).replace(b'"x"', b'"\\udfff"')
    assert classify(in_unknown_field).valid


# --- duplicate keys ------------------------------------------------------------------------------


def test_duplicated_keys_are_ambiguous() -> None:
    assert classify(b'{"url":"/a","url":"/b"}').reason == "duplicate_key"
    same = encode(event())[:-1] + b',"url":"https://shop.example.com/"}'  # even if equal
    assert classify(same).reason == "duplicate_key"


def test_duplicated_keys_are_found_at_any_depth_and_through_escapes() -> None:
    assert classify(encode(event())[:-1] + b',"x":{"a":1,"a":2}}').reason == "duplicate_key"
    assert classify(encode(event())[:-1] + b',"x":[{"a":1,"a":2}]}').reason == "duplicate_key"
    escaped = encode(event())[:-1] + b',"\\u0075rl":"/b"}'  # "\u0075rl" is "url"
    assert classify(escaped).reason == "duplicate_key"


def test_earlier_reasons_win_over_a_duplicated_key() -> None:
    assert classify(b'[{"a":1,"a":2}]').reason == "not_an_object"
    assert classify(b'{"a":1,"a":2} trailing').reason == "malformed_json"
    assert classify(b'{"a":1,"a":2,').reason == "malformed_json"


# --- empty, size, encoding -----------------------------------------------------------------------


def test_tombstone_is_empty_with_no_raw_value() -> None:
    assert classify(None) == Verdict("empty_value", *[None] * 10, "none")


@pytest.mark.parametrize("blank", [b"", b" ", b"\n\t\r "])
def test_empty_or_whitespace_only_value_is_empty(blank: bytes) -> None:
    assert classify(blank) == Verdict("empty_value", *[None] * 9, blank.decode(), "utf8")


def test_size_limit_is_inclusive() -> None:
    body = encode(event())
    pad = MAX_MESSAGE_BYTES - len(body) - len(',"p":""')
    at_limit = body[:-1] + b',"p":"' + b"x" * pad + b'"}'
    assert len(at_limit) == MAX_MESSAGE_BYTES
    assert classify(at_limit).valid
    over = at_limit[:-1] + b" }"
    assert classify(over).reason == "too_large"
    assert classify(over).raw_value == over.decode()  # kept whole for forensics
    assert classify(b"\xff" * (MAX_MESSAGE_BYTES + 1)).raw_encoding == "base64"


@pytest.mark.parametrize(
    "bad",
    [
        b"\xff",
        b'{"row_key":"caf\xe9"}',  # Latin-1
        b"\xc0\xaf",  # overlong "/"
        b'{"a":"\xed\xa0\x80"}',  # an encoded surrogate (CESU-8)
        b"\xf4\x90\x80\x80",  # above U+10FFFF
        b'{"a":"\xe2\x82"}',  # truncated sequence
    ],
)
def test_invalid_utf8_is_quarantined_as_base64(bad: bytes) -> None:
    v = classify(bad)
    assert (v.reason, v.raw_encoding) == ("invalid_utf8", "base64")
    assert base64.b64decode(v.raw_value or "") == bad


# --- not JSON, not an object, nesting ------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        b"{",
        b'{"row_key":"r"',
        b"row_key=r&user_id=u",
        b"<event/>",
        b"{'row_key':'r'}",  # single quotes
        b'{"a":1,}',  # trailing comma
        b'{"a":NaN}',  # Python's json would take these
        b'{"a":Infinity}',
        b'{"a":-Infinity}',
        b'{"a":01}',  # leading zero
        b'{"a":1} {"b":2}',  # two documents
        b'{"a":1} x',
        "\ufeff{}".encode(),  # byte order mark
        b'{"a":1}/*c*/',
    ],
)
def test_malformed_json(bad: bytes) -> None:
    v = classify(bad)
    assert (v.reason, v.raw_value, v.raw_encoding) == ("malformed_json", bad.decode(), "utf8")


@pytest.mark.parametrize("value", [b"[]", b"[{}]", b'"text"', b"42", b"true", b"null", b"1.5"])
def test_json_that_is_not_an_object(value: bytes) -> None:
    assert classify(value).reason == "not_an_object"


def test_deep_nesting_is_refused_deterministically() -> None:
    def nested(depth: int) -> bytes:  # the event object itself is level 1
        inner = "[" * (depth - 1) + "]" * (depth - 1)
        return encode(event())[:-1] + f',"x":{inner}}}'.encode()

    assert classify(nested(MAX_JSON_DEPTH)).valid
    assert classify(nested(MAX_JSON_DEPTH + 1)).reason == "malformed_json"
    # Far beyond the interpreter's recursion limit: no RecursionError, same verdict.
    assert classify(b"[" * 30_000 + b"]" * 30_000).reason == "malformed_json"
    assert classify(b'{"a":' * 10_000 + b"1" + b"}" * 10_000).reason == "malformed_json"


def test_brackets_inside_strings_are_not_nesting() -> None:
    v = verdict_of(url="/search?q=" + "[{" * 200)
    assert v.valid and v.url.endswith("[{")  # type: ignore[union-attr]


# --- properties ----------------------------------------------------------------------------------


def _check_invariants(value: bytes | None, v: Verdict) -> None:
    assert v.reason is None or v.reason in REASONS
    if v.valid:
        assert None not in (v.row_key, v.user_id, v.timestamp_us, v.url)
        assert (v.raw_value, v.raw_encoding) == (None, None)
        assert MIN_TIMESTAMP_US <= v.timestamp_us <= MAX_TIMESTAMP_US  # type: ignore[operator]
        for text in (v.row_key, v.user_id, v.url, v.country, v.city, v.browser, v.os, v.device):
            assert text is None or text.encode("utf-8")  # storable as UTF-8
    else:
        assert v[1:10] == (None,) * 9
        assert v.raw_encoding in {"utf8", "base64", "none"}
        raw = (
            None
            if v.raw_encoding == "none"
            else base64.b64decode(v.raw_value or "")
            if v.raw_encoding == "base64"
            else (v.raw_value or "").encode()
        )
        assert raw == value  # the quarantine keeps the message exactly


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.none(), st.binary(max_size=300)))
def test_any_bytes_get_a_verdict_and_never_raise(value: bytes | None) -> None:
    _check_invariants(value, classify(value))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=10,
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from([*EVENT_FIELDS, "x"]), json_values))
def test_any_json_object_gets_a_verdict_and_never_raises(obj: dict[str, Any]) -> None:
    value = json.dumps(obj).encode()
    _check_invariants(value, classify(value))


# --- Arrow batch ---------------------------------------------------------------------------------


def test_classify_batch_is_classify_row_by_row() -> None:
    values = [encode(event()), None, b"\xff", b"[]", encode(event(row_key=7))]
    batch = classify_batch(pa.array(values, pa.binary()))
    assert [tuple(r.values()) for r in batch.to_pylist()] == [tuple(classify(v)) for v in values]
    assert classify_batch(pa.array([], pa.binary())).num_rows == 0
