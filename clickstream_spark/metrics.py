"""Per-URL/country engagement metrics as plain pandas functions (no Spark).

These are the bodies of the ``applyInPandas`` calls in :mod:`clickstream_spark.aggregate`, kept
free of Spark so they can be unit-tested on tiny frames. Each call receives MANY users or MANY
(window, url, country) groups at once, so everything here is vectorised over the whole frame
(factorize + sort + bincount); nothing loops in Python per user or per group.

Timestamps may be ``datetime64`` (tests, ad-hoc use) or integer epoch microseconds (the Spark path
passes ``unix_micros`` longs so that no time-zone conversion happens on the way to pandas).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# A gap longer than this to the same user's next event is an exit: no time on page.
MAX_GAP_S = 1800
MAX_GAP_US = MAX_GAP_S * 1_000_000
UNKNOWN_COUNTRY = "unknown"
TIME_ON_PAGE = "time_on_page_s"

# Output columns of :func:`summarise`, in METRICS_SCHEMA order (without ``window``).
SUMMARY_COLUMNS = (
    "window_start",
    "url",
    "country",
    "clicks",
    "unique_users",
    "avg_time_on_page_s",
    "median_time_on_page_s",
    "p90_time_on_page_s",
    "time_on_page_coverage",
)


def to_epoch_micros(ts: pd.Series) -> np.ndarray:
    """Epoch microseconds (int64) of a datetime64 series or of one already in microseconds."""
    if pd.api.types.is_datetime64_any_dtype(ts.dtype):
        if getattr(ts.dt, "tz", None) is not None:
            ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
        return ts.to_numpy(dtype="datetime64[us]").astype(np.int64)
    return ts.to_numpy(dtype=np.int64)


def normalise_country(country: pd.Series) -> pd.Series:
    """Null or empty country -> ``"unknown"`` (the metric groups them together)."""
    return country.where(country.notna() & (country != ""), UNKNOWN_COUNTRY)


def time_on_page(events: pd.DataFrame, timestamp: str = "timestamp") -> pd.Series:
    """Time on page (seconds, float) of every event; NaN where undefined (an exit).

    It is the gap to the same user's next event, users' events ordered by (timestamp, row_key),
    when that gap is <= 1800 s. Equal timestamps give a gap of 0 to the next by ``row_key``.
    ``events`` needs ``user_id``, ``row_key`` and ``timestamp``; it must hold ALL of each user's
    events in the window and its 30-minute look-ahead (a user-hash bucket does). The result is
    aligned with ``events.index``.
    """
    n = len(events)
    if n == 0:
        return pd.Series(np.empty(0), index=events.index, name=TIME_ON_PAGE)
    ts = to_epoch_micros(events[timestamp])
    user, _ = pd.factorize(events["user_id"])
    order = np.lexsort((ts, user))
    s_user, s_ts = user[order], ts[order]
    ties = (s_user[1:] == s_user[:-1]) & (s_ts[1:] == s_ts[:-1])
    if ties.any():
        # Only rows sharing (user, timestamp) need row_key order; sorting the strings of those
        # few rows instead of all of them keeps the common case at one integer lexsort.
        tied = np.zeros(n, dtype=bool)
        tied[1:] |= ties
        tied[:-1] |= ties
        tied_rows = order[tied]
        rk_rank = np.zeros(n, dtype=np.int64)
        keys = events["row_key"].to_numpy()[tied_rows]
        rk_rank[tied_rows] = np.argsort(np.argsort(keys, kind="stable"), kind="stable")
        order = np.lexsort((rk_rank, ts, user))
        s_user, s_ts = user[order], ts[order]
    gap_us = np.empty(n, dtype=np.int64)
    gap_us[:-1] = s_ts[1:] - s_ts[:-1]
    gap_us[-1] = MAX_GAP_US + 1
    has_next = np.zeros(n, dtype=bool)
    has_next[:-1] = s_user[1:] == s_user[:-1]
    defined = has_next & (gap_us <= MAX_GAP_US)
    # int micros / 1e6 is the correctly rounded quotient, the same double Spark computes.
    top_sorted = np.where(defined, gap_us / 1e6, np.nan)
    top = np.empty(n, dtype=np.float64)
    top[order] = top_sorted
    return pd.Series(top, index=events.index, name=TIME_ON_PAGE)


def _sorted_quantile(
    values: np.ndarray, starts: np.ndarray, sizes: np.ndarray, q: float
) -> np.ndarray:
    """Quantile ``q`` of each run ``values[start:start+size]`` (runs sorted ascending, size >= 1).

    Reproduces ``np.percentile(run, 100*q)`` (method "linear") bit for bit: the same virtual index
    ``(n-1)*q`` and numpy's two-sided lerp (``b - (b-a)*(1-t)`` when ``t >= 0.5``).
    """
    virtual = (sizes - 1) * q
    lo = np.floor(virtual).astype(np.int64)
    hi = np.minimum(lo + 1, sizes - 1)
    t = virtual - lo
    a = values[starts + lo]
    b = values[starts + hi]
    diff = b - a
    out = a + diff * t
    upper = t >= 0.5
    out[upper] = (b - diff * (1 - t))[upper]
    return out


def summarise(events: pd.DataFrame) -> pd.DataFrame:
    """Metrics per (window_start, url, country) of events that already carry their time on page.

    ``events`` needs ``window_start`` (any dtype, passed through), ``url``, ``country``,
    ``user_id`` and ``time_on_page_s`` (NaN = undefined), one row per counted event (look-ahead
    events excluded). Null or empty country counts as ``"unknown"``. Returns one row per group
    with :data:`SUMMARY_COLUMNS`; the time-on-page statistics are NaN when no event of the group
    has a defined time on page. Median and p90 equal ``np.percentile`` (linear interpolation).
    """
    if events.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in SUMMARY_COLUMNS})
    country = normalise_country(events["country"])
    # One integer code per group from per-column codes: hashing three small code arrays is much
    # cheaper than a pandas groupby over three object columns.
    ws_code, ws_uniq = pd.factorize(events["window_start"])
    url_code, url_uniq = pd.factorize(events["url"])
    cty_code, cty_uniq = pd.factorize(country)
    combined = (ws_code.astype(np.int64) * len(url_uniq) + url_code) * len(cty_uniq) + cty_code
    group, first_rows = _factorize_with_first(combined)
    n_groups = len(first_rows)

    clicks = np.bincount(group, minlength=n_groups)
    user_code, user_uniq = pd.factorize(events["user_id"])
    pair = group.astype(np.int64) * len(user_uniq) + user_code
    unique_users = np.bincount(pd.unique(pair) // len(user_uniq), minlength=n_groups)

    top = events[TIME_ON_PAGE].to_numpy(dtype=np.float64)
    defined = ~np.isnan(top)
    g_def, v_def = group[defined], top[defined]
    n_def = np.bincount(g_def, minlength=n_groups)
    total = np.bincount(g_def, weights=v_def, minlength=n_groups)
    order = np.lexsort((v_def, g_def))
    v_sorted = v_def[order]
    starts = np.concatenate(([0], np.cumsum(n_def)[:-1]))
    has = n_def > 0
    avg = np.full(n_groups, np.nan)
    median = np.full(n_groups, np.nan)
    p90 = np.full(n_groups, np.nan)
    avg[has] = total[has] / n_def[has]
    median[has] = _sorted_quantile(v_sorted, starts[has], n_def[has], 0.5)
    p90[has] = _sorted_quantile(v_sorted, starts[has], n_def[has], 0.9)

    return pd.DataFrame(
        {
            "window_start": ws_uniq.take(ws_code[first_rows]),
            "url": url_uniq.take(url_code[first_rows]),
            "country": cty_uniq.take(cty_code[first_rows]),
            "clicks": clicks.astype(np.int64),
            "unique_users": unique_users.astype(np.int64),
            "avg_time_on_page_s": avg,
            "median_time_on_page_s": median,
            "p90_time_on_page_s": p90,
            "time_on_page_coverage": n_def / clicks,
        }
    )


def _factorize_with_first(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dense codes 0..G-1 for ``keys`` plus, per code, the index of a row holding it."""
    codes, uniques = pd.factorize(keys)
    first = np.empty(len(uniques), dtype=np.int64)
    # Reversed assignment leaves the FIRST occurrence's index in place (later writes win).
    first[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)
    return codes, first


__all__ = [
    "MAX_GAP_S",
    "SUMMARY_COLUMNS",
    "TIME_ON_PAGE",
    "UNKNOWN_COUNTRY",
    "normalise_country",
    "summarise",
    "time_on_page",
    "to_epoch_micros",
]
