"""The pandas function behind the applyInPandas calls, on tiny frames with exact answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clickstream_spark.aggregate.pandas_metrics import (
    COUNT_COLUMNS,
    GROUP_COLUMNS,
    SUMMARY_COLUMNS,
    TIME_ON_PAGE,
    summarise_counts,
)


def marked_events(rows: list[tuple]) -> pd.DataFrame:
    """Rows of (url, country, user_id, time on page or None, entrance), one window."""
    df = pd.DataFrame(rows, columns=["url", "country", "user_id", TIME_ON_PAGE, "entrance"])
    return df.assign(window_start=0, **{TIME_ON_PAGE: df[TIME_ON_PAGE].astype(float)})


def counts_of(events: pd.DataFrame) -> pd.DataFrame:
    """COUNT_COLUMNS of events with their marks: what the plan's native counting gives.

    ``events`` has GROUP_COLUMNS, ``user_id``, ``time_on_page_s`` (NaN: an exit) and
    ``entrance``; a user counts once per group, on its first row there.
    """
    exit_ = events[TIME_ON_PAGE].isna()
    flags = pd.DataFrame(
        {
            **{name: events[name] for name in GROUP_COLUMNS},
            TIME_ON_PAGE: events[TIME_ON_PAGE],
            "events": 1,
            "users": (~events.duplicated([*GROUP_COLUMNS, "user_id"])).astype(int),
            "entrances": events["entrance"].astype(int),
            "bounces": (events["entrance"] & exit_).astype(int),
        }
    )
    keys = [*GROUP_COLUMNS, TIME_ON_PAGE]
    summed = flags.groupby(keys, dropna=False, sort=False)[list(COUNT_COLUMNS[4:])].sum()
    return summed.reset_index()[list(COUNT_COLUMNS)]


def summary(rows: list[tuple]) -> pd.DataFrame:
    return summarise_counts(counts_of(marked_events(rows))).set_index("url")


# --------------------------------------------------------------------------- per group


def test_counts_unique_users_and_interpolated_quantiles() -> None:
    # Page /a: alice stays 1, 2, 3, 4, 10 s, bob 1.5 s; the first of each user's visits lands.
    stays = [1, 2, 3, 4, 10, 1.5]
    rows = [("/a", "DE", "alice", s, i == 0) for i, s in enumerate(stays[:5])]
    rows += [("/a", "DE", "bob", 1.5, True)]
    a = summary(rows).loc["/a"]
    assert (a["clicks"], a["unique_users"]) == (6, 2)
    assert a["avg_time_on_page_s"] == 21.5 / 6
    assert a["median_time_on_page_s"] == 2.5  # between 2 and 3
    assert a["p90_time_on_page_s"] == 7.0  # 4 + (10 - 4) * 0.5
    assert a["p90_time_on_page_s"] == np.percentile(stays, 90)
    assert a["time_on_page_coverage"] == 1.0
    assert (a["entrances"], a["exits"], a["bounces"]) == (2, 0, 0)
    assert (a["bounce_rate"], a["exit_rate"]) == (0.0, 0.0)


def test_entrances_exits_bounces_and_their_rates() -> None:
    # /land: 4 visits land, 1 of them leaves at once (a bounce), 1 more event ends a visit there.
    # /deep: visits pass and end there, none lands: no bounce rate.
    rows = [
        ("/land", "DE", "u1", None, True),  # a bounce
        ("/land", "DE", "u2", 30.0, True),
        ("/land", "DE", "u3", 12.0, True),
        ("/land", "DE", "u4", 7.0, True),
        ("/land", "DE", "u2", None, False),  # u2 comes back to /land and leaves
        ("/deep", "DE", "u2", None, False),
        ("/deep", "DE", "u3", None, False),
        ("/deep", "DE", "u4", 5.0, False),
    ]
    out = summary(rows)
    land, deep = out.loc["/land"], out.loc["/deep"]
    assert (land["clicks"], land["unique_users"]) == (5, 4)
    assert (land["entrances"], land["exits"], land["bounces"]) == (4, 2, 1)
    assert (land["bounce_rate"], land["exit_rate"]) == (0.25, 0.4)
    assert (deep["entrances"], deep["exits"], deep["bounces"]) == (0, 2, 0)
    assert np.isnan(deep["bounce_rate"])
    assert deep["exit_rate"] == 2 / 3
    assert deep["exit_rate"] + deep["time_on_page_coverage"] == 1.0


def test_metrics_are_null_when_no_event_has_a_time_on_page() -> None:
    # Two one-page visits: each event is an entrance and an exit.
    (row,) = summarise_counts(
        counts_of(marked_events([("/a", "DE", "u1", None, True), ("/a", "DE", "u2", None, True)]))
    ).to_dict("records")
    assert (row["clicks"], row["unique_users"], row["time_on_page_coverage"]) == (2, 2, 0.0)
    assert np.isnan(row["avg_time_on_page_s"])
    assert np.isnan(row["median_time_on_page_s"])
    assert np.isnan(row["p90_time_on_page_s"])
    assert (row["entrances"], row["exits"], row["bounces"]) == (2, 2, 2)
    assert (row["bounce_rate"], row["exit_rate"]) == (1.0, 1.0)


def test_partial_coverage() -> None:
    rows = [("/a", "DE", "u", 30.0, True), ("/a", "DE", "u", 15.0, False)]
    row = summary([*rows, ("/a", "DE", "u", None, False)]).loc["/a"]
    assert row["time_on_page_coverage"] == 2 / 3
    assert row["exit_rate"] == 1 / 3
    assert (row["avg_time_on_page_s"], row["median_time_on_page_s"]) == (22.5, 22.5)
    assert (row["entrances"], row["exits"], row["bounces"]) == (1, 1, 0)


def test_group_keys_are_taken_as_given_nulls_included() -> None:
    # The country rule is the plan's (country_or_unknown); here a null is one more key value.
    rows = [
        ("/a", None, "u1", None, True),
        ("/a", "", "u2", None, True),
        ("/a", np.nan, "u3", None, True),
        ("/a", "FR", "u4", None, True),
        ("/a", "unknown", "u5", None, True),
    ]
    out = summarise_counts(counts_of(marked_events(rows))).sort_values(
        "country", na_position="first"
    )
    assert out["country"].isna().tolist() == [True, False, False, False]
    assert out["country"].iloc[1:].tolist() == ["", "FR", "unknown"]
    assert out["clicks"].tolist() == [2, 1, 1, 1]
    assert out["unique_users"].tolist() == [2, 1, 1, 1]
    assert out["bounces"].tolist() == [2, 1, 1, 1]


def test_empty_counts_give_the_summary_columns() -> None:
    empty = pd.DataFrame({name: [] for name in COUNT_COLUMNS})
    out = summarise_counts(empty)
    assert list(out.columns) == list(SUMMARY_COLUMNS)
    assert out.empty


# --------------------------------------------------------------------------- exact statistics


def random_events(n: int, seed: int) -> pd.DataFrame:
    """Marked events of 3 windows: ties on values, NaNs (exits), entrances."""
    rng = np.random.default_rng(seed)
    on_page = np.where(rng.random(n) < 0.2, np.nan, rng.integers(0, 1_800_000_000, n) / 1e6)
    return pd.DataFrame(
        {
            "window_start": rng.integers(0, 3, n),
            "url": rng.choice([f"/p{i}" for i in range(200)], n),
            "country": rng.choice(["DE", "FR", "unknown"], n),
            "user_id": rng.integers(0, 500, n).astype(str),
            TIME_ON_PAGE: np.where(rng.random(n) < 0.5, np.round(on_page, 1), on_page),
            "entrance": rng.random(n) < 0.3,
        }
    )


def test_metrics_equal_numpy_on_the_expanded_values_bit_for_bit() -> None:
    events = random_events(20_000, seed=1)
    out = summarise_counts(counts_of(events))
    assert len(out) == events.groupby(list(GROUP_COLUMNS)).ngroups
    by_key = out.set_index(list(GROUP_COLUMNS))
    for key, g in events.groupby(list(GROUP_COLUMNS)):
        row = by_key.loc[key]
        v = g[TIME_ON_PAGE].dropna().to_numpy()
        exits = g[TIME_ON_PAGE].isna()
        assert row["clicks"] == len(g)
        assert row["unique_users"] == g["user_id"].nunique()
        assert row["entrances"] == g["entrance"].sum()
        assert row["exits"] == exits.sum()
        assert row["bounces"] == (g["entrance"] & exits).sum()
        assert row["exit_rate"] == exits.sum() / len(g)
        if len(v):
            assert row["median_time_on_page_s"] == np.percentile(v, 50)
            assert row["p90_time_on_page_s"] == np.percentile(v, 90)
            assert row["avg_time_on_page_s"] == pytest.approx(v.mean(), rel=1e-12)
        else:
            assert np.isnan(row["median_time_on_page_s"])


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
                "entrances": 0,
                "bounces": 0,
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
        assert (row["entrances"], row["exits"], row["exit_rate"]) == (0, 0, 0.0)
        assert np.isnan(row["bounce_rate"])


def test_groups_without_defined_values_get_nan_statistics_from_counts() -> None:
    counts = pd.DataFrame(
        {
            "window_start": [0, 0, 0],
            "url": ["/a", "/b", "/b"],
            "country": ["DE", "DE", "DE"],
            TIME_ON_PAGE: [np.nan, np.nan, 4.0],
            "events": [3, 1, 1],
            "users": [2, 1, 0],
            "entrances": [2, 0, 1],
            "bounces": [1, 0, 0],
        }
    )
    out = summarise_counts(counts).set_index("url")
    assert out.loc["/a", ["clicks", "unique_users", "time_on_page_coverage"]].tolist() == [3, 2, 0]
    assert out.loc["/a", ["avg_time_on_page_s", "median_time_on_page_s"]].isna().all()
    assert out.loc["/a", ["entrances", "exits", "bounces", "bounce_rate"]].tolist() == [
        2,
        3,
        1,
        0.5,
    ]
    assert out.loc["/b", ["clicks", "unique_users", "median_time_on_page_s"]].tolist() == [2, 1, 4]
    assert out.loc["/b", "time_on_page_coverage"] == 0.5
    assert out.loc["/b", ["entrances", "exits", "bounce_rate", "exit_rate"]].tolist() == [
        1,
        1,
        0.0,
        0.5,
    ]


@pytest.mark.parametrize("parts", [2, 7])
def test_counts_split_over_rows_add_up_to_the_merged_result(parts: int) -> None:
    """A group's counts may arrive as several partial rows for one time on page: same result."""
    counts = counts_of(random_events(20_000, seed=parts))
    merged = summarise_counts(counts).sort_values(list(GROUP_COLUMNS)).reset_index(drop=True)
    # Split every row's counts in `parts` pieces (the remainder on the first), rows shuffled.
    numeric = list(COUNT_COLUMNS[4:])
    pieces = []
    for i in range(parts):
        piece = counts.copy()
        piece[numeric] = counts[numeric] // parts + (counts[numeric] % parts if i == 0 else 0)
        pieces.append(piece[piece["events"] > 0])
    split = pd.concat(pieces, ignore_index=True).sample(frac=1, random_state=parts)
    got = summarise_counts(split).sort_values(list(GROUP_COLUMNS)).reset_index(drop=True)
    # Same counts, rates and quantiles; the mean may differ in its last bits only (value * count
    # summed in other pieces).
    exact = merged.columns.drop("avg_time_on_page_s")
    pd.testing.assert_frame_equal(got[exact], merged[exact], check_exact=True)
    pd.testing.assert_frame_equal(got, merged, check_exact=False, rtol=1e-12, atol=0)
