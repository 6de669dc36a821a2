"""Shelves: which concrete Elasticsearch index holds a window's results, and a run's steps.

A shelf is every window of one kind in one UTC calendar period (a day, a month or a year); each
shelf the alias serves is one concrete index. A run rewrites each shelf it touches whole (the
untouched windows are copied over), so the period is a trade between the cost of a run and the
number of indices:

=======================================  ===================  =========================
windows                                  hour windows         day windows
=======================================  ===================  =========================
from the 1st of the previous UTC month   one shelf per day    one shelf per month
older                                    one shelf per month  one per month, then one
                                                              per year once the whole
                                                              year is older
=======================================  ===================  =========================

Hourly incremental runs touch recent windows, so they rewrite a day of hour windows and a month
of day windows. Older windows change only through late events; as the calendar moves on, a run
merges their fine shelves into the coarse one (a *consolidation*: copied, not recomputed), so a
year of history ends as 13 indices (12 months of hour windows, the year of day windows). The
rule only decides cost, never results: any shelf can be rewritten, coarse or fine.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from clickstream_spark.windows import Window, WindowKind

Level = Literal["day", "month", "year"]
# The shelf levels of each window kind: recent windows at the first, older ones at the second.
LEVELS: dict[WindowKind, tuple[Level, Level]] = {"hour": ("day", "month"), "day": ("month", "year")}
_FORMATS: dict[Level, str] = {"day": "%Y.%m.%d", "month": "%Y.%m", "year": "%Y"}


@dataclass(frozen=True, order=True)
class Shelf:
    """The windows of ``kind`` starting in the UTC ``level`` period that starts at ``start``."""

    start: dt.datetime
    kind: WindowKind
    level: Level

    @classmethod
    def of(cls, kind: WindowKind, level: Level, moment: dt.datetime) -> Shelf:
        """The shelf of ``level`` holding ``moment``."""
        start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        if level in ("month", "year"):
            start = start.replace(day=1)
        if level == "year":
            start = start.replace(month=1)
        return cls(start, kind, level)

    @property
    def end(self) -> dt.datetime:
        if self.level == "day":
            return self.start + dt.timedelta(days=1)
        if self.level == "month":
            return (self.start + dt.timedelta(days=32)).replace(day=1)
        return self.start.replace(year=self.start.year + 1)

    @property
    def name(self) -> str:
        """``<kind>-<period>``, e.g. ``hour-2026.03.14``, ``hour-2026.03``, ``day-2026``."""
        return f"{self.kind}-{self.start.strftime(_FORMATS[self.level])}"

    @classmethod
    def parse(cls, name: str) -> Shelf:
        kind, _, period = name.partition("-")
        level: Level = ("year", "month", "day")[min(period.count("."), 2)]
        if kind not in LEVELS:
            raise ValueError(f"{name!r} is not a shelf name: unknown window kind {kind!r}")
        try:
            start = dt.datetime.strptime(period, _FORMATS[level])
        except ValueError:
            raise ValueError(f"{name!r} is not a shelf name like hour-2026.03.14") from None
        return cls(start, kind, level)  # type: ignore[arg-type]

    def covers(self, other: Shelf) -> bool:
        """Every window of ``other`` belongs to this shelf's period (a shelf covers itself)."""
        return self.kind == other.kind and self.start <= other.start and other.end <= self.end


def recent_since(now: dt.datetime) -> dt.datetime:
    """The 1st of the previous UTC month: windows from then on get the fine shelves."""
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return (first - dt.timedelta(days=1)).replace(day=1)


def shelf_for(window: Window, now: dt.datetime) -> Shelf:
    """The shelf ``window`` belongs in at ``now`` (naive UTC): coarse once its period is old."""
    fine, coarse = LEVELS[window.kind]
    shelf = Shelf.of(window.kind, coarse, window.start)
    return shelf if shelf.end <= recent_since(now) else Shelf.of(window.kind, fine, window.start)


@dataclass(frozen=True)
class Step:
    """One atomic publication: a new index for ``shelf`` replaces the ``replaced`` indices."""

    shelf: Shelf
    starts: tuple[dt.datetime, ...]  # windows recomputed into it; none: a consolidation
    replaced: tuple[str, ...]  # served indices whose windows it takes over

    @property
    def windows(self) -> list[Window]:
        return [Window(self.shelf.kind, start) for start in self.starts]


def plan_steps(
    kind: WindowKind,
    starts: Iterable[dt.datetime],
    served: Mapping[Shelf, str],
    now: dt.datetime,
) -> list[Step]:
    """The steps that publish ``starts`` and consolidate what is due, in time order.

    A window goes to the shelf :func:`shelf_for` names, or to a served coarser shelf holding it
    (a served shelf is never split); a served shelf whose period is now old is merged into its
    coarse shelf, with or without windows to recompute.
    """
    mine = {shelf: index for shelf, index in served.items() if shelf.kind == kind}
    targets: dict[Shelf, list[dt.datetime]] = {}
    for start in starts:
        target = shelf_for(Window(kind, start), now)
        target = next((shelf for shelf in mine if shelf.covers(target)), target)
        targets.setdefault(target, []).append(start)
    for shelf in mine:
        coarse = shelf_for(Window(kind, shelf.start), now)
        if coarse != shelf and coarse.covers(shelf):
            targets.setdefault(coarse, [])
    steps = []
    for shelf, shelf_starts in sorted(targets.items()):
        replaced = sorted(index for old, index in mine.items() if shelf.covers(old))
        steps.append(Step(shelf, tuple(sorted(set(shelf_starts))), tuple(replaced)))
    return steps


def shelves_of(windows: Sequence[Window], now: dt.datetime) -> set[Shelf]:
    """The shelves (so the concrete indices) that hold ``windows`` once all are published."""
    return {shelf_for(window, now) for window in windows}
