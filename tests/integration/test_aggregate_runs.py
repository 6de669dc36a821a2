"""Aggregation runs against each other and against time, with real processes and servers.

1. The lease, on its own (no Spark): a second holder is refused with the holder's name, a lease
   that was not renewed ends, and its former holder can no longer publish.
2. Two aggregation runs started together: one publishes, the other exits at once with the lease
   line; the winner deletes the index a gone run left and none of its own.
3. A backfill killed after its first shelf and rerun continues where it stopped and publishes the
   same documents as an uninterrupted run.

The data are three recent days, so hour windows live in one index per day and a backfill of
them publishes in three steps.
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import time
from collections.abc import Iterator

import pytest
from cassandra.cluster import Session
from elasticsearch import Elasticsearch

from clickstream_spark.aggregate.lease import LEASE_HELD_EXIT, Lease, LeaseHeld, LeaseLost
from clickstream_spark.windows import utc_now
from tests.integration.pipeline import (
    OpenPipeline,
    Pipeline,
    assert_same_metrics,
    es_documents,
    kill_hard,
    published,
    reference_documents,
    wait_for_lease_end,
)

FIRST_DAY = utc_now().date() - dt.timedelta(days=3)
DAYS = 3
LEASE_SECONDS = 15
GONE_RUN = "20200101t000000-dead00"
BACKFILL = ("--window", "hour", "--from", f"{FIRST_DAY}T00", "--to")
STEP_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def pipeline(
    tmp_path_factory: pytest.TempPathFactory, run_id: str, open_pipeline: OpenPipeline
) -> Iterator[Pipeline]:
    with open_pipeline(f"ar_{run_id}", tmp_path_factory.mktemp("aggregate_runs")) as p:
        p.env["CLICKSTREAM_AGGREGATE_LEASE_SECONDS"] = str(LEASE_SECONDS)
        yield p


@pytest.fixture(scope="module")
def sent(pipeline: Pipeline) -> list[dict]:
    start = dt.datetime.combine(FIRST_DAY, dt.time(), dt.UTC)
    period = ("--start", start.isoformat(), "--end", (start + dt.timedelta(days=DAYS)).isoformat())
    messages = pipeline.generate("days", 6000, 51, *period)
    pipeline.run("stream", "--available-now")
    return messages


def test_the_lease_admits_one_run_at_a_time(pipeline: Pipeline, cassandra: Session) -> None:
    first = Lease(cassandra, pipeline.keyspace, "run-a", seconds=3)
    second = Lease(cassandra, pipeline.keyspace, "run-b", seconds=3)
    first.acquire()
    with pytest.raises(LeaseHeld, match=r"holds the lease: run run-a \(host .*\); it ends at "):
        second.acquire()
    first.check()  # renewed
    first.release()
    second.acquire()
    wait_for_lease_end(cassandra, pipeline.keyspace)  # not renewed: ends with its TTL
    assert not second.renew()
    with pytest.raises(LeaseLost, match="ended while it worked"):
        second.check()


def test_two_runs_started_together_one_publishes_one_exits_with_the_lease_line(
    pipeline: Pipeline, es: Elasticsearch, sent: list[dict]
) -> None:
    left = f"{pipeline.alias}-hour-2020.01.01-{GONE_RUN}"
    es.indices.create(index=left, mappings={"_meta": {"run_id": GONE_RUN}})

    jobs = [pipeline.start("aggregate", log_name=f"together-{i}") for i in range(2)]
    codes = [job.wait(timeout=600) for job in jobs]
    outputs = [(pipeline.work / f"together-{i}.log").read_text() for i in range(2)]

    assert sorted(codes) == [0, LEASE_HELD_EXIT], outputs
    winner, loser = (outputs[0], outputs[1]) if codes[0] == 0 else (outputs[1], outputs[0])
    lines = [line for line in loser.splitlines() if line.startswith("aggregate.py:")]
    assert len(lines) == 1, loser
    when = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"
    assert re.fullmatch(
        r"aggregate\.py: error: another aggregation run holds the lease: "
        rf"run \d{{8}}t\d{{6}}-[0-9a-f]{{6}} \(host \S+, pid \d+, since {when}\); "
        rf"it ends at {when} unless that run renews it\. Nothing was done",
        lines[0],
    )
    assert_same_metrics(published(es, pipeline.alias), reference_documents(sent))
    # The gone run's index was deleted, and only it: every index the winner created is served.
    existing = es.indices.get(index=f"{pipeline.alias}-*")
    assert set(existing) == set(es.indices.get_alias(name=pipeline.alias))
    assert len({info["mappings"]["_meta"]["run_id"] for info in existing.values()}) == 1
    assert f"removed index {left} left by run {GONE_RUN}, which is gone" in winner


@pytest.mark.slow
def test_a_killed_backfill_continues_where_it_stopped(
    pipeline: Pipeline, es: Elasticsearch, cassandra: Session, sent: list[dict]
) -> None:
    uninterrupted = without_computed_at(es_documents(es, pipeline.alias))  # the test above
    last_hour = f"{FIRST_DAY + dt.timedelta(days=DAYS - 1)}T23"
    log = pipeline.work / "backfill-killed.log"
    job = pipeline.start("aggregate", *BACKFILL, last_hour, log_path=log)
    try:
        wait_for_line(job, log, "published hour-")
    finally:
        kill_hard(job)
    killed = log.read_text()
    assert "hour windows: 24/72 done (33.3%)" in killed
    assert "hour windows: 72/72" not in killed, "killed too late: the backfill had finished"
    first_index = served_index(es, pipeline.alias, f"hour-{FIRST_DAY:%Y.%m.%d}")
    wait_for_lease_end(cassandra, pipeline.keyspace)

    output = pipeline.run("aggregate", *BACKFILL, last_hour)

    assert "resuming the backfill started at" in output
    assert "hour windows done: 48" in output  # the two days left
    assert "hour windows: 72/72 done (100.0%)" in output
    assert served_index(es, pipeline.alias, f"hour-{FIRST_DAY:%Y.%m.%d}") == first_index
    assert without_computed_at(es_documents(es, pipeline.alias)) == uninterrupted
    assert set(es.indices.get(index=f"{pipeline.alias}-*")) == set(
        es.indices.get_alias(name=pipeline.alias)
    )


def wait_for_line(job: subprocess.Popen, log: object, text: str) -> None:
    deadline = time.monotonic() + STEP_TIMEOUT_S
    while text not in log.read_text():  # type: ignore[attr-defined]
        assert job.poll() is None, f"the backfill exited ({job.returncode}) before {text!r}"
        assert time.monotonic() < deadline, f"no {text!r} in {STEP_TIMEOUT_S} s"
        time.sleep(0.1)


def served_index(es: Elasticsearch, alias: str, shelf: str) -> str:
    (index,) = [i for i in es.indices.get_alias(name=alias) if f"-{shelf}-" in i]
    return index


def without_computed_at(documents: dict[str, dict]) -> dict[str, dict]:
    return {
        doc_id: {k: v for k, v in doc.items() if k != "computed_at"}
        for doc_id, doc in documents.items()
    }
