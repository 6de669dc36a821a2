"""Plain-Python reference of the window metrics: loops, dicts and sorted lists only.

Written from the metric definitions, independently of the pandas metric functions and of
pandas/numpy, so that it can serve as the oracle for both Spark implementations; for the same
reason it states the 30-minute gap and the country rule itself instead of importing them.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

MAX_GAP = timedelta(seconds=1800)


def window_of(ts: datetime, kind: str) -> datetime:
    """Start of the UTC hour or day holding ``ts``."""
    ts = ts.astimezone(UTC) if ts.tzinfo else ts.replace(tzinfo=UTC)
    if kind == "hour":
        return ts.replace(minute=0, second=0, microsecond=0)
    return ts.replace(hour=0, minute=0, second=0, microsecond=0)


def linear_quantile(sorted_values: list[float], q: float) -> float:
    """Quantile with linear interpolation between closest ranks (numpy's default)."""
    pos = (len(sorted_values) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def reference_metrics(events: Iterable[dict], kind: str, starts: Iterable[datetime]) -> list[tuple]:
    """Rows (window, window_start, url, country, clicks, unique_users, avg, median, p90,
    coverage, entrances, exits, bounces, bounce_rate, exit_rate) for the events of the given
    windows; other events only serve as previous and next events.

    An event is an entrance when its user has no earlier event or the gap from the previous one
    is over 30 minutes, an exit when it has no time on page, a bounce when it is both.

    ``window_start`` is tz-aware UTC (Spark converts aware datetimes without the local zone).
    """
    wanted = {window_of(start, kind) for start in starts}
    by_user: dict[str, list[dict]] = defaultdict(list)
    for e in events:
        by_user[e["user_id"]].append(e)

    groups: dict[tuple, dict] = {}
    for user_events in by_user.values():
        user_events.sort(key=lambda e: (e["timestamp"], e["row_key"]))
        for i, e in enumerate(user_events):
            start = window_of(e["timestamp"], kind)
            if start not in wanted:
                continue
            on_page = None
            if i + 1 < len(user_events):
                gap = user_events[i + 1]["timestamp"] - e["timestamp"]
                if gap <= MAX_GAP:
                    on_page = gap.total_seconds()
            entrance = i == 0 or e["timestamp"] - user_events[i - 1]["timestamp"] > MAX_GAP
            country = e["country"] or "unknown"
            g = groups.setdefault(
                (start, e["url"], country),
                {"clicks": 0, "users": set(), "on_page": [], "entrances": 0, "exits": 0,
                 "bounces": 0},
            )  # fmt: skip
            g["clicks"] += 1
            g["users"].add(e["user_id"])
            if on_page is not None:
                g["on_page"].append(on_page)
            g["entrances"] += entrance
            g["exits"] += on_page is None
            g["bounces"] += entrance and on_page is None

    rows = []
    for (start, url, country), g in sorted(groups.items()):
        on_page = sorted(g["on_page"])
        stats = (
            (statistics.fmean(on_page), statistics.median(on_page), linear_quantile(on_page, 0.9))
            if on_page
            else (None, None, None)
        )
        bounce_rate = g["bounces"] / g["entrances"] if g["entrances"] else None
        rows.append(
            (kind, start, url, country, g["clicks"], len(g["users"]), *stats,
             len(on_page) / g["clicks"], g["entrances"], g["exits"], g["bounces"], bounce_rate,
             g["exits"] / g["clicks"])
        )  # fmt: skip
    return rows
