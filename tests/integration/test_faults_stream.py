"""Fault tests of the stream job: real processes killed while it runs, exact counts after.

Each test has its own topic, keyspace and checkpoint (the ``pipeline`` fixture), puts back any
server it broke before it ends (``restored``), so that each runs alone and in any order, and
prints what happened at each fault: messages
produced (acknowledged by Kafka), messages stored in Cassandra (events + quarantine), the
difference in flight, and the counts after recovery (``pytest -s`` shows them).

    ip netns exec ... .venv/bin/python -m pytest -m slow tests/integration/test_faults_stream.py -s
"""

from __future__ import annotations

import datetime as dt
import random
import re
import subprocess
import time
from pathlib import Path

import pytest
from cassandra.cluster import Session

from clickstream_spark.config import Config
from tests.integration.pipeline import (
    Pipeline,
    SteadyProducer,
    assert_cassandra_matches,
    kill_hard,
    stored_count,
    topic_size,
)
from tests.integration.servers import kill_server, restored

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DAY = dt.date(2026, 4, 2)
SEED = 20260402  # the kill moments; a failure names it, a rerun repeats the same moments
KILLS = 3
# Micro-batches small enough that a kill usually lands in the middle of one.
STREAM_ARGS = ("--trigger-interval", "1 second", "--max-offsets-per-trigger", "1500")
# How long the job may take to notice that Cassandra is gone and exit.
CASSANDRA_FAILURE_BOUND_S = 240
# How long the running stream may take, after Kafka is back, to commit two more micro-batches.
KAFKA_RIDE_THROUGH_S = 180


def fault_report(fault: str, **counts: object) -> None:
    """One line per fault, for the test output and the issue's note."""
    print(f"\n[fault] {fault}: " + ", ".join(f"{k} {v}" for k, v in counts.items()), flush=True)


def in_flight(pipeline: Pipeline, cassandra: Session) -> dict[str, int]:
    produced = topic_size(pipeline.bootstrap_servers, pipeline.topic)
    stored = stored_count(cassandra, pipeline.keyspace)
    return {"produced": produced, "stored": stored, "in_flight": produced - stored}


def wait_until_stored(
    pipeline: Pipeline, job: subprocess.Popen, cassandra: Session, count: int
) -> None:
    """Wait until the running stream has stored ``count`` messages (events + quarantine)."""
    deadline = time.monotonic() + 300
    while stored_count(cassandra, pipeline.keyspace) < count:
        assert job.poll() is None, f"the stream exited ({job.returncode}) before catching up"
        assert time.monotonic() < deadline, "the stream did not catch up in 300 s"
        time.sleep(1)


def error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.startswith("stream.py: error:")]
    assert lines, f"no one-line error from the job:\n{output[-3000:]}"
    return lines[-1]


def wait_for_exit(job: subprocess.Popen, log: Path, timeout_s: float) -> int:
    """The job's exit code; a failure with its log's tail if it still runs after ``timeout_s``."""
    try:
        return job.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        kill_hard(job)
        raise AssertionError(
            f"the stream still ran {timeout_s} s after the fault:\n" + log.read_text()[-3000:]
        ) from None


def test_a_stream_killed_repeatedly_loses_and_doubles_nothing(
    pipeline: Pipeline, cassandra: Session
) -> None:
    rng = random.Random(SEED)
    started = time.monotonic()
    with SteadyProducer(
        pipeline.bootstrap_servers, pipeline.topic, seed=31, rate=150, day=DAY
    ) as producer:
        for kill in range(1, KILLS + 1):
            job = pipeline.start("stream", *STREAM_ARGS, log_name=f"stream-kill-{kill}")
            pipeline.wait_for_commits(job, pipeline.committed_batches() + 1)
            time.sleep(rng.uniform(0, 4))
            kill_hard(job)
            mid_batch = pipeline.planned_batches() > pipeline.committed_batches()
            counts = in_flight(pipeline, cassandra)
            fault_report(
                f"stream SIGKILL {kill}/{KILLS}",
                **counts,
                committed_batches=pipeline.committed_batches(),
                killed_mid_batch=mid_batch,
            )
            assert counts["in_flight"] > 0, "killed with nothing in flight: the kill tests nothing"
        sent = producer.stop()

    output = pipeline.run("stream", "--available-now")

    assert_cassandra_matches(pipeline, cassandra, sent)
    fault_report(
        "stream SIGKILL, after the drain",
        produced=len(sent),
        stored=stored_count(cassandra, pipeline.keyspace),
        resumed="resuming from the offsets in checkpoint" in output,
        seconds=round(time.monotonic() - started),
    )


def test_cassandra_killed_fails_the_stream_with_one_line_and_the_rerun_stores_everything(
    pipeline: Pipeline, cassandra: Session, config: Config
) -> None:
    sent = pipeline.generate(
        "before", 15000, 41, "--day", DAY.isoformat(), "--bad-fraction", "0.02"
    )
    log = pipeline.work / "stream-cassandra-kill.log"
    job = pipeline.start("stream", *STREAM_ARGS, log_path=log)
    with restored("cassandra", cassandra):
        pipeline.wait_for_commits(job, 2)
        at_kill = in_flight(pipeline, cassandra)
        killed = kill_server("cassandra")
        code = wait_for_exit(job, log, CASSANDRA_FAILURE_BOUND_S)
        seconds = time.monotonic() - killed.at
        line = error_line(log.read_text())
        fault_report(
            "Cassandra SIGKILL",
            **at_kill,
            exit_code=code,
            seconds_to_fail=round(seconds, 1),
            message=repr(line),
        )
        assert code == 1
        assert re.fullmatch(
            r"stream\.py: error: Cassandra is unreachable: micro-batch \d+ not written to "
            rf"Cassandra at {re.escape(config.cassandra.endpoints)} \({pipeline.keyspace}\.\w+; "
            # The root cause: an exception class, with its message when it has one.
            r"the next start replays it\): \S+(: .+)?",
            line,
        ), line

    survived = stored_count(cassandra, pipeline.keyspace)
    fault_report("Cassandra SIGKILL, after its restart", stored=survived)

    output = pipeline.run("stream", "--available-now")

    assert "resuming from the offsets in checkpoint" in output
    assert_cassandra_matches(pipeline, cassandra, sent)
    fault_report(
        "Cassandra SIGKILL, after the rerun",
        produced=len(sent),
        stored=stored_count(cassandra, pipeline.keyspace),
    )


def test_the_stream_rides_through_a_kafka_restart_losing_and_doubling_nothing(
    pipeline: Pipeline, cassandra: Session
) -> None:
    """The stream rides through a broker crash and restart: the micro-batch in progress waits
    for the broker (its Kafka consumers retry) and the query goes on, nothing lost or doubled."""
    with SteadyProducer(
        pipeline.bootstrap_servers, pipeline.topic, seed=51, rate=250, day=DAY
    ) as producer:
        job = pipeline.start("stream", *STREAM_ARGS, log_name="stream-kafka-restart")
        try:
            with restored("kafka"):
                pipeline.wait_for_commits(job, 2)
                at_kill = in_flight(pipeline, cassandra)
                killed = kill_server("kafka").at
                time.sleep(2)  # down for 2 s plus its restart (~15 s here): a real outage
            restarted = time.monotonic()
            committed = pipeline.committed_batches()
            pipeline.wait_for_commits(job, committed + 2, timeout_s=KAFKA_RIDE_THROUGH_S)
            fault_report(
                "Kafka SIGKILL + restart",
                **at_kill,
                kafka_down_s=round(restarted - killed, 1),
                stream_alive=job.poll() is None,
                next_commits_after_s=round(time.monotonic() - restarted, 1),
            )
            sent = producer.stop()
            # The same, still running query takes in everything sent, before and after.
            wait_until_stored(pipeline, job, cassandra, len(sent))
        finally:
            if job.poll() is None:
                kill_hard(job)

    assert_cassandra_matches(pipeline, cassandra, sent)
    fault_report(
        "Kafka SIGKILL + restart, after catching up",
        produced=len(sent),
        stored=stored_count(cassandra, pipeline.keyspace),
    )
