"""The session planner: who clicks when, for every event of a run at once (vectorised).

Each user's sessions lie in ``[start, end)``: inside a session consecutive clicks are at most
``SESSION_GAP_MS - 1 s`` apart (log-normal dwell), sessions of one user at least
``SESSION_GAP_MS + 1 s`` apart, so sessionizing with "> 30 min" or ">= 30 min" finds the same ones.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from clickstream_spark.windows import MAX_GAP_S

# The inactivity gap that ends a session: the 30 minutes past which a click is an exit.
SESSION_GAP_MS = MAX_GAP_S * 1000
_MAX_INTRA_GAP_MS = SESSION_GAP_MS - 1000
_MIN_INTER_GAP_MS = SESSION_GAP_MS + 1000
MEAN_PAGES_PER_SESSION = 5.0  # geometric: ~20 % of sessions are single-page bounces
DWELL_MEDIAN_S = 40.0
DWELL_SIGMA = 1.3  # log-normal: p90 ~ 3.5 min, p99 ~ 14 min, a tail past 30 min


@dataclass(frozen=True)
class Plan:
    ts_ms: np.ndarray  # int64, sorted
    user: np.ndarray  # int64
    session: np.ndarray  # int64


def default_users(events: int, start: datetime, end: datetime) -> int:
    """Enough users that the busiest one still fits its sessions (30 min apart) in the period."""
    period_s = (end - start).total_seconds()
    # A heavy user has up to ~5x the mean sessions; a session plus its gap takes ~35 minutes.
    sessions_per_user = max(0.2, min(1.6, period_s / (5 * 35 * 60)))
    return max(1, math.ceil(events / (MEAN_PAGES_PER_SESSION * sessions_per_user)))


def plan_sessions(
    rng: np.random.Generator, events: int, users: int, start_ms: int, end_ms: int
) -> Plan:
    """Every click's time, user and session, in time order."""
    period = end_ms - start_ms
    sizes = _session_sizes(rng, events)
    offsets, durations = _click_offsets(rng, sizes, events, period)
    owner = _owners(rng, durations, users, period)
    session_start = start_ms + _session_starts(rng, owner, durations, users, period)
    session_of_click = np.repeat(np.arange(len(sizes)), sizes)
    ts = session_start[session_of_click] + offsets
    by_time = np.argsort(ts, kind="stable")
    return Plan(
        ts_ms=ts[by_time],
        user=owner[session_of_click][by_time],
        session=session_of_click[by_time],
    )


def _session_sizes(rng: np.random.Generator, events: int) -> np.ndarray:
    """Clicks per session (1 + geometric), adding up to exactly ``events``."""
    sizes = rng.geometric(1 / MEAN_PAGES_PER_SESSION, events // 4 + 16)
    while sizes.sum() < events:
        sizes = np.concatenate((sizes, rng.geometric(1 / MEAN_PAGES_PER_SESSION, events // 4 + 16)))
    cut = int(np.searchsorted(np.cumsum(sizes), events))
    sizes = sizes[: cut + 1].copy()
    sizes[-1] -= int(sizes.sum()) - events
    return sizes


def _click_offsets(
    rng: np.random.Generator, sizes: np.ndarray, events: int, period: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each click's offset from its session's start, and each session's duration (ms)."""
    gaps = _dwell_ms(rng, events)  # the gap before each click, 0 for a session's first
    gaps[_segment_starts(sizes)] = 0
    durations = np.add.reduceat(gaps, _segment_starts(sizes))
    # A very short period (minutes) cannot hold a long session: squeeze its clicks to fit.
    squeeze = np.minimum(1.0, (period - 1) / np.maximum(durations, 1))
    if (squeeze < 1.0).any():
        gaps = np.floor(gaps * np.repeat(squeeze, sizes)).astype(np.int64)
        durations = np.add.reduceat(gaps, _segment_starts(sizes))
    return _segment_cumsum(gaps, sizes), durations


def _dwell_ms(rng: np.random.Generator, n: int) -> np.ndarray:
    """Gaps between clicks of one session: log-normal, redrawn above the session gap."""
    mu = math.log(DWELL_MEDIAN_S * 1000)
    gaps = rng.lognormal(mu, DWELL_SIGMA, n)
    for _ in range(8):
        long = gaps > _MAX_INTRA_GAP_MS
        if not long.any():
            break
        gaps[long] = rng.lognormal(mu, DWELL_SIGMA, int(long.sum()))
    return np.clip(gaps.astype(np.int64), 1, _MAX_INTRA_GAP_MS)  # ≥ 1 ms: strictly ordered


def _owners(rng: np.random.Generator, durations: np.ndarray, users: int, period: int) -> np.ndarray:
    """Each session's user: log-normal activity (capped), then rebalanced to fit the period."""
    activity = np.minimum(rng.lognormal(0.0, 0.6, users), 3.0)
    owner = rng.choice(users, len(durations), p=activity / activity.sum())
    return _fit_users(owner, durations, users, period)


def _fit_users(owner: np.ndarray, durations: np.ndarray, users: int, period: int) -> np.ndarray:
    """Move sessions away from users who cannot fit them, to the least loaded users."""
    owner = owner.copy()
    cost = durations + _MIN_INTER_GAP_MS  # a session and the gap that precedes it
    # A user's load: their sessions and the gaps between them (negative: no session yet).
    load = np.bincount(owner, weights=cost, minlength=users) - _MIN_INTER_GAP_MS
    capacity = period - 1
    over = np.flatnonzero(load > capacity)
    if len(over) == 0:
        return owner
    moved = []
    for user in over.tolist():
        mine = np.flatnonzero(owner == user).tolist()
        while load[user] > capacity:
            session = mine.pop()
            load[user] -= cost[session]
            moved.append(session)
    least_loaded = [(float(load[u]), u) for u in range(users)]
    heapq.heapify(least_loaded)
    for session in moved:
        user_load, user = heapq.heappop(least_loaded)
        user_load = durations[session] if user_load < 0 else user_load + cost[session]
        if user_load > capacity:
            raise ValueError(
                "too few users for this many events in this period (a user leaves 30 minutes "
                "between sessions): raise --users or widen the period"
            )
        owner[session] = user
        heapq.heappush(least_loaded, (float(user_load), user))
    return owner


def _session_starts(
    rng: np.random.Generator, owner: np.ndarray, durations: np.ndarray, users: int, period: int
) -> np.ndarray:
    """Each session's start (ms from the period's start), in session order.

    A user's sessions take their durations and the minimum gaps between them; the slack left is
    split at random (Dirichlet) between the gap before each session and the time after the last.
    """
    n_sessions = len(durations)
    order = np.lexsort((np.arange(n_sessions), owner))  # sessions grouped by user
    per_user = np.bincount(owner, minlength=users)
    busy = np.bincount(owner, weights=durations, minlength=users).astype(np.int64)
    min_gaps = np.maximum(per_user - 1, 0) * _MIN_INTER_GAP_MS
    # ≥ 0 after _fit_users; 1 ms per session kept back so that float rounding in the split
    # below can never push a user's last click onto `end`.
    slack = np.maximum(period - 1 - busy - min_gaps - per_user, 0)
    weights = rng.exponential(1.0, n_sessions)
    tail = rng.exponential(1.0, users)
    sorted_owner = owner[order]
    share = weights[order] / (np.bincount(sorted_owner, weights=weights[order], minlength=users)
                              + tail)[sorted_owner]  # fmt: skip
    extra = np.floor(share * slack[sorted_owner]).astype(np.int64)
    counts = per_user[per_user > 0]
    first = np.zeros(n_sessions, dtype=bool)
    first[_segment_starts(counts)] = True
    step = extra + np.where(first, 0, _MIN_INTER_GAP_MS)
    # Each session starts after the previous one's end: previous durations + gaps so far.
    prev_duration = np.where(first, 0, np.roll(durations[order], 1))
    starts = np.empty(n_sessions, dtype=np.int64)
    starts[order] = _segment_cumsum(step + prev_duration, counts)
    return starts


def _segment_starts(sizes: np.ndarray) -> np.ndarray:
    return np.concatenate(([0], np.cumsum(sizes)[:-1]))


def _segment_cumsum(values: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Cumulative sums restarting at each segment (segments given by their sizes)."""
    total = np.cumsum(values)
    before = np.repeat(total[_segment_starts(sizes)] - values[_segment_starts(sizes)], sizes)
    return total - before
