"""The whole pipeline on the real stack: generator -> Kafka -> stream -> Cassandra -> aggregate ->
Elasticsearch, each job a real spark-submit process, every outcome compared exactly.

Each test runs alone and in any order: the tests that only read share one streamed (and
published) pipeline of the module; the tests that change what is stored have a pipeline each.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from cassandra.cluster import Session
from elasticsearch import Elasticsearch

from tests.integration.pipeline import (
    OpenPipeline,
    Pipeline,
    StreamRun,
    assert_cassandra_matches,
    assert_same_metrics,
    cassandra_events,
    es_documents,
    expected_events,
    kill_hard,
    published,
    reference_documents,
)

DAY = dt.date(2026, 3, 14)
NEXT_DAY = DAY + dt.timedelta(days=1)
UTC = dt.UTC


@dataclass(frozen=True)
class Streamed:
    pipeline: Pipeline
    sent: list[dict]  # every message sent, in order
    run: StreamRun


def stream_a_day(pipeline: Pipeline) -> tuple[list[dict], StreamRun]:
    """Generated messages of DAY, bad ones of every kind among them, streamed from an empty
    checkpoint in several micro-batches."""
    sent = pipeline.generate("first", 4000, 11, "--day", DAY.isoformat(), "--bad-fraction", "0.05")
    return sent, pipeline.run_stream("--available-now", "--max-offsets-per-trigger", "1500")


@pytest.fixture(scope="module")
def streamed(
    tmp_path_factory: pytest.TempPathFactory, run_id: str, open_pipeline: OpenPipeline
) -> Iterator[Streamed]:
    """A pipeline with a day of messages in Cassandra; the tests that use it only read it."""
    with open_pipeline(f"it_{run_id}", tmp_path_factory.mktemp("pipeline")) as p:
        sent, run = stream_a_day(p)
        yield Streamed(p, sent, run)


@pytest.fixture(scope="module")
def aggregated(streamed: Streamed) -> str:
    """The output of the first aggregation of ``streamed``."""
    return streamed.pipeline.run("aggregate")


def test_stream_stores_valid_events_and_quarantines_bad_ones(
    streamed: Streamed, cassandra: Session
) -> None:
    sent, run = streamed.sent, streamed.run
    bad = sum(m["event"] is None for m in sent)
    assert bad >= 100  # every kind of bad event is there

    assert_cassandra_matches(streamed.pipeline, cassandra, sent)
    assert "first start on an empty checkpoint" in run.output
    assert "from earliest offsets" in run.output
    # The counts published for each micro-batch together account for every message.
    assert [batch.batch_id for batch in run.batches] == list(range(len(run.batches)))
    assert len(run.batches) >= 3
    assert run.total("rows") == len(sent)
    assert (run.total("valid"), run.total("quarantined")) == (len(sent) - bad, bad)


def test_the_same_events_sent_twice_are_stored_once(pipeline: Pipeline, cassandra: Session) -> None:
    sent, _ = stream_a_day(pipeline)
    pipeline.produce(sent)

    replayed = pipeline.run_stream("--available-now")

    assert "resuming from the offsets in checkpoint" in replayed.output
    assert replayed.total("rows") == len(sent)
    # Each bad message is quarantined once per message sent.
    assert_cassandra_matches(pipeline, cassandra, sent + sent)


def test_a_killed_stream_resumes_without_loss_or_duplicates(
    pipeline: Pipeline, cassandra: Session
) -> None:
    sent = pipeline.generate(
        "second", 20000, 12, "--day", DAY.isoformat(), "--bad-fraction", "0.02"
    )
    job = pipeline.start("stream", "--available-now", "--max-offsets-per-trigger", "1000")
    pipeline.wait_for_commits(job, 2)
    kill_hard(job)
    stored = len(cassandra_events(cassandra, pipeline.keyspace))
    assert stored < len(expected_events(sent)), "killed too late: everything was already in"

    pipeline.run("stream", "--available-now")

    assert_cassandra_matches(pipeline, cassandra, sent)


def test_aggregate_publishes_exactly_the_reference(
    streamed: Streamed, aggregated: str, es: Elasticsearch
) -> None:
    assert "hour windows done" in aggregated and "day windows done" in aggregated
    assert_same_metrics(published(es, streamed.pipeline.alias), reference_documents(streamed.sent))
    assert es.indices.exists_alias(name=streamed.pipeline.alias)


def test_a_rerun_leaves_the_documents_identical(
    streamed: Streamed, aggregated: str, es: Elasticsearch
) -> None:
    """Only ``computed_at`` may change, so the module's other tests find the same result."""
    pipeline = streamed.pipeline
    before = es_documents(es, pipeline.alias)

    output = pipeline.run("aggregate")
    assert "nothing changed since the last run" in output
    assert es_documents(es, pipeline.alias) == before

    pipeline.run("aggregate", "--window", "day", "--date", DAY.isoformat())
    after = es_documents(es, pipeline.alias)
    assert after.keys() == before.keys()  # deterministic ids
    for doc_id, doc in after.items():
        unchanged = {k: v for k, v in doc.items() if k != "computed_at"}
        assert unchanged == {k: v for k, v in before[doc_id].items() if k != "computed_at"}


def late_message(row_key: str, user: str, ts: dt.datetime, url: str) -> dict:
    """A valid message of an event from IS, recorded as the generator records its messages."""
    event = {
        "row_key": row_key,
        "user_id": user,
        "timestamp": ts.isoformat().replace("+00:00", "Z"),
        "url": url,
        "country": "IS",
        "city": None,
        "browser": None,
        "os": None,
        "device": None,
    }
    return {
        "key": user,
        "value": json.dumps(event),
        "value_encoding": "utf8",
        "expected_reason": None,
        "event": event,
    }


def late_messages(sent: list[dict]) -> list[dict]:
    """Late events for windows already published, crafted around window edges.

    - a user's new event 10 minutes after midnight: it defines the time on page of that user's
      last event of the previous day, whose hour and day windows must change;
    - an event in the middle of an old hour, for a brand-new user.
    """
    last_of_day: dict[str, dict] = {}
    for m in sent:
        event = m["event"]
        if event is None:
            continue
        ts = dt.datetime.fromisoformat(event["timestamp"])
        if ts.date() == DAY and (
            event["user_id"] not in last_of_day
            or ts > dt.datetime.fromisoformat(last_of_day[event["user_id"]]["timestamp"])
        ):
            last_of_day[event["user_id"]] = event
    late_evening = dt.datetime.combine(DAY, dt.time(23, 35), tzinfo=UTC)
    evening = [
        e for e in last_of_day.values() if dt.datetime.fromisoformat(e["timestamp"]) >= late_evening
    ]
    assert evening, "the generated day has no user whose last event is after 23:35"
    crossing = min(evening, key=lambda e: e["timestamp"])
    # 25 minutes later: after midnight, and within the 30 minutes that define a time on page.
    after_midnight = dt.datetime.fromisoformat(crossing["timestamp"]) + dt.timedelta(minutes=25)
    assert after_midnight.date() == NEXT_DAY

    return [
        late_message(
            "late-crossing", crossing["user_id"], after_midnight, "https://late.example/next"
        ),
        late_message(
            "late-new-user",
            "late-user",
            dt.datetime.combine(DAY, dt.time(7, 30), tzinfo=UTC),
            "https://late.example/old-hour",
        ),
    ]


def test_late_events_change_exactly_the_affected_windows(
    pipeline: Pipeline, es: Elasticsearch, cassandra: Session
) -> None:
    sent, _ = stream_a_day(pipeline)
    pipeline.run("aggregate")
    before = es_documents(es, pipeline.alias)
    late = late_messages(sent)
    pipeline.produce(late)
    sent += late
    pipeline.run("stream", "--available-now")
    assert_cassandra_matches(pipeline, cassandra, sent)

    pipeline.run("aggregate")

    expected = reference_documents(sent)
    assert_same_metrics(published(es, pipeline.alias), expected)
    # The result equals a full recomputation, and windows no late event touches kept their
    # documents untouched (same computed_at).
    after = es_documents(es, pipeline.alias)
    touched_hours = {"2026-03-14T23:00:00Z", "2026-03-15T00:00:00Z", "2026-03-14T07:00:00Z"}
    for doc_id, doc in before.items():
        if doc["window"] == "hour" and doc["window_start"] not in touched_hours:
            assert after[doc_id] == doc
