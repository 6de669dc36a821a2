"""Faults during an aggregation run, with real processes: what readers of the alias see, what the
operator reads, and what the next run publishes.

1. Elasticsearch is SIGKILLed while the job writes the new concrete index: the job exits 1 with
   one line naming Elasticsearch, within a bounded time; once Elasticsearch is back, the alias
   serves exactly the documents it served before; the rerun publishes exactly the new result and
   deletes the half-written index.
2. The job itself is SIGKILLed (its whole process group) while it writes: the alias serves exactly
   the previous documents; the next run publishes exactly the new result and no index survives
   outside the alias.

Each fault starts from a complete published result, sends new events into the same windows,
streams them, and breaks the aggregation that would publish them. Each test has its own pipeline
(topic, keyspace, alias, checkpoint) and first result, and restores what it broke: each runs
alone and in any order.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen

import pytest
from elasticsearch import Elasticsearch

from clickstream_spark.aggregate.publish import Publisher
from clickstream_spark.config import load_config
from tests.integration.pipeline import (
    Pipeline,
    assert_same_metrics,
    es_documents,
    kill_hard,
    published,
    reference_documents,
)
from tests.integration.servers import kill_server, restored, start_server

pytestmark = pytest.mark.slow

DAY = dt.date(2026, 4, 18)
# 01:00-23:00 UTC: no event's 30-minute look-back reaches another day, so every run touches
# exactly two shelves (the hour windows of DAY, the day windows of its month).
PERIOD = ("--start", f"{DAY}T01:00:00Z", "--end", f"{DAY}T23:00:00Z")
FIRST_EVENTS = 3000
MORE_EVENTS = 1000
# Small bulks stretch the write of a few thousand documents over hundreds of requests (seconds
# even on a fast machine), so that the test catches the new index half-written: it kills once
# KILL_AFTER_DOCUMENTS are in. Only the runs that are broken use them, and they die early on.
FAULT_BULK_ENTRIES = "5"
KILL_AFTER_DOCUMENTS = 100
WRITE_TIMEOUT_S = 300  # until the new index holds documents (the job starts Spark first)
FAIL_TIMEOUT_S = 180  # from Elasticsearch's death to the job's exit
HOUR_SHELF = f"hour-{DAY:%Y.%m.%d}"
SHELVES = {HOUR_SHELF, f"day-{DAY:%Y.%m}"}


@dataclass
class Outcome:
    """What one fault did, printed in the test output for the issue's notes."""

    fault: str
    previous_documents: int = 0
    new_events: int = 0
    written_when_killed: int = 0  # indexed into the new index at the kill
    left_in_new_index: int = 0  # searchable in it afterwards (in-flight bulks included)
    exit_code: int | None = None
    message: str = ""
    seconds_to_fail: float | None = None
    documents_after_fault: int = 0
    documents_after_rerun: int = 0
    phases_s: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.phases_s[phase] = round(time.monotonic() - started, 1)

    def show(self, stage: str) -> None:
        print(f"\n--- fault: {self.fault} ({stage})")
        for name, value in vars(self).items():
            if name != "fault":
                print(f"    {name}: {value}")


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def first_result(pipeline: Pipeline, es: Elasticsearch) -> list[dict]:
    """The messages of a first complete result: generated, streamed and published."""
    started = time.monotonic()
    messages = pipeline.generate("first", FIRST_EVENTS, 41, *PERIOD)
    pipeline.run("stream", "--available-now")
    pipeline.run("aggregate")
    first = published(es, pipeline.alias)
    assert_same_metrics(first, reference_documents(messages))
    print(
        f"\n--- first result: {len(messages)} events, {len(first)} documents published "
        f"in {time.monotonic() - started:.1f}s"
    )
    return messages


# --- helpers -------------------------------------------------------------------------------------


def served(es: Elasticsearch, alias: str) -> dict[str, str]:
    """shelf -> concrete index behind the alias (read as the job reads it)."""
    config = dataclasses.replace(load_config().elasticsearch, index=alias)
    return Publisher(es, config).served_indices()


def all_indices(es: Elasticsearch, alias: str) -> set[str]:
    return set(es.indices.get(index=f"{alias}-*", expand_wildcards="open,closed"))


def start_with_small_bulks(pipeline: Pipeline, log: Path) -> Popen:
    """Start the aggregation with FAULT_BULK_ENTRIES documents per bulk request."""
    small_bulks = {"CLICKSTREAM_ELASTICSEARCH_BATCH_SIZE_ENTRIES": FAULT_BULK_ENTRIES}
    return pipeline.start("aggregate", log_path=log, env=small_bulks)


@dataclass(frozen=True)
class Before:
    """What the alias served before the fault, and every message sent by then."""

    documents: dict[str, dict]
    served: dict[str, str]  # shelf -> concrete index
    sent: list[dict]


def send_more(
    pipeline: Pipeline, es: Elasticsearch, first: list[dict], seed: int, outcome: Outcome
) -> Before:
    """What the alias serves, then new events in the same windows, streamed into Cassandra (not
    yet aggregated)."""
    documents, shelves = es_documents(es, pipeline.alias), served(es, pipeline.alias)
    assert set(shelves) == SHELVES
    outcome.previous_documents = len(documents)
    with outcome.timed("generate and stream"):
        more = pipeline.generate("more", MORE_EVENTS, seed, *PERIOD)
        pipeline.run("stream", "--available-now")
    outcome.new_events = len(more)
    return Before(documents, shelves, [*first, *more])


def wait_for_half_written_index(
    es: Elasticsearch, alias: str, before: dict[str, str], job: Popen
) -> tuple[str, int]:
    """The job's new index once it holds KILL_AFTER_DOCUMENTS, while the alias serves ``before``.

    Counted from indexing stats, not searches: they include documents not refreshed yet.
    """
    deadline = time.monotonic() + WRITE_TIMEOUT_S
    old = set(before.values())
    while True:
        assert job.poll() is None, f"the aggregation exited ({job.returncode}) before the kill"
        assert time.monotonic() < deadline, f"no new index with documents in {WRITE_TIMEOUT_S} s"
        stats = es.indices.stats(index=f"{alias}-*", metric="indexing")["indices"]
        for index, numbers in stats.items():
            written = numbers["primaries"]["indexing"]["index_total"]
            if index not in old and written >= KILL_AFTER_DOCUMENTS:
                assert served(es, alias) == before, "swapped before the kill: write too short"
                return index, written
        time.sleep(0.05)


def document_count(es: Elasticsearch, index: str) -> int:
    es.indices.refresh(index=index)
    return int(es.count(index=index)["count"])


def not_published_line(alias: str) -> str:
    """The one line the job prints when Elasticsearch dies under it (a regular expression)."""
    return (
        r"aggregate\.py: error: \d+ hour window\(s\) not published "
        rf"\(the alias {re.escape(alias)} still serves the previous result; "
        r"rerun to publish them\): "
        r"Elasticsearch is unreachable: \S.*"
    )


def error_lines(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines() if line.startswith("aggregate.py:")]


def look_after_fault(
    pipeline: Pipeline, es: Elasticsearch, half_written: str, outcome: Outcome
) -> dict[str, dict]:
    """The documents behind the alias after the fault; what the new index holds goes into
    ``outcome``, which is shown."""
    after_fault = es_documents(es, pipeline.alias)
    outcome.documents_after_fault = len(after_fault)
    outcome.left_in_new_index = document_count(es, half_written)
    outcome.show("after the fault")
    return after_fault


def assert_alias_unchanged(
    pipeline: Pipeline,
    es: Elasticsearch,
    after_fault: dict[str, dict],
    before: Before,
    half_written: str,
) -> None:
    """Readers see exactly the previous result; the half-written index is outside the alias."""
    assert after_fault == before.documents  # every field of every document, computed_at included
    assert served(es, pipeline.alias) == before.served
    assert all_indices(es, pipeline.alias) == set(before.served.values()) | {half_written}


def assert_rerun_publishes_everything(
    pipeline: Pipeline, es: Elasticsearch, before: Before, half_written: str, outcome: Outcome
) -> None:
    """The next run: exactly the reference, a new index per shelf, nothing outside the alias."""
    with outcome.timed("rerun"):
        output = pipeline.run("aggregate")
    outcome.documents_after_rerun = len(es_documents(es, pipeline.alias))
    outcome.show("after the rerun")
    assert_same_metrics(published(es, pipeline.alias), reference_documents(before.sent))
    after = served(es, pipeline.alias)
    assert set(after) == SHELVES
    assert all(after[shelf] != before.served[shelf] for shelf in SHELVES)
    assert all_indices(es, pipeline.alias) == set(after.values())  # the orphan is gone
    assert f"left by an interrupted run: ['{half_written}']" in output
    assert 0 < outcome.left_in_new_index < document_count(es, after[HOUR_SHELF])


# --- the faults ----------------------------------------------------------------------------------


def test_elasticsearch_killed_while_the_aggregation_writes(
    pipeline: Pipeline, es: Elasticsearch, first_result: list[dict]
) -> None:
    outcome = Outcome("Elasticsearch SIGKILLed during the aggregation's write")
    before = send_more(pipeline, es, first_result, 42, outcome)

    log = pipeline.work / "aggregate-es-killed.log"
    with restored("elasticsearch"):
        job = start_with_small_bulks(pipeline, log)
        try:
            with outcome.timed("aggregation until the kill"):
                half_written, outcome.written_when_killed = wait_for_half_written_index(
                    es, pipeline.alias, before.served, job
                )
            killed = kill_server("elasticsearch")
            outcome.exit_code = job.wait(timeout=FAIL_TIMEOUT_S)
            outcome.seconds_to_fail = round(time.monotonic() - killed.at, 1)
        finally:
            if job.poll() is None:
                kill_hard(job)
        lines = error_lines(log)
        outcome.message = lines[-1] if lines else ""
        with outcome.timed("stackctl up elasticsearch"):
            start_server("elasticsearch")

    # The job could not delete its index while Elasticsearch was down: it is still there, with
    # what Elasticsearch had acknowledged, and not behind the alias.
    after_fault = look_after_fault(pipeline, es, half_written, outcome)
    assert outcome.exit_code == 1
    assert len(lines) == 1, lines
    assert re.fullmatch(not_published_line(pipeline.alias), outcome.message), outcome.message
    assert outcome.seconds_to_fail < FAIL_TIMEOUT_S
    assert_alias_unchanged(pipeline, es, after_fault, before, half_written)

    assert_rerun_publishes_everything(pipeline, es, before, half_written, outcome)


def test_aggregation_killed_while_it_writes(
    pipeline: Pipeline, es: Elasticsearch, first_result: list[dict]
) -> None:
    outcome = Outcome("aggregation job SIGKILLed (whole process group) during its write")
    before = send_more(pipeline, es, first_result, 43, outcome)

    with outcome.timed("aggregation until the kill"):
        job = start_with_small_bulks(pipeline, pipeline.work / "aggregate-killed.log")
        try:
            half_written, outcome.written_when_killed = wait_for_half_written_index(
                es, pipeline.alias, before.served, job
            )
        finally:
            kill_hard(job)
    outcome.exit_code = job.returncode

    after_fault = look_after_fault(pipeline, es, half_written, outcome)
    assert outcome.exit_code == -9
    # Acknowledged documents stay: what was indexed at the kill, and the bulks then in flight.
    assert KILL_AFTER_DOCUMENTS <= outcome.written_when_killed <= outcome.left_in_new_index
    assert_alias_unchanged(pipeline, es, after_fault, before, half_written)

    assert_rerun_publishes_everything(pipeline, es, before, half_written, outcome)
