"""Poison pills: events a stream could accept but a later job could never process.

A url or country past Elasticsearch's 32,766-byte keyword limit failed every aggregation of its
windows; a timestamp decades away opened windows (and indices) without end. The contract now
bounds every string field and accepts event times only near the moment the stream reads them:
such events are quarantined with their reason, and the next aggregation publishes the rest.
One pipeline, one stream run, one aggregation run.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from cassandra.cluster import Session
from elasticsearch import Elasticsearch

from clickstream_spark.ingest.contract import MAX_FIELD_BYTES, MAX_URL_BYTES
from tests.integration.pipeline import (
    OpenPipeline,
    assert_cassandra_matches,
    assert_same_metrics,
    published,
    reference_documents,
)

UTC = dt.UTC
# The defaults of conf/clickstream.toml, which the test pipelines otherwise widen for history.
DEFAULT_EVENT_TIMES = {
    "CLICKSTREAM_STREAM_MAX_EVENT_AGE_DAYS": "365",
    "CLICKSTREAM_STREAM_MAX_EVENT_LEAD_HOURS": "24",
}


def iso(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def pill(row_key: str, reason: str | None, at: dt.datetime | int, **fields: str) -> dict:
    """A message record as the pipeline helpers take it; ``reason`` None: a valid event."""
    event = {
        "row_key": row_key,
        "user_id": "pill-user",
        "timestamp": iso(at) if isinstance(at, dt.datetime) else at,
        "url": "https://shop.example.com/pill",
        "country": "NL",
        "city": None,
        "browser": None,
        "os": None,
        "device": None,
        **fields,
    }
    return {
        "key": "pill-user",
        "value": json.dumps(event, ensure_ascii=False),
        "value_encoding": "utf8",
        "expected_reason": reason,
        "event": event if reason is None else None,
    }


def sized(prefix: str, size: int) -> str:
    """``prefix`` filled with 2-byte characters (and one ASCII) to exactly ``size`` UTF-8 bytes."""
    rest = size - len(prefix.encode())
    return prefix + "é" * (rest // 2) + "x" * (rest % 2)


def test_oversized_fields_and_far_event_times_are_quarantined_and_the_rest_is_published(
    open_pipeline: OpenPipeline, tmp_path: Path, run_id: str, cassandra: Session, es: Elasticsearch
) -> None:
    now = dt.datetime.now(UTC)
    start = (now - dt.timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)
    in_range = start + dt.timedelta(minutes=30)
    pills = [
        pill("url-at-bound", None, in_range, url=sized("https://shop.example.com/", MAX_URL_BYTES)),
        pill("url-over", "too_long:url", in_range, url=sized("/", MAX_URL_BYTES + 1)),
        pill("url-past-es", "too_long:url", in_range, url="/" + "a" * 40_000),  # > 32,766 bytes
        pill("country-over", "too_long:country", in_range, country="N" * (MAX_FIELD_BYTES + 1)),
        pill("user-over", "too_long:user_id", in_range, user_id="u" * (MAX_FIELD_BYTES + 1)),
        pill("ahead", "out_of_range:timestamp", now + dt.timedelta(days=2)),
        pill("ahead-ms", "out_of_range:timestamp", int((now.timestamp() + 30 * 86400) * 1000)),
        pill("old", "out_of_range:timestamp", now - dt.timedelta(days=400)),
        pill("broken-clock", "out_of_range:timestamp", dt.datetime(1990, 1, 1, tzinfo=UTC)),
    ]
    with open_pipeline(f"poison_{run_id}", tmp_path, env=DEFAULT_EVENT_TIMES) as pipeline:
        period = ("--start", iso(start), "--end", iso(start + dt.timedelta(hours=2)))
        sent = pipeline.generate("traffic", 500, 23, *period)
        pipeline.produce(pills)
        sent += pills

        output = pipeline.run("stream", "--available-now")

        assert_cassandra_matches(pipeline, cassandra, sent)  # each pill under its reason
        batches = [line for line in output.splitlines() if " batch " in line and " rows " in line]
        quarantined = sum(int(line.split(" quarantined ")[1].split()[0]) for line in batches)
        assert quarantined == sum(p["event"] is None for p in pills)

        output = pipeline.run("aggregate")

        assert f"published to Elasticsearch alias {pipeline.alias}" in output
        documents = published(es, pipeline.alias)
        assert_same_metrics(documents, reference_documents(sent))
        assert pills[0]["event"]["url"] in {url for _, _, url, _ in documents}
