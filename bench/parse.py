"""The parser alone, in one Python process: the fast path vs the exact path, per message.

    .venv/bin/python bench/parse.py                 # 200k generated messages, 1 % bad
    .venv/bin/python bench/parse.py --events 50000 --repeats 9

Both variants classify the same generated messages into the same Arrow batch
(``ingest.contract.classify_batch``); the exact variant forces every message through
``_exact_row`` (the json-with-hooks path every message took before the fast path existed).
Single-threaded, no Spark: it isolates the Python cost that a Spark Python worker pays per
message. Prints the median µs/message of each and, last, ``exact/fast: X.XX``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from unittest import mock

import pyarrow as pa

from clickstream_spark.ingest import contract
from clickstream_spark.tools.generate import generate_messages


def median_us_per_message(run: Callable[[], object], messages: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times) / messages * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--bad-fraction", type=float, default=0.01)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    start = datetime(2026, 11, 1, tzinfo=UTC)
    values = pa.array(
        [
            m.value
            for m in generate_messages(
                args.events,
                start=start,
                end=start + timedelta(days=1),
                bad_fraction=args.bad_fraction,
                seed=7,
            )
        ],
        type=pa.binary(),
    )
    fast = median_us_per_message(lambda: contract.classify_batch(values), len(values), args.repeats)
    with mock.patch.object(contract, "_fast_row", lambda _value: None):
        exact_batch = contract.classify_batch(values)
        exact = median_us_per_message(
            lambda: contract.classify_batch(values), len(values), args.repeats
        )
    assert exact_batch.equals(contract.classify_batch(values)), "the two paths disagree"

    print(f"{len(values):,} messages, {args.bad_fraction:.0%} bad, median of {args.repeats}")
    print(f"fast path + exact fallback: {fast:6.2f} µs/message ({1e6 / fast:,.0f}/s on one core)")
    print(f"exact path only:            {exact:6.2f} µs/message ({1e6 / exact:,.0f}/s on one core)")
    print(f"exact/fast: {exact / fast:.2f}")


if __name__ == "__main__":
    main()
