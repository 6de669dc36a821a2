from __future__ import annotations

import datetime as dt

import pytest

from clickstream_spark.aggregate.run import RunSummary, compute_chunks, pending_windows
from clickstream_spark.windows import requested_windows

T = dt.datetime


def test_pending_windows_are_those_marked_since_they_were_published() -> None:
    marked = {T(2026, 1, 1, 5): T(2026, 1, 2, 9), T(2026, 1, 1, 6): T(2026, 1, 2, 9, 1)}
    marked[T(2026, 1, 1, 7)] = T(2026, 1, 1, 8)
    done = {T(2026, 1, 1, 5): T(2026, 1, 2, 9), T(2026, 1, 1, 6): T(2026, 1, 2, 8)}
    # 05:00 unchanged since published; 06:00 marked again; 07:00 never published.
    assert pending_windows(marked, done) == [T(2026, 1, 1, 6), T(2026, 1, 1, 7)]
    assert pending_windows({}, done) == []


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((None,), None),
        (("day",), None),
        ((None, "2026-01-31"), ("day", [T(2026, 1, 31)])),
        (("hour", "2026-01-31"), ("hour", [T(2026, 1, 31, h) for h in range(24)])),
        ((None, None, "2026-01-31T13"), ("hour", [T(2026, 1, 31, 13)])),
        (
            (None, None, None, "2026-01-30", "2026-02-01"),
            ("day", [T(2026, 1, 30), T(2026, 1, 31), T(2026, 2, 1)]),
        ),
        (
            ("hour", None, None, "2026-01-31T22", "2026-02-01T01"),
            ("hour", [T(2026, 1, 31, 22), T(2026, 1, 31, 23), T(2026, 2, 1), T(2026, 2, 1, 1)]),
        ),
    ],
)
def test_requested_windows(args: tuple, expected: object) -> None:
    assert requested_windows(*args) == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((None, "2026-02-30"), "not a UTC day"),
        ((None, None, "2026-01-31 13"), "not a UTC hour"),
        (("day", None, "2026-01-31T13"), "cannot be used with --window day"),
        ((None, None, None, "2026-01-01", None), "go together"),
        ((None, None, None, "2026-01-01", "2026-01-02T05"), "must both be dates"),
        (("hour", None, None, "2026-01-01", "2026-01-02"), "does not match"),
        ((None, None, None, "2026-01-02", "2026-01-01"), "before --from"),
        ((None, "9999-12-31"), "out of range: windows start from 1970-01-01 to 2099-12-31"),
        ((None, None, "1969-12-31T23"), "out of range"),
        ((None, None, None, "2026-01-01", "2100-01-01"), "out of range"),
        ((None, "2026-01-01", None, None, "2026-01-02"), "--to needs --from"),
        (("hour", None, "2026-01-01T05", None, "2026-01-01T07"), "--to needs --from"),
    ],
)
def test_requested_windows_refuses_bad_input(args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        requested_windows(*args)


def test_summary_says_what_was_done() -> None:
    summary = RunSummary(
        "day",
        [T(2026, 1, 30), T(2026, 1, 31)],
        empty_starts=[T(2026, 1, 30)],
        rows_in=1200,
        documents_written=50,
        documents_recomputed=20,
        top_urls=[("/", 700), ("/cart", 300)],
    )
    assert summary.text().splitlines() == [
        "day windows done: 2 (2026-01-30 00:00 .. 2026-01-31 00:00 UTC)",
        "rows in (windows, look-back and look-ahead): 1200",
        "documents written: 50 (20 recomputed, 30 kept from the previous result)",
        "windows with no data (not an error): 2026-01-30 00:00",
        "top 2 URLs by clicks, 2026-01-31 00:00 day:",
        "         700  /",
        "         300  /cart",
    ]
    assert RunSummary("hour", []).text() == "hour windows: nothing changed since the last run"


def test_summary_shows_the_first_five_empty_windows() -> None:
    hours = [T(2026, 1, 31, h) for h in range(8)]
    summary = RunSummary("hour", hours, empty_starts=hours[:7], rows_in=3, documents_written=1)
    assert summary.text().splitlines()[3] == (
        "windows with no data (not an error): 2026-01-31 00:00, 2026-01-31 01:00, "
        "2026-01-31 02:00, 2026-01-31 03:00, 2026-01-31 04:00 and 2 more"
    )


def test_compute_chunks_hold_a_week_of_windows_each() -> None:
    hours = [T(2026, 1, 1, 22), T(2026, 1, 1, 23), T(2026, 1, 8, 21), T(2026, 1, 8, 22)]
    assert compute_chunks(hours) == [hours[:3], hours[3:]]
    days = [T(2026, 1, d) for d in range(1, 16)]
    assert compute_chunks(days) == [days[:7], days[7:14], days[14:]]
    assert compute_chunks([]) == []


def test_summary_names_the_consolidated_shelves() -> None:
    summary = RunSummary("hour", [], consolidated=["hour-2026.09", "hour-2026.10"])
    assert summary.text().splitlines() == [
        "hour windows: nothing changed since the last run",
        "hour shelves consolidated (older windows, copied): hour-2026.09, hour-2026.10",
    ]
