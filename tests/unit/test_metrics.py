"""The pandas functions behind the applyInPandas stages, on tiny frames with exact answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clickstream_spark.aggregate.pandas_metrics import (
    COUNT_COLUMNS,
    GROUP_COLUMNS,
    SUMMARY_COLUMNS,
    TIME_ON_PAGE,
    partial_counts,
    summarise,
    summarise_counts,
    time_on_page,
)

T0 = pd.Timestamp("2024-03-01 10:00:00")


def events(rows: list[tuple]) -> pd.DataFrame:
    """Rows of (row_key, user_id, seconds after T0, url, country)."""
    df = pd.DataFrame(rows, columns=["row_key", "user_id", "s", "url", "country"])
    df["timestamp"] = T0 + pd.to_timedelta(df.pop("s"), unit="s")
    return df


def with_time_on_page(df: pd.DataFrame, freq: str = "h") -> pd.DataFrame:
    """The events with their time on page and the start of their hour (or ``freq``) window."""
    return df.assign(time_on_page_s=time_on_page(df), window_start=df["timestamp"].dt.floor(freq))


def times_on_page(df: pd.DataFrame) -> list[float | None]:
    return [None if np.isnan(v) else v for v in time_on_page(df)]


# --------------------------------------------------------------------------- time_on_page


def test_gap_to_same_users_next_event_and_exits() -> None:
    df = events(
        [
            ("a1", "alice", 0, "/a", "DE"),
            ("b1", "bob", 10, "/a", "DE"),
            ("a2", "alice", 60, "/b", "DE"),
            ("a3", "alice", 60 + 1801, "/c", "DE"),  # 1801 s after a2: a2 is an exit
            ("b2", "bob", 100.5, "/b", "DE"),
        ]
    )
    assert times_on_page(df) == [60.0, 90.5, None, None, None]


def test_exact_1800_seconds_is_defined_one_microsecond_more_is_not() -> None:
    df = events(
        [
            ("a1", "u", 0, "/a", "DE"),
            ("a2", "u", 1800, "/a", "DE"),
            ("a3", "u", 3600.000001, "/a", "DE"),
        ]
    )
    assert times_on_page(df) == [1800.0, None, None]


def test_ties_on_timestamp_follow_row_key_order() -> None:
    # Input order deliberately differs from row_key order.
    df = events(
        [
            ("k3", "u", 5, "/c", "DE"),
            ("k2", "u", 5, "/b", "DE"),
            ("k1", "u", 5, "/a", "DE"),
            ("k0", "u", 0, "/z", "DE"),
            ("k9", "u", 20, "/z", "DE"),
            ("x1", "v", 5, "/a", "DE"),  # same timestamp, other user: no tie with u
        ]
    )
    assert times_on_page(df) == [15.0, 0.0, 0.0, 5.0, None, None]


def test_integer_microsecond_timestamps_give_the_same_gaps() -> None:
    df = events([("a", "u", 0, "/a", "DE"), ("b", "u", 0.25, "/a", "DE")])
    as_us = df.assign(timestamp=df["timestamp"].astype("datetime64[us]").astype("int64"))
    assert list(time_on_page(as_us, timestamp="timestamp").fillna(-1)) == [0.25, -1]


def test_empty_frame() -> None:
    assert time_on_page(events([])).empty
    assert list(summarise(with_time_on_page(events([]))).columns) == list(SUMMARY_COLUMNS)


# --------------------------------------------------------------------------- summarise


def test_session_crossing_midnight_uses_lookahead_event_without_counting_it() -> None:
    day1 = pd.Timestamp("2024-03-01")
    df = events(
        [
            ("a1", "u", 13 * 3600 + 50 * 60, "/a", "DE"),  # 23:50, day 1
            ("a2", "u", 14 * 3600 + 5 * 60, "/b", "DE"),  # 00:05, day 2: look-ahead only
        ]
    )
    df = with_time_on_page(df, freq="D")
    counted = df[df["window_start"] == day1]
    out = summarise(counted)
    assert out.to_dict("records") == [
        {
            "window_start": day1,
            "url": "/a",
            "country": "DE",
            "clicks": 1,
            "unique_users": 1,
            "avg_time_on_page_s": 900.0,
            "median_time_on_page_s": 900.0,
            "p90_time_on_page_s": 900.0,
            "time_on_page_coverage": 1.0,
        }
    ]


def test_group_keys_are_taken_as_given_nulls_included() -> None:
    # The country rule is the plan's (country_or_unknown); here a null is one more key value.
    df = events(
        [
            ("1", "u1", 0, "/a", None),
            ("2", "u2", 1, "/a", ""),
            ("3", "u3", 2, "/a", np.nan),
            ("4", "u4", 3, "/a", "FR"),
            ("5", "u5", 4, "/a", "unknown"),
        ]
    )
    out = summarise(with_time_on_page(df))
    assert out["country"].isna().tolist() == [True, False, False, False]
    assert out["country"].iloc[1:].tolist() == ["", "FR", "unknown"]
    assert out["clicks"].tolist() == [2, 1, 1, 1]
    assert out["unique_users"].tolist() == [2, 1, 1, 1]


def test_counts_unique_users_and_interpolated_quantiles() -> None:
    # Page /a: alice stays 1, 2, 3, 4, 10 s, bob 1.5 s then exits; /b gets the gaps' targets.
    rows = []
    t = 0.0
    for i, stay in enumerate([1, 2, 3, 4, 10]):
        rows += [(f"a{i}", "alice", t, "/a", "DE"), (f"b{i}", "alice", t + stay, "/b", "DE")]
        t += stay + 7200  # > 30 min after /b: each /b is an exit
    rows += [("c0", "bob", 0, "/a", "DE"), ("c1", "bob", 1.5, "/b", "DE")]
    df = with_time_on_page(events(rows), freq="D")
    out = summarise(df).set_index("url")
    a = out.loc["/a"]
    values = [1, 2, 3, 4, 10, 1.5]
    assert (a["clicks"], a["unique_users"]) == (6, 2)
    assert a["avg_time_on_page_s"] == 21.5 / 6
    assert a["median_time_on_page_s"] == 2.5  # between 2 and 3
    assert a["p90_time_on_page_s"] == 7.0  # 4 + (10 - 4) * 0.5
    assert a["p90_time_on_page_s"] == np.percentile(values, 90)
    assert a["time_on_page_coverage"] == 1.0


def test_metrics_are_null_when_no_event_has_a_time_on_page() -> None:
    df = events([("1", "u1", 0, "/a", "DE"), ("2", "u2", 10, "/a", "DE")])  # two exits
    (row,) = summarise(with_time_on_page(df)).to_dict("records")
    assert (row["clicks"], row["unique_users"], row["time_on_page_coverage"]) == (2, 2, 0.0)
    assert np.isnan(row["avg_time_on_page_s"])
    assert np.isnan(row["median_time_on_page_s"])
    assert np.isnan(row["p90_time_on_page_s"])


def test_partial_coverage() -> None:
    df = events([("1", "u", 0, "/a", "DE"), ("2", "u", 30, "/a", "DE"), ("3", "u", 45, "/a", "DE")])
    (row,) = summarise(with_time_on_page(df)).to_dict("records")
    assert row["time_on_page_coverage"] == 2 / 3
    assert (row["avg_time_on_page_s"], row["median_time_on_page_s"]) == (22.5, 22.5)


def test_quantiles_equal_numpy_percentile_bit_for_bit() -> None:
    rng = np.random.default_rng(1)
    n = 20_000
    df = pd.DataFrame(
        {
            "window_start": rng.integers(0, 3, n),
            "url": rng.choice([f"/p{i}" for i in range(200)], n),
            "country": rng.choice(["DE", "FR", "unknown"], n),
            "user_id": rng.integers(0, 500, n).astype(str),
            "time_on_page_s": np.where(
                rng.random(n) < 0.2, np.nan, rng.integers(0, 1_800_000_000, n) / 1e6
            ),
        }
    )
    out = summarise(df)
    for (ws, url, country), g in df.groupby(["window_start", "url", "country"]):
        row = out[(out.window_start == ws) & (out.url == url) & (out.country == country)]
        (row,) = row.to_dict("records")
        v = g["time_on_page_s"].dropna().to_numpy()
        assert row["clicks"] == len(g)
        assert row["unique_users"] == g["user_id"].nunique()
        if len(v):
            assert row["median_time_on_page_s"] == np.percentile(v, 50)
            assert row["p90_time_on_page_s"] == np.percentile(v, 90)
            assert row["avg_time_on_page_s"] == pytest.approx(v.mean(), rel=1e-12)
        else:
            assert np.isnan(row["median_time_on_page_s"])
    assert len(out) == df.groupby(["window_start", "url", "country"]).ngroups


# --------------------------------------------------------------------------- value counts


def counts_frame(groups: list[tuple[np.ndarray, np.ndarray]], rng: np.random.Generator):
    """COUNT_COLUMNS rows for groups given as (values, counts), rows shuffled; group i is /p{i}."""
    parts = [
        pd.DataFrame(
            {
                "window_start": 0,
                "url": f"/p{i}",
                "country": "DE",
                TIME_ON_PAGE: values,
                "events": counts,
                "users": 0,
            }
        )
        for i, (values, counts) in enumerate(groups)
    ]
    frame = pd.concat(parts, ignore_index=True)
    return frame.iloc[rng.permutation(len(frame))].reset_index(drop=True)


def random_value_counts(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Millisecond values (often from a small set: ties) with counts 1..20, values repeated."""
    k = int(rng.integers(1, 40))
    pool = rng.integers(0, int(rng.choice([3, 50, 1_800_000])), k) / 1e3
    return pool, rng.integers(1, 21, k)


def test_weighted_quantiles_equal_numpy_percentile_of_expanded_values_bit_for_bit() -> None:
    rng = np.random.default_rng(11)
    groups = [
        (np.array([7.25]), np.array([1])),  # a single value
        (np.array([7.25]), np.array([9])),  # a single value, repeated
        (np.array([0.001, 1800.0]), np.array([1, 1])),  # two values
        (np.array([3.0, 0.5]), np.array([1, 4])),  # two values, unsorted, weighted
        (np.array([2.0, 2.0, 1.0]), np.array([3, 2, 5])),  # a value repeated over rows
        *(random_value_counts(rng) for _ in range(400)),
    ]
    out = summarise_counts(counts_frame(groups, rng)).set_index("url")
    for i, (values, counts) in enumerate(groups):
        row = out.loc[f"/p{i}"]
        expanded = np.repeat(values, counts)
        assert row["median_time_on_page_s"] == np.percentile(expanded, 50), i
        assert row["p90_time_on_page_s"] == np.percentile(expanded, 90), i
        assert row["avg_time_on_page_s"] == pytest.approx(expanded.mean(), rel=1e-12, abs=0)
        assert row["clicks"] == len(expanded)
        assert row["time_on_page_coverage"] == 1.0


def test_groups_without_defined_values_get_nan_statistics_from_counts() -> None:
    counts = pd.DataFrame(
        {
            "window_start": [0, 0, 0],
            "url": ["/a", "/b", "/b"],
            "country": ["DE", "DE", "DE"],
            TIME_ON_PAGE: [np.nan, np.nan, 4.0],
            "events": [3, 1, 1],
            "users": [2, 1, 0],
        }
    )
    out = summarise_counts(counts).set_index("url")
    assert out.loc["/a", ["clicks", "unique_users", "time_on_page_coverage"]].tolist() == [3, 2, 0]
    assert out.loc["/a", ["avg_time_on_page_s", "median_time_on_page_s"]].isna().all()
    assert out.loc["/b", ["clicks", "unique_users", "median_time_on_page_s"]].tolist() == [2, 1, 4]
    assert out.loc["/b", "time_on_page_coverage"] == 0.5


def random_events(n: int, seed: int) -> pd.DataFrame:
    """Counted events with their time on page: ties on values, NaNs."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "window_start": rng.integers(0, 3, n),
            "url": rng.choice([f"/p{i}" for i in range(30)], n),
            "country": rng.choice(["DE", "FR", "unknown"], n),
            "user_id": rng.integers(0, 300, n).astype(str),
            "time_on_page_s": np.where(
                rng.random(n) < 0.2, np.nan, rng.integers(0, 60_000, n) / 1e3
            ),
        }
    )


def merge(partials: list[pd.DataFrame]) -> pd.DataFrame:
    """The pandas analogue of the native merge: counts summed per (group, time on page)."""
    keys = ["window_start", "url", "country", TIME_ON_PAGE]
    summed = pd.concat(partials).groupby(keys, dropna=False, sort=False)[["events", "users"]]
    return summed.sum().reset_index()


def by_group(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(["window_start", "url", "country"]).reset_index(drop=True)


@pytest.mark.parametrize("calls", [1, 2, 7])
def test_partials_split_by_user_merge_to_the_single_call_result(calls: int) -> None:
    events = random_events(20_000, seed=calls)
    # Each user's events in exactly one call, as the user-hash buckets of stage 1 guarantee.
    call_of_user = events["user_id"].astype(int) % calls
    partials = [partial_counts(events[call_of_user == c]) for c in range(calls)]
    assert all(list(p.columns) == list(COUNT_COLUMNS) for p in partials)
    merged = merge(partials)
    single = by_group(summarise(events))
    # Merged counts are one row per (group, distinct defined value) plus one per group...
    keyed = events.groupby(list(GROUP_COLUMNS))
    assert len(merged) == (keyed["time_on_page_s"].nunique() + 1).sum()
    # ... and give exactly the single call's metrics, whatever the order of their rows.
    shuffled = merged.sample(frac=1, random_state=calls).reset_index(drop=True)
    pd.testing.assert_frame_equal(by_group(summarise_counts(shuffled)), single, check_exact=True)
    # Unmerged partials repeat (group, value) rows: same counts and quantiles, the mean may
    # differ in its last bits only (value * count summed in other pieces).
    unmerged = by_group(summarise_counts(pd.concat(partials, ignore_index=True)))
    pd.testing.assert_frame_equal(unmerged, single, check_exact=False, rtol=1e-12, atol=0)
    exact = single.columns.drop("avg_time_on_page_s")
    pd.testing.assert_frame_equal(unmerged[exact], single[exact], check_exact=True)


def test_partial_counts_of_empty_input_have_the_count_columns() -> None:
    out = partial_counts(random_events(10, seed=0).iloc[:0])
    assert list(out.columns) == list(COUNT_COLUMNS)
    assert out.empty
