"""Erasure without servers: which windows an erased event changed, which quarantined messages
carry a user's id, and the ids a request names."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from clickstream_spark.erasure.request import ids_in_message, read_user_ids, touched_windows
from clickstream_spark.windows import Window

H = dt.datetime(2026, 3, 1, 10)


def test_an_event_changes_its_hour_and_the_hours_30_minutes_around_it() -> None:
    # 10:20 reaches back into 09:50 (the 09:00 hour) and forward to 10:50 (its own hour); 23:45
    # reaches into the next day's 00:00 hour, and so into that day's window.
    at_2345 = dt.datetime(2026, 3, 1, 23, 45)
    assert touched_windows([H + dt.timedelta(minutes=20), at_2345]) == [
        Window("hour", H - dt.timedelta(hours=1)),
        Window("hour", H),
        Window("hour", dt.datetime(2026, 3, 1, 23)),
        Window("hour", dt.datetime(2026, 3, 2, 0)),
        Window("day", dt.datetime(2026, 3, 1)),
        Window("day", dt.datetime(2026, 3, 2)),
    ]
    # Exactly on the hour: 30 minutes either side stays in the previous and the same hour.
    assert touched_windows([H]) == [
        Window("hour", H - dt.timedelta(hours=1)),
        Window("hour", H),
        Window("day", dt.datetime(2026, 3, 1)),
    ]
    assert touched_windows([]) == []


@pytest.mark.parametrize(
    ("raw", "ids"),
    [
        ('{"row_key": "r", "user_id": "u-1", "timestamp": "bad"}', {"u-1"}),
        ('{"user_id": 123, "url": "/"}', {"123"}),
        ('{"user_id": "a", "user_id": "b"}', {"a", "b"}),  # duplicated key: both
        ('{"event": {"user_id": "nested"}}', {"nested"}),
        ('{"user_id": "caf\\u00e9"}', {"café"}),  # an escaped id, as stored
        ('{"user_id": "u-1", "url": ', {"u-1"}),  # truncated JSON: read from the text
        ('not json "user_id" : "u-2" at all', {"u-2"}),
        ('{"user_id": true}', set()),
        ('{"user_id": null}', set()),
        ('{"user": "u-1"}', set()),  # the id elsewhere is not the user's field
        ("", set()),
    ],
)
def test_the_user_ids_a_quarantined_message_carries(raw: str, ids: set[str]) -> None:
    assert ids_in_message(raw) == ids


def test_user_ids_from_the_command_line_and_files_each_once(tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("u-2\n\nu-3\r\nu-1\n", encoding="utf-8")

    assert read_user_ids(["u-1", "u-2"], [str(ids)]) == ["u-1", "u-2", "u-3"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([], "no user to erase"),
        ([""], "an empty --user-id"),
        (["  "], "an empty --user-id"),
    ],
)
def test_bad_user_ids_are_refused(values: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        read_user_ids(values, [])


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"--from-file .*missing\.txt"):
        read_user_ids([], [str(tmp_path / "missing.txt")])
