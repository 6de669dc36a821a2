"""Per-URL/country engagement metrics as plain pandas functions (no Spark).

The bodies of the ``applyInPandas`` calls of :mod:`clickstream_spark.aggregate.plan`. A call
receives MANY users or MANY groups at once, so everything is vectorised over the whole frame
(factorize + sort + bincount); nothing loops in Python per user or per group.

Two mergeable steps, so that no call needs all events of a group: :func:`partial_counts` reduces
a user-complete share of a group's events to value counts of their time on page;
:func:`summarise_counts` computes exact metrics from the summed counts. :func:`summarise` chains
both on one frame.

A group is (window_start, url, country), its keys taken as given: the plan has already applied
the country rule (:func:`clickstream_spark.aggregate.plan.country_or_unknown`). Timestamps may be
``datetime64`` or integer epoch microseconds (what the Spark path passes: no time-zone conversion).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from clickstream_spark.schema import METRICS_SCHEMA
from clickstream_spark.windows import MAX_GAP_S

MAX_GAP_US = MAX_GAP_S * 1_000_000
TIME_ON_PAGE = "time_on_page_s"

# A group: one window of the kind being computed, one URL, one country.
GROUP_COLUMNS = ("window_start", "url", "country")
# The metrics of a group, in METRICS_SCHEMA order.
METRIC_COLUMNS = tuple(
    name for name in METRICS_SCHEMA.fieldNames() if name not in ("window", *GROUP_COLUMNS)
)
# Output columns of :func:`summarise` (METRICS_SCHEMA without ``window``: the plan adds it).
SUMMARY_COLUMNS = (*GROUP_COLUMNS, *METRIC_COLUMNS)
# Columns of :func:`partial_counts` and of :func:`summarise_counts`' input.
COUNT_COLUMNS = (*GROUP_COLUMNS, TIME_ON_PAGE, "events", "users")


def to_epoch_micros(ts: pd.Series) -> np.ndarray:
    """Epoch microseconds (int64) of a datetime64 series or of one already in microseconds."""
    if pd.api.types.is_datetime64_any_dtype(ts.dtype):
        if getattr(ts.dt, "tz", None) is not None:
            ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
        return ts.to_numpy(dtype="datetime64[us]").astype(np.int64)
    return ts.to_numpy(dtype=np.int64)


def time_on_page(events: pd.DataFrame, timestamp: str = "timestamp") -> pd.Series:
    """Time on page (seconds, float) of every event; NaN where undefined (an exit).

    The gap to the same user's next event, users' events ordered by (timestamp, row_key), when
    that gap is at most ``MAX_GAP_S``. ``events`` needs ``user_id``, ``row_key`` and
    ``timestamp`` and must hold ALL of each user's events in the window and its look-ahead (a
    user-hash bucket does). The result is aligned with ``events.index``.
    """
    n = len(events)
    if n == 0:
        return pd.Series(np.empty(0), index=events.index, name=TIME_ON_PAGE)
    ts = to_epoch_micros(events[timestamp])
    user, _ = pd.factorize(events["user_id"])
    order = np.lexsort((ts, user))
    sorted_user, sorted_ts = user[order], ts[order]
    ties = (sorted_user[1:] == sorted_user[:-1]) & (sorted_ts[1:] == sorted_ts[:-1])
    if ties.any():
        # Only rows sharing (user, timestamp) need row_key order: ranking those few strings keeps
        # the common case at one integer lexsort.
        tied = np.zeros(n, dtype=bool)
        tied[1:] |= ties
        tied[:-1] |= ties
        tied_rows = order[tied]
        row_key_rank = np.zeros(n, dtype=np.int64)
        keys = events["row_key"].to_numpy()[tied_rows]
        row_key_rank[tied_rows] = np.argsort(np.argsort(keys, kind="stable"), kind="stable")
        order = np.lexsort((row_key_rank, ts, user))
        sorted_user, sorted_ts = user[order], ts[order]
    gap_us = np.empty(n, dtype=np.int64)
    gap_us[:-1] = sorted_ts[1:] - sorted_ts[:-1]
    gap_us[-1] = MAX_GAP_US + 1
    has_next = np.zeros(n, dtype=bool)
    has_next[:-1] = sorted_user[1:] == sorted_user[:-1]
    defined = has_next & (gap_us <= MAX_GAP_US)
    # int micros / 1e6 is the correctly rounded quotient, the same double Spark computes.
    seconds_sorted = np.where(defined, gap_us / 1e6, np.nan)
    seconds = np.empty(n, dtype=np.float64)
    seconds[order] = seconds_sorted
    return pd.Series(seconds, index=events.index, name=TIME_ON_PAGE)


def partial_counts(events: pd.DataFrame) -> pd.DataFrame:
    """Mergeable partial metrics per group: value counts of the time on page.

    Same input as :func:`summarise`; a group's events may be split over several calls provided
    each user's events of the group are all in one call (then distinct users add up over calls).
    Returns :data:`COUNT_COLUMNS`:

    * one row per (group, defined time on page): ``events`` = how many events have it, ``users`` 0;
    * one row per group with ``time_on_page_s`` NaN: ``events`` = events with an undefined time on
      page (possibly 0), ``users`` = the group's distinct users in this call.

    Summing ``events`` and ``users`` per (group, time_on_page_s) over all calls merges the partials.
    """
    group, keys = _groups(events["window_start"], events["url"], events["country"])
    n_groups = len(keys["url"])
    clicks = np.bincount(group, minlength=n_groups)
    users = _distinct_per_group(group, events["user_id"], n_groups)
    on_page = events[TIME_ON_PAGE].to_numpy(dtype=np.float64)
    defined = ~np.isnan(on_page)
    undefined = clicks - np.bincount(group[defined], minlength=n_groups)
    run_group, run_value, run_events = _value_runs(group[defined], on_page[defined])
    row_group = np.concatenate((np.arange(n_groups), run_group))
    return pd.DataFrame(
        {
            **{name: uniq.take(row_group) for name, uniq in keys.items()},
            TIME_ON_PAGE: np.concatenate((np.full(n_groups, np.nan), run_value)),
            "events": np.concatenate((undefined, run_events)).astype(np.int64),
            "users": np.concatenate((users, np.zeros(len(run_group), np.int64))),
        }
    )


def summarise_counts(counts: pd.DataFrame) -> pd.DataFrame:
    """Metrics per (window_start, url, country) from the value counts of :func:`partial_counts`.

    Rows may repeat a (group, time_on_page_s): their counts add up, so concatenated partials
    give the same result as merged ones (merging first only shrinks the input).

    Median and p90 equal ``np.percentile`` (linear) of the expanded values bit for bit. The mean
    sums ``value * count`` in ascending value order, so it does not depend on the order rows
    arrive in, and rounds once per distinct value rather than once per event.
    """
    group, keys = _groups(counts["window_start"], counts["url"], counts["country"])
    n_groups = len(keys["url"])
    events = counts["events"].to_numpy(dtype=np.int64)
    clicks = _sum_per_group(group, events, n_groups)
    users = _sum_per_group(group, counts["users"].to_numpy(dtype=np.int64), n_groups)

    value = counts[TIME_ON_PAGE].to_numpy(dtype=np.float64)
    defined = ~np.isnan(value)
    order = np.lexsort((value[defined], group[defined]))
    g = group[defined][order]
    v = value[defined][order]
    c = events[defined][order]
    n_def = _sum_per_group(g, c, n_groups)
    total = np.bincount(g, weights=v * c, minlength=n_groups)
    cum = np.cumsum(c)
    base = np.cumsum(n_def) - n_def  # expanded ranks before each group's first value
    has = n_def > 0
    avg = np.full(n_groups, np.nan)
    median = np.full(n_groups, np.nan)
    p90 = np.full(n_groups, np.nan)
    avg[has] = total[has] / n_def[has]
    median[has] = _sorted_weighted_quantile(v, cum, base[has], n_def[has], 0.5)
    p90[has] = _sorted_weighted_quantile(v, cum, base[has], n_def[has], 0.9)

    return pd.DataFrame(
        {
            **keys,
            "clicks": clicks,
            "unique_users": users,
            "avg_time_on_page_s": avg,
            "median_time_on_page_s": median,
            "p90_time_on_page_s": p90,
            "time_on_page_coverage": n_def / clicks,
        }
    )


def summarise(events: pd.DataFrame) -> pd.DataFrame:
    """Metrics per (window_start, url, country) of events that already carry their time on page.

    ``events`` needs ``window_start`` (any dtype, passed through), ``url``, ``country``,
    ``user_id`` and ``time_on_page_s`` (NaN = undefined), one row per counted event (look-ahead
    events excluded). Returns one row per group with :data:`SUMMARY_COLUMNS`; the time-on-page
    statistics are NaN when no event of the group has one.

    The single-call form of the Spark path: :func:`partial_counts` then :func:`summarise_counts`.
    """
    return summarise_counts(partial_counts(events))


def _groups(
    window_start: pd.Series, url: pd.Series, country: pd.Series
) -> tuple[np.ndarray, dict[str, pd.Index]]:
    """Dense group codes 0..G-1 of (window_start, url, country) and each group's key values.

    One integer code per group from per-column codes: hashing three small code arrays is much
    cheaper than a pandas groupby over three object columns. ``keys[name][code]`` is the group's
    value of column ``name``; a null key is a value like any other (never silently dropped).
    """
    ws_code, ws_uniq = pd.factorize(window_start, use_na_sentinel=False)
    url_code, url_uniq = pd.factorize(url, use_na_sentinel=False)
    cty_code, cty_uniq = pd.factorize(country, use_na_sentinel=False)
    combined = (ws_code.astype(np.int64) * len(url_uniq) + url_code) * len(cty_uniq) + cty_code
    group, first_rows = _factorize_with_first(combined)
    keys = {
        "window_start": ws_uniq.take(ws_code[first_rows]),
        "url": url_uniq.take(url_code[first_rows]),
        "country": cty_uniq.take(cty_code[first_rows]),
    }
    return group, keys


def _factorize_with_first(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dense codes 0..G-1 for ``keys`` plus, per code, the index of a row holding it."""
    codes, uniques = pd.factorize(keys)
    first = np.empty(len(uniques), dtype=np.int64)
    # Reversed assignment leaves the FIRST occurrence's index in place (later writes win).
    first[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)
    return codes, first


def _distinct_per_group(group: np.ndarray, user_id: pd.Series, n_groups: int) -> np.ndarray:
    """Number of distinct ``user_id`` per group code."""
    user_code, user_uniq = pd.factorize(user_id)
    pair = group.astype(np.int64) * len(user_uniq) + user_code
    return np.bincount(pd.unique(pair) // len(user_uniq), minlength=n_groups).astype(np.int64)


def _sum_per_group(group: np.ndarray, counts: np.ndarray, n_groups: int) -> np.ndarray:
    """Integer sums of ``counts`` per group code.

    ``bincount`` sums in float64, exact for integers below 2**53: far above any event count.
    """
    return np.bincount(group, weights=counts, minlength=n_groups).astype(np.int64)


def _value_runs(group: np.ndarray, value: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (group, value) pairs of NaN-free ``value`` and how often each occurs.

    One lexsort, then run boundaries: vectorised value counts over all groups at once.
    """
    order = np.lexsort((value, group))
    g, v = group[order], value[order]
    new_run = np.ones(len(g), dtype=bool)
    new_run[1:] = (g[1:] != g[:-1]) | (v[1:] != v[:-1])
    starts = np.flatnonzero(new_run)
    counts = np.diff(np.append(starts, len(g)))
    return g[starts], v[starts], counts.astype(np.int64)


def _sorted_weighted_quantile(
    values: np.ndarray, cum_counts: np.ndarray, base: np.ndarray, sizes: np.ndarray, q: float
) -> np.ndarray:
    """Quantile ``q`` of each group, its distinct values given with their counts.

    ``values`` are sorted by (group, value) and ``cum_counts`` is the running total of their counts,
    so a group's expanded values (each repeated count times) hold ranks ``base .. base + size - 1``.
    Bit for bit ``np.percentile(expanded, 100*q)`` (method "linear"): the same virtual index, its
    two neighbouring ranks found through the cumulative counts, and numpy's two-sided lerp.
    """
    virtual = (sizes - 1) * q
    lo = np.floor(virtual).astype(np.int64)
    hi = np.minimum(lo + 1, sizes - 1)
    t = virtual - lo
    # The row holding expanded rank r is the first whose running count exceeds r.
    a = values[np.searchsorted(cum_counts, base + lo, side="right")]
    b = values[np.searchsorted(cum_counts, base + hi, side="right")]
    diff = b - a
    out = a + diff * t
    upper = t >= 0.5
    out[upper] = (b - diff * (1 - t))[upper]
    return out


__all__ = [
    "COUNT_COLUMNS",
    "GROUP_COLUMNS",
    "MAX_GAP_US",
    "METRIC_COLUMNS",
    "SUMMARY_COLUMNS",
    "TIME_ON_PAGE",
    "partial_counts",
    "summarise",
    "summarise_counts",
    "time_on_page",
    "to_epoch_micros",
]
