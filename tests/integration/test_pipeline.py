"""The whole pipeline on the real stack: generator -> Kafka -> stream -> Cassandra -> aggregate ->
Elasticsearch, each job a real spark-submit process, every outcome compared exactly.

Each test runs alone and in any order: the tests that only read share one streamed (and
published) pipeline of the module; the tests that change what is stored have a pipeline each.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from cassandra.cluster import Session
from elasticsearch import Elasticsearch

from clickstream_spark.aggregate.pandas_metrics import METRIC_COLUMNS
from clickstream_spark.tools.report import top_landing_pages
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
    expected = reference_documents(streamed.sent)
    assert_same_metrics(published(es, streamed.pipeline.alias), expected)
    assert es.indices.exists_alias(name=streamed.pipeline.alias)
    # The demo's landing pages, as the report reads them from the index.
    day = f"{DAY.isoformat()}T00:00:00Z"
    entrances: Counter[str] = Counter()
    bounces: Counter[str] = Counter()
    for (window, start, url, _), values in expected.items():
        if (window, start) == ("day", day):
            metrics = dict(zip(METRIC_COLUMNS, values, strict=True))
            entrances[url] += metrics["entrances"]
            bounces[url] += metrics["bounces"]
    top = sorted((url for url in entrances if entrances[url]), key=lambda u: (-entrances[u], u))
    assert top_landing_pages(es, streamed.pipeline.alias, "day", day) == [
        (url, entrances[url], bounces[url] / entrances[url]) for url in top[:10]
    ]


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


def timelines(sent: list[dict]) -> dict[str, list[tuple[dt.datetime, str]]]:
    """user_id -> its stored events as (timestamp, row_key), in visit order."""
    events = {m["event"]["row_key"]: m["event"] for m in sent if m["event"] is not None}
    users: dict[str, list[tuple[dt.datetime, str]]] = {}
    for event in events.values():
        ts = dt.datetime.fromisoformat(event["timestamp"]).astimezone(UTC)
        users.setdefault(event["user_id"], []).append((ts, event["row_key"]))
    return {user: sorted(events) for user, events in users.items()}


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

    - ``late-crossing``: 25 minutes after a user's last event of the day, after midnight: it
      defines the time on page of that event (no longer an exit), whose hour and day change;
    - ``late-before``: 20 minutes before a visit that starts in the first 20 minutes of the day,
      so on the previous day: that visit's first event is no longer an entrance, and its hour and
      day (the late event's NEXT hour and day) change;
    - ``late-join``: halfway between two visits of one user 30 to 60 minutes apart: one visit
      instead of two (an exit and an entrance less);
    - ``late-new-user``: in the middle of an old hour, for a brand-new user.
    """
    users = timelines(sent)
    midnight = dt.datetime.combine(NEXT_DAY, dt.time(), tzinfo=UTC)
    gap = dt.timedelta(minutes=30)

    last = {user: events[-1] for user, events in users.items()}
    evening = [
        (ts, user)
        for user, (ts, _) in last.items()
        if midnight - gap * 5 / 6 <= ts < midnight - gap / 6
    ]
    assert evening, "the generated day has no user whose last event is in 23:35-23:55"
    crossing_ts, crossing_user = min(evening)

    first = {user: events[0] for user, events in users.items()}
    day_start = midnight - dt.timedelta(days=1)
    morning = [(ts, user) for user, (ts, _) in first.items() if ts < day_start + gap * 2 / 3]
    assert morning, "the generated day has no user whose first event is in 00:00-00:20"
    before_ts, before_user = min(morning)

    joinable = [
        (a, b, user)
        for user, events in users.items()
        for (a, _), (b, _) in itertools.pairwise(events)
        if gap < b - a <= 2 * gap
    ]
    assert joinable, "the generated day has no user with two visits 30 to 60 minutes apart"
    join_a, join_b, join_user = min(joinable)
    # Halfway, floored to the millisecond that the events table stores: still within 1800 s of
    # both (the stored times are whole milliseconds).
    halfway = join_a + (join_b - join_a) / 2
    halfway -= dt.timedelta(microseconds=halfway.microsecond % 1000)

    return [
        late_message(
            "late-crossing", crossing_user, crossing_ts + gap * 5 / 6, "https://late.example/next"
        ),
        late_message(
            "late-before", before_user, before_ts - gap * 2 / 3, "https://late.example/before"
        ),
        late_message("late-join", join_user, halfway, "https://late.example/join"),
        late_message(
            "late-new-user",
            "late-user",
            dt.datetime.combine(DAY, dt.time(7, 30), tzinfo=UTC),
            "https://late.example/old-hour",
        ),
    ]


def hours_touched(messages: list[dict]) -> set[str]:
    """The hour windows a late event may change: its own and those 30 minutes before and after."""
    hours = set()
    for m in messages:
        ts = dt.datetime.fromisoformat(m["event"]["timestamp"])
        for instant in (ts - dt.timedelta(minutes=30), ts, ts + dt.timedelta(minutes=30)):
            hours.add(
                instant.replace(minute=0, second=0, microsecond=0).strftime("%Y-%m-%dT%H:00:00Z")
            )
    return hours


def test_late_events_change_exactly_the_affected_windows(
    pipeline: Pipeline, es: Elasticsearch, cassandra: Session
) -> None:
    sent, _ = stream_a_day(pipeline)
    pipeline.run("aggregate")
    before = es_documents(es, pipeline.alias)
    late = late_messages(sent)
    expected_before = reference_documents(sent)
    pipeline.produce(late)
    sent += late
    pipeline.run("stream", "--available-now")
    assert_cassandra_matches(pipeline, cassandra, sent)

    pipeline.run("aggregate")

    expected = reference_documents(sent)
    # Besides their own documents, the late events change those of their neighbours across the
    # edges they cross: late-crossing the previous event's (23:00, an exit no more), late-before
    # the next event's (00:00, an entrance no more). A window the stream forgot to mark would keep
    # its old document and fail the comparison below.
    changed = {key for key, values in expected.items() if expected_before.get(key) != values}
    neighbours = {key[:2] for key in changed if not key[2].startswith("https://late.example/")}
    assert ("hour", f"{DAY.isoformat()}T23:00:00Z") in neighbours
    assert ("hour", f"{DAY.isoformat()}T00:00:00Z") in neighbours
    # The result equals a full recomputation, and windows no late event touches kept their
    # documents untouched (same computed_at).
    assert_same_metrics(published(es, pipeline.alias), expected)
    after = es_documents(es, pipeline.alias)
    touched = hours_touched(late)
    for doc_id, doc in before.items():
        if doc["window"] == "hour" and doc["window_start"] not in touched:
            assert after[doc_id] == doc
