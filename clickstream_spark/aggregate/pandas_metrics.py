"""Per-URL/country engagement metrics from value counts, as a plain pandas function (no Spark).

The body of the ``applyInPandas`` call of :mod:`clickstream_spark.aggregate.plan`. A call
receives MANY groups at once, so everything is vectorised over the whole frame (factorize + sort +
bincount); nothing loops in Python per group.

What needs each user's events in time order (time on page, entrances, exits) is computed natively
before, and counted per (group, time on page) natively: :func:`summarise_counts` turns those counts
into exact metrics. A group is (window_start, url, country), its keys taken as given: the plan has
already applied the country rule (:func:`clickstream_spark.aggregate.plan.country_or_unknown`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from clickstream_spark.schema import METRICS_SCHEMA

TIME_ON_PAGE = "time_on_page_s"

# A group: one window of the kind being computed, one URL, one country.
GROUP_COLUMNS = ("window_start", "url", "country")
# The metrics of a group, in METRICS_SCHEMA order.
METRIC_COLUMNS = tuple(
    name for name in METRICS_SCHEMA.fieldNames() if name not in ("window", *GROUP_COLUMNS)
)
# Output columns of :func:`summarise_counts` (METRICS_SCHEMA without ``window``: the plan adds it).
SUMMARY_COLUMNS = (*GROUP_COLUMNS, *METRIC_COLUMNS)
# The counts :func:`summarise_counts` adds up per group, besides ``events`` per time on page.
VISIT_COUNTS = ("users", "entrances", "bounces")
# Input columns of :func:`summarise_counts`.
COUNT_COLUMNS = (*GROUP_COLUMNS, TIME_ON_PAGE, "events", *VISIT_COUNTS)


def summarise_counts(counts: pd.DataFrame) -> pd.DataFrame:
    """Metrics per (window_start, url, country) from value counts of the time on page.

    Each row of ``counts`` (:data:`COUNT_COLUMNS`) stands for ``events`` events of a group with
    time on page ``time_on_page_s`` (NaN: undefined, the events are exits); ``users``,
    ``entrances`` and ``bounces`` are counts of the group that add up over its rows, whichever
    rows they sit on (``users`` counts each user once per group: the first event of a user in a
    group carries it). Rows may repeat a (group, time_on_page_s): their counts add up, so
    concatenated partial counts give the same result as merged ones.

    Median and p90 equal ``np.percentile`` (linear) of the expanded values bit for bit. The mean
    sums ``value * count`` in ascending value order, so it does not depend on the order rows
    arrive in, and rounds once per distinct value rather than once per event. Returns one row per
    group with :data:`SUMMARY_COLUMNS`; the time-on-page statistics are NaN when no event of the
    group has one, ``bounce_rate`` when it has no entrance.
    """
    group, keys = _groups(counts["window_start"], counts["url"], counts["country"])
    n_groups = len(keys["url"])
    events = counts["events"].to_numpy(dtype=np.int64)
    clicks = _sum_per_group(group, events, n_groups)
    users, entrances, bounces = (
        _sum_per_group(group, counts[name].to_numpy(dtype=np.int64), n_groups)
        for name in VISIT_COUNTS
    )

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
    exits = clicks - n_def
    bounce_rate = np.full(n_groups, np.nan)
    landed = entrances > 0
    bounce_rate[landed] = bounces[landed] / entrances[landed]

    return pd.DataFrame(
        {
            **keys,
            "clicks": clicks,
            "unique_users": users,
            "avg_time_on_page_s": avg,
            "median_time_on_page_s": median,
            "p90_time_on_page_s": p90,
            "time_on_page_coverage": n_def / clicks,
            "entrances": entrances,
            "exits": exits,
            "bounces": bounces,
            "bounce_rate": bounce_rate,
            "exit_rate": exits / clicks,
        }
    )


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


def _sum_per_group(group: np.ndarray, counts: np.ndarray, n_groups: int) -> np.ndarray:
    """Integer sums of ``counts`` per group code.

    ``bincount`` sums in float64, exact for integers below 2**53: far above any event count.
    """
    return np.bincount(group, weights=counts, minlength=n_groups).astype(np.int64)


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
    "METRIC_COLUMNS",
    "SUMMARY_COLUMNS",
    "TIME_ON_PAGE",
    "VISIT_COUNTS",
    "summarise_counts",
]
