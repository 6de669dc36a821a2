"""Aggregation runs against each other and against time, with real processes and servers.

1. The lease on its own (no Spark): a second holder is refused with the holder's name, a lease
   that is not renewed ends, and its former holder can no longer publish.
2. Two aggregation runs started together: one publishes, the other exits at once with the lease
   line naming the first; the first deletes the index a gone run left and none of its own.
3. A backfill killed after its first index and rerun continues where it stopped and publishes the
   documents an uninterrupted run publishes.

Each test runs alone and in any order. Tests 2 and 3 share one streamed pipeline of three recent
days (so hour windows live in one index per day, and a backfill of them publishes in three
steps); each checks only what no other test changes.
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cassandra.cluster import Session
from elasticsearch import Elasticsearch

from clickstream_spark.aggregate.lease import LEASE_HELD_EXIT, Lease, LeaseHeld, LeaseLost
from clickstream_spark.windows import utc_now
from tests.integration.pipeline import (
    OpenPipeline,
    Pipeline,
    assert_same_metrics,
    kill_hard,
    published,
    reference_documents,
    wait_for_lease_end,
)

FIRST_DAY = utc_now().date() - dt.timedelta(days=3)
DAYS = 3
LAST_HOUR = f"{FIRST_DAY + dt.timedelta(days=DAYS - 1)}T23"
BACKFILL = ("--window", "hour", "--from", f"{FIRST_DAY}T00", "--to", LAST_HOUR)
# A killed run's lease ends this long after its last renewal.
SHORT_LEASE = {"CLICKSTREAM_AGGREGATE_LEASE_SECONDS": "15"}
GONE_RUN = "20200101t000000-dead00"
STEP_TIMEOUT_S = 300


@dataclass(frozen=True)
class Streamed:
    pipeline: Pipeline
    sent: list[dict]


@pytest.fixture(scope="module")
def streamed(
    tmp_path_factory: pytest.TempPathFactory, run_id: str, open_pipeline: OpenPipeline
) -> Iterator[Streamed]:
    """Three recent days of events in Cassandra, not aggregated yet."""
    with open_pipeline(f"ar_{run_id}", tmp_path_factory.mktemp("aggregate_runs")) as p:
        start = dt.datetime.combine(FIRST_DAY, dt.time(), dt.UTC)
        end = start + dt.timedelta(days=DAYS)
        sent = p.generate("days", 6000, 51, "--start", start.isoformat(), "--end", end.isoformat())
        p.run("stream", "--available-now")
        yield Streamed(p, sent)


def test_the_lease_admits_one_run_at_a_time(pipeline: Pipeline, cassandra: Session) -> None:
    first = Lease(cassandra, pipeline.keyspace, "run-a", seconds=3)
    second = Lease(cassandra, pipeline.keyspace, "run-b", seconds=3)
    first.acquire()
    with pytest.raises(LeaseHeld, match=r"holds the lease: run run-a \(host .*\); it ends at "):
        second.acquire()
    first.check()  # renewed
    first.release()
    second.acquire()
    wait_for_lease_end(cassandra, pipeline.keyspace)  # not renewed: it ends with its TTL
    assert not second.renew()
    with pytest.raises(LeaseLost, match="ended while it worked"):
        second.check()


def test_two_runs_started_together_one_publishes_one_exits_with_the_lease_line(
    streamed: Streamed, es: Elasticsearch
) -> None:
    p = streamed.pipeline
    left = f"{p.alias}-hour-2020.01.01-{GONE_RUN}"
    es.indices.create(index=left, mappings={"_meta": {"run_id": GONE_RUN}})

    jobs = [p.start("aggregate", log_name=f"together-{i}") for i in range(2)]
    codes = [job.wait(timeout=900) for job in jobs]
    outputs = [(p.work / f"together-{i}.log").read_text() for i in range(2)]

    assert sorted(codes) == [0, LEASE_HELD_EXIT], outputs
    winner, loser = outputs if codes[0] == 0 else outputs[::-1]
    winner_run = re.search(r"run (\S+) took the aggregation lease", winner)[1]  # type: ignore[index]
    lines = [line for line in loser.splitlines() if line.startswith("aggregate.py:")]
    when = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"
    assert len(lines) == 1, loser
    assert re.fullmatch(
        r"aggregate\.py: error: another aggregation run holds the lease: "
        rf"run {winner_run} \(host \S+, pid \d+, since {when}\); "
        rf"it ends at {when} unless that run renews it\. Nothing was done",
        lines[0],
    )
    assert_same_metrics(published(es, p.alias), reference_documents(streamed.sent))
    # Nothing unpublished is left: the gone run's index was deleted; every index the winner
    # created is served, none of them deleted.
    existing = es.indices.get(index=f"{p.alias}-*")
    assert set(existing) == set(es.indices.get_alias(name=p.alias))
    assert f"removed index {left} left by run {GONE_RUN}, which is gone" in winner
    created = {
        i for i, info in existing.items() if info["mappings"]["_meta"]["run_id"] == winner_run
    }
    assert created == set(re.findall(r"published \S+ as (\S+):", winner))


@pytest.mark.slow
def test_a_killed_backfill_continues_where_it_stopped(
    streamed: Streamed, es: Elasticsearch, cassandra: Session
) -> None:
    p = streamed.pipeline
    log = p.work / "backfill-killed.log"
    job = p.start("aggregate", *BACKFILL, log_path=log, env=SHORT_LEASE)
    try:
        wait_for_line(job, log, "published hour-")
    finally:
        kill_hard(job)
    killed = log.read_text()
    assert "hour windows: 24/72 done (33.3%)" in killed
    assert "hour windows: 72/72" not in killed, "killed too late: the backfill had finished"
    first_day = served_index(es, p.alias, f"hour-{FIRST_DAY:%Y.%m.%d}")
    wait_for_lease_end(cassandra, p.keyspace)

    output = p.run("aggregate", *BACKFILL)

    assert "resuming the backfill started at" in output, output[-3000:]
    assert "hour windows done: 48" in output, output[-3000:]  # the two days left
    assert "hour windows: 72/72 done (100.0%)" in output
    assert served_index(es, p.alias, f"hour-{FIRST_DAY:%Y.%m.%d}") == first_day  # not redone
    assert_same_metrics(hour_windows(published(es, p.alias)), hour_windows(reference(streamed)))
    assert set(es.indices.get(index=f"{p.alias}-*")) == set(es.indices.get_alias(name=p.alias))


def wait_for_line(job: subprocess.Popen, log: Path, text: str) -> None:
    deadline = time.monotonic() + STEP_TIMEOUT_S
    while text not in log.read_text():
        assert job.poll() is None, f"the backfill exited ({job.returncode}) before {text!r}"
        assert time.monotonic() < deadline, f"no {text!r} in {STEP_TIMEOUT_S} s"
        time.sleep(0.1)


def served_index(es: Elasticsearch, alias: str, shelf: str) -> str:
    (index,) = [i for i in es.indices.get_alias(name=alias) if f"-{shelf}-" in i]
    return index


def reference(streamed: Streamed) -> dict[tuple, tuple]:
    return reference_documents(streamed.sent)


def hour_windows(documents: dict[tuple, tuple]) -> dict[tuple, tuple]:
    """The documents of the backfilled hour windows (the three days)."""
    first, last = f"{FIRST_DAY}T00:00:00Z", f"{LAST_HOUR}:00:00Z"
    return {k: v for k, v in documents.items() if k[0] == "hour" and first <= k[1] <= last}
