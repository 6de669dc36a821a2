"""Aggregation windows: UTC hours and days, and which of them a set of events changes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from typing import Literal, NamedTuple

from pyspark.sql import Column
from pyspark.sql import functions as F

WindowKind = Literal["hour", "day"]
WINDOW_KINDS: tuple[WindowKind, ...] = ("hour", "day")
WINDOW_LENGTH = {"hour": dt.timedelta(hours=1), "day": dt.timedelta(days=1)}

# The time on page of an event is the gap to its user's next event when that gap is at most this
# long; a longer gap ends a visit: the event is an exit and the next one an entrance. The same
# 30 minutes end a visit in the generator.
MAX_GAP_S = 1800
# So a window's results depend on the events up to this long before its start (its look-back: the
# previous event decides an entrance) and after its end (its look-ahead: the next event decides a
# time on page), and a new event can change the windows holding the instants this long before and
# after it.
LOOK_BACK = LOOK_AHEAD = dt.timedelta(seconds=MAX_GAP_S)


# The span any window can start in: the widest the event contract ever accepts (1970 to the end
# of 2099). A date outside it is a typo, and its arithmetic would overflow.
EARLIEST_START = dt.datetime(1970, 1, 1)
LATEST_START = dt.datetime(2099, 12, 31, 23)


class Window(NamedTuple):
    """One aggregation window: its kind and its start (naive UTC)."""

    kind: WindowKind
    start: dt.datetime


def window_start(kind: WindowKind, timestamp: dt.datetime) -> dt.datetime:
    """Start of the UTC window of ``kind`` holding ``timestamp`` (naive UTC in and out)."""
    if kind == "hour":
        return timestamp.replace(minute=0, second=0, microsecond=0)
    if kind == "day":
        return timestamp.replace(hour=0, minute=0, second=0, microsecond=0)
    raise ValueError(f"unknown window kind {kind!r}: expected one of {WINDOW_KINDS}")


def window_starts(
    kind: WindowKind, earliest: dt.datetime, latest: dt.datetime
) -> Iterator[dt.datetime]:
    """Every window start from the window holding ``earliest`` to the one holding ``latest``."""
    current, end = window_start(kind, earliest), window_start(kind, latest)
    while current <= end:
        yield current
        current += WINDOW_LENGTH[kind]


def hours_to_read(
    kind: WindowKind,
    starts: Iterable[dt.datetime],
    look_back: dt.timedelta = LOOK_BACK,
    look_ahead: dt.timedelta = LOOK_AHEAD,
) -> list[dt.datetime]:
    """The event-table hours holding the given windows plus their look-back and look-ahead, sorted.

    The look-back starts at ``start - look_back`` itself (a gap of exactly MAX_GAP_S continues a
    visit); the look-ahead ends inside the hour that holds ``end + look_ahead - epsilon``.
    """
    hours: set[dt.datetime] = set()
    for start in starts:
        end = start + WINDOW_LENGTH[kind] + look_ahead
        first = start - look_back
        hours.update(window_starts("hour", first, end - dt.timedelta(microseconds=1)))
    return sorted(hours)


def touched_hours(timestamp: Column, max_gap_seconds: int = MAX_GAP_S) -> Column:
    """Aggregate: the UTC hour starts whose windows events at ``timestamp`` can change.

    That is each event's own hour and the hours holding the instants ``max_gap_seconds`` before
    it (the user's previous event, whose time on page and exit the new event may define) and after
    it (the user's next event, which the new event may turn from an entrance into a continuation);
    the two instants are an hour apart, so no hour between them is missed. Null timestamps touch
    nothing. A day window changes exactly when one of its hours does: :func:`windows_of_hours`
    turns the hours into the hour and day windows. One aggregate, so that it rides along with
    other per-batch counts in a single scan.
    """
    gap = F.make_dt_interval(secs=F.lit(max_gap_seconds))
    instants = (timestamp - gap, timestamp, timestamp + gap)
    hours = F.array(*(F.date_trunc("hour", instant) for instant in instants))
    return F.array_distinct(F.flatten(F.collect_set(F.when(timestamp.isNotNull(), hours))))


def windows_of_hours(hours: Iterable[dt.datetime]) -> list[Window]:
    """The hour windows starting at ``hours`` and the day windows holding them, each once."""
    hour_starts = set(hours)
    day_starts = {window_start("day", hour) for hour in hour_starts}
    return [Window("hour", start) for start in sorted(hour_starts)] + [
        Window("day", start) for start in sorted(day_starts)
    ]


def parse_window_start(kind: WindowKind, text: str) -> dt.datetime:
    """``YYYY-MM-DD`` for a day, ``YYYY-MM-DDTHH`` for an hour (UTC)."""
    pattern, example = (
        ("%Y-%m-%d", "2026-01-31") if kind == "day" else ("%Y-%m-%dT%H", "2026-01-31T13")
    )
    try:
        start = dt.datetime.strptime(text, pattern)
    except ValueError:
        raise ValueError(f"{text!r} is not a UTC {kind} like {example}") from None
    if not EARLIEST_START <= start <= LATEST_START:
        raise ValueError(
            f"{text!r} is out of range: windows start from {EARLIEST_START:%Y-%m-%d} to "
            f"{LATEST_START:%Y-%m-%d}"
        )
    return start


def kind_of(text: str) -> WindowKind:
    """Which window a ``--from``/``--to`` value names, from its shape."""
    return "hour" if "T" in text else "day"


def requested_windows(
    kind: WindowKind | None,
    date: str | None = None,
    hour: str | None = None,
    range_from: str | None = None,
    range_to: str | None = None,
) -> tuple[WindowKind, list[dt.datetime]] | None:
    """(kind, starts) of the windows the command line asks for, or None for an incremental run.

    ``--date D`` is the day D (with ``--window hour``: its 24 hours); ``--hour H`` one hour;
    ``--from A --to B`` every window from A to B, both inclusive.
    """
    if range_to is not None and range_from is None:
        raise ValueError("--to needs --from (it cannot be used with --date or --hour)")
    if date is not None:
        day = parse_window_start("day", date)
        if kind == "hour":
            return "hour", list(window_starts("hour", day, day + dt.timedelta(hours=23)))
        return "day", [day]
    if hour is not None:
        if kind == "day":
            raise ValueError("--hour names an hour window; it cannot be used with --window day")
        return "hour", [parse_window_start("hour", hour)]
    if range_from is None and range_to is None:
        return None
    if range_from is None or range_to is None:
        raise ValueError("--from and --to go together")
    inferred = kind_of(range_from)
    if kind_of(range_to) != inferred:
        raise ValueError(
            "--from and --to must both be dates (YYYY-MM-DD) or both hours (YYYY-MM-DDTHH)"
        )
    if kind is not None and kind != inferred:
        raise ValueError(f"--window {kind} does not match --from/--to given as {inferred}s")
    earliest = parse_window_start(inferred, range_from)
    latest = parse_window_start(inferred, range_to)
    if latest < earliest:
        raise ValueError(f"--to {range_to} is before --from {range_from}")
    return inferred, list(window_starts(inferred, earliest, latest))


def utc_now() -> dt.datetime:
    """The current time as naive UTC, like window starts."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)
