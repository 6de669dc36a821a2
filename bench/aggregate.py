"""Benchmark: pandas-UDF aggregation vs the native Spark equivalent on the same cached input.

    PYSPARK_PYTHON=.venv/bin/python .venv/bin/python bench/aggregate.py --events 1000000

Builds realistic synthetic events (users with sessions, Zipf URLs, ~20 countries with some
null/empty, a few days of millisecond timestamps) with numpy/pyarrow, writes them once to a
temporary Parquet file, reads and caches them, then times both aggregations alternately (the
whole plan runs: ``write.format("noop")``), checks that both give the same numbers and prints
medians. Last line: ``ratio pandas_udf/native: X.XX``.
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import LongType

from clickstream_spark.aggregate.pandas_metrics import GROUP_COLUMNS, METRIC_COLUMNS
from clickstream_spark.aggregate.plan import (
    DEFAULT_MAX_ROWS_PER_CALL,
    WINDOW_SECONDS,
    aggregate_windows,
    aggregate_windows_native,
)
from clickstream_spark.schema import METRICS_SCHEMA

START = datetime(2024, 3, 1, tzinfo=UTC)
COUNTRIES = [
    "US", "DE", "FR", "GB", "IN", "BR", "JP", "CN", "CA", "AU",
    "ES", "IT", "NL", "SE", "PL", "MX", "KR", "RU", "TR", "ZA",
]  # fmt: skip


def build_events(n: int, days: int, seed: int = 7) -> pa.Table:
    """``n`` events of ~n/8 sessions by ~n/40 users over ``days`` days (vectorised).

    Sessions have a geometric number of events (mean 8) with exponential gaps (mean 90 s; some
    exceed 30 min, i.e. exits inside a session) and start uniformly over the period; URLs follow
    a Zipf law over 20k pages; a user keeps one country (2% null, 1% empty).
    """
    rng = np.random.default_rng(seed)
    n_users = max(1, n // 40)
    lengths = rng.geometric(1 / 8, size=n // 4 + 16)
    cum = np.cumsum(lengths)
    n_sessions = int(np.searchsorted(cum, n)) + 1
    lengths = lengths[:n_sessions]
    lengths[-1] -= cum[n_sessions - 1] - n  # trim so that the total is exactly n
    session = np.repeat(np.arange(n_sessions), lengths)
    period_ms = days * 86_400_000
    session_start = rng.integers(0, period_ms, size=n_sessions)
    gaps = rng.exponential(90_000, size=n).astype(np.int64)
    first = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    gaps[first] = 0
    offset = np.cumsum(gaps)
    offset -= np.repeat(offset[first], lengths)  # cumulative gap within the session
    ts_ms = START.timestamp() * 1000 + session_start[session] + offset
    user = rng.integers(0, n_users, size=n_sessions)[session]
    url = np.minimum(rng.zipf(1.3, size=n), 20_000)
    user_country = rng.integers(0, len(COUNTRIES) + 1, size=n_users)  # last = null/empty
    country_idx = user_country[user]
    countries = pa.array([*COUNTRIES, None], pa.string())
    country = countries.take(pa.array(country_idx))
    empty = (country_idx == len(COUNTRIES)) & (user % 3 == 0)
    country = pc.if_else(pa.array(empty), pa.scalar(""), country)

    def prefixed(prefix: str, values: np.ndarray) -> pa.Array:
        return pc.binary_join_element_wise(prefix, pc.cast(pa.array(values), pa.string()), "")

    return pa.table(
        {
            "row_key": prefixed("r", rng.permutation(n)),
            "user_id": prefixed("u", user),
            "timestamp": pa.array(ts_ms.astype(np.int64), pa.timestamp("ms", tz="UTC")),
            "url": prefixed("/page/", url),
            "country": country,
        }
    )


def timed(df: DataFrame) -> float:
    """Seconds to run the whole plan of ``df`` (noop sink: no collect, no output)."""
    t0 = time.perf_counter()
    df.write.format("noop").mode("overwrite").save()
    return time.perf_counter() - t0


def check_same(a: DataFrame, b: DataFrame) -> int:
    """Both results hold the same groups and numbers: counts exact, doubles within 1e-9."""
    key = ("window", *GROUP_COLUMNS)
    ra = {tuple(r[k] for k in key): r for r in a.collect()}
    rb = {tuple(r[k] for k in key): r for r in b.collect()}
    assert ra.keys() == rb.keys(), f"group sets differ: {len(ra)} vs {len(rb)}"
    counts = {f.name for f in METRICS_SCHEMA.fields if isinstance(f.dataType, LongType)}
    for k, x in ra.items():
        y = rb[k]
        for name in METRIC_COLUMNS:
            u, v = x[name], y[name]
            if name in counts or u is None or v is None:
                assert u == v, (k, name, u, v)
            else:
                assert math.isclose(u, v, rel_tol=1e-9), (k, name, u, v)
    return len(ra)


def local_session(driver_memory: str, shuffle_partitions: int) -> SparkSession:
    session = (
        SparkSession.builder.master("local[2]")
        .appName("bench-aggregate")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", driver_memory)
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("WARN")
    return session


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--window", dest="kind", choices=sorted(WINDOW_SECONDS), default="hour")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-rows-per-call", type=int, default=DEFAULT_MAX_ROWS_PER_CALL)
    parser.add_argument("--shuffle-partitions", type=int, default=4)
    parser.add_argument("--driver-memory", default="8g")
    args = parser.parse_args()

    spark = local_session(args.driver_memory, args.shuffle_partitions)
    with tempfile.TemporaryDirectory(prefix="bench-aggregate-") as tmp:
        t0 = time.perf_counter()
        path = f"{tmp}/events.parquet"
        pq.write_table(build_events(args.events, args.days), path, row_group_size=500_000)
        events = spark.read.parquet(path).cache()
        rows = events.count()
        print(f"built and cached {rows:,} events in {time.perf_counter() - t0:.1f} s")

        # Every complete window of the period; the 30 min past it are look-ahead only.
        size = WINDOW_SECONDS[args.kind]
        starts = [START + timedelta(seconds=i * size) for i in range(args.days * 86400 // size)]
        runs = {
            "pandas_udf": lambda: aggregate_windows(
                events, args.kind, starts, rows=rows, max_rows_per_call=args.max_rows_per_call
            ),
            "native": lambda: aggregate_windows_native(events, args.kind, starts),
        }
        groups = check_same(runs["pandas_udf"](), runs["native"]())  # also warms up both
        print(f"{args.kind} windows: {len(starts)}, result rows: {groups:,} (identical)")
        times: dict[str, list[float]] = {name: [] for name in runs}
        for i in range(args.repeats):
            for name in runs if i % 2 == 0 else reversed(runs):
                times[name].append(timed(runs[name]()))
        for name, ts in times.items():
            runs_s = ", ".join(f"{t:.2f}" for t in ts)
            print(f"{name:>10}: median {statistics.median(ts):.2f} s  (runs {runs_s})")
        ratio = statistics.median(times["pandas_udf"]) / statistics.median(times["native"])
        events.unpersist()
    spark.stop()
    print(f"ratio pandas_udf/native: {ratio:.2f}")


if __name__ == "__main__":
    main()
