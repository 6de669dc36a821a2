from __future__ import annotations

import datetime as dt

import pytest

from clickstream_spark.aggregate.shelves import (
    Shelf,
    Step,
    plan_steps,
    recent_since,
    shelf_for,
    shelves_of,
)
from clickstream_spark.windows import Window, window_starts

T = dt.datetime
NOW = T(2026, 12, 1, 1, 35)  # recent: from 2026-11-01


def names(windows: list[Window], now: dt.datetime = NOW) -> list[str]:
    return [shelf_for(window, now).name for window in windows]


def test_recent_windows_get_fine_shelves_older_ones_coarse() -> None:
    assert recent_since(NOW) == T(2026, 11, 1)
    assert recent_since(T(2027, 1, 1)) == T(2026, 12, 1)
    hours = [Window("hour", T(2026, 12, 1, 0)), Window("hour", T(2026, 11, 1, 0))]
    hours += [Window("hour", T(2026, 10, 31, 23)), Window("hour", T(2025, 2, 3, 4))]
    assert names(hours) == ["hour-2026.12.01", "hour-2026.11.01", "hour-2026.10", "hour-2025.02"]
    days = [
        Window("day", T(2026, 12, 1)),
        Window("day", T(2026, 1, 5)),
        Window("day", T(2025, 12, 31)),
    ]
    assert names(days) == ["day-2026.12", "day-2026.01", "day-2025"]
    # A year of day windows is one shelf only once the whole year is older than the recent part.
    assert names([Window("day", T(2026, 12, 31))], T(2027, 1, 31)) == ["day-2026.12"]
    assert names([Window("day", T(2026, 12, 31))], T(2027, 2, 1)) == ["day-2026"]


@pytest.mark.parametrize("name", ["hour-2026.03.14", "hour-2026.03", "day-2026.03", "day-2026"])
def test_shelf_names_parse_back(name: str) -> None:
    assert Shelf.parse(name).name == name


@pytest.mark.parametrize("name", ["week-2026.03", "hour-2026.13", "hour-x", "hour-2026.03.14.1"])
def test_other_names_are_not_shelves(name: str) -> None:
    with pytest.raises(ValueError, match="not a shelf name"):
        Shelf.parse(name)


def test_periods_nest() -> None:
    month, day = Shelf.parse("hour-2026.02"), Shelf.parse("hour-2026.02.28")
    assert (month.start, month.end) == (T(2026, 2, 1), T(2026, 3, 1))
    assert (day.start, day.end) == (T(2026, 2, 28), T(2026, 3, 1))
    assert Shelf.parse("day-2026").end == T(2027, 1, 1)
    assert month.covers(day) and month.covers(month) and not day.covers(month)
    assert not Shelf.parse("day-2026.02").covers(day)  # another kind


def test_one_year_of_old_data_makes_13_indices() -> None:
    year = [Window(kind, s) for kind in ("hour", "day") for s in starts(kind, 2025, 2026)]
    shelves = shelves_of(year, NOW)
    assert len(shelves) == 13  # 12 months of hour windows, the year of day windows
    assert sorted(s.name for s in shelves if s.kind == "day") == ["day-2025"]


def test_ten_years_of_continuous_operation_stay_far_below_the_shard_limit() -> None:
    now = T(2036, 12, 31, 23)  # the worst moment of the tenth year: most fine shelves
    windows = [Window(kind, s) for kind in ("hour", "day") for s in starts(kind, 2027, 2037)]
    shelves = shelves_of(windows, now)
    counts = {(s.kind, s.level): 0 for s in shelves}
    for shelf in shelves:
        counts[(shelf.kind, shelf.level)] += 1
    assert counts == {
        ("hour", "month"): 9 * 12 + 10,  # every month before November 2036
        ("hour", "day"): 30 + 31,  # November and December 2036
        ("day", "year"): 9,  # 2027 to 2035
        ("day", "month"): 12,  # 2036
    }
    assert len(shelves) == 200


def starts(kind: str, first_year: int, end_year: int) -> list[dt.datetime]:
    return list(window_starts(kind, T(first_year, 1, 1), T(end_year, 1, 1) - dt.timedelta(hours=1)))  # type: ignore[arg-type]


def test_steps_publish_recent_windows_in_fine_shelves_in_time_order() -> None:
    served = {Shelf.parse("hour-2026.11.30"): "i-30", Shelf.parse("day-2026.11"): "i-day"}
    steps = plan_steps("hour", [T(2026, 12, 1, 0), T(2026, 11, 30, 23)], served, NOW)
    assert steps == [
        Step(Shelf.parse("hour-2026.11.30"), (T(2026, 11, 30, 23),), ("i-30",)),
        Step(Shelf.parse("hour-2026.12.01"), (T(2026, 12, 1, 0),), ()),
    ]


def test_old_fine_shelves_are_consolidated_with_or_without_windows() -> None:
    served = {
        Shelf.parse("hour-2026.09.29"): "a",
        Shelf.parse("hour-2026.09.30"): "b",
        Shelf.parse("hour-2026.10.01"): "c",
        Shelf.parse("hour-2026.11.01"): "d",  # recent: stays
    }
    steps = plan_steps("hour", [T(2026, 10, 1, 5)], served, NOW)
    assert steps == [
        Step(Shelf.parse("hour-2026.09"), (), ("a", "b")),
        Step(Shelf.parse("hour-2026.10"), (T(2026, 10, 1, 5),), ("c",)),
    ]


def test_a_served_coarser_shelf_is_never_split() -> None:
    served = {Shelf.parse("hour-2026.11"): "month"}  # e.g. published by a clock ahead of ours
    steps = plan_steps("hour", [T(2026, 11, 5, 1)], served, NOW)
    assert steps == [Step(Shelf.parse("hour-2026.11"), (T(2026, 11, 5, 1),), ("month",))]
