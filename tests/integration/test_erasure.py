"""Erasure on real servers: a day streamed and published, then users erased.

One pipeline, in the order an operator meets it: two users erased (events, their quarantined
messages and their published clicks gone; untouched windows not rewritten); the whole day sent
again (they stay out, counted as erased); an unknown user (nothing changes); an erasure while
Elasticsearch is unreachable (Cassandra done, exit 1), then its rerun (published).
"""

from __future__ import annotations

import datetime as dt
import json
import socket
from pathlib import Path

from cassandra.cluster import Session
from elasticsearch import Elasticsearch

from clickstream_spark.erasure.request import touched_windows
from tests.integration.pipeline import (
    OpenPipeline,
    assert_same_metrics,
    cassandra_events,
    cassandra_quarantine,
    es_documents,
    expected_events,
    published,
    reference_documents,
)

DAY = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
ERASED = ("erase-a", "erase-b")
LATER = "erase-c"  # erased while Elasticsearch is unreachable
KEPT = "keep-me"


def at(hour: int, minute: int, second: int = 0, day: int = 0) -> dt.datetime:
    return DAY + dt.timedelta(days=day, hours=hour, minutes=minute, seconds=second)


def message(row_key: str, user_id: str, moment: dt.datetime, url: str, country: str) -> dict:
    """A valid event as the pipeline helpers record it."""
    event = {
        "row_key": row_key,
        "user_id": user_id,
        "timestamp": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "url": url,
        "country": country,
        "city": None,
        "browser": None,
        "os": None,
        "device": None,
    }
    return {
        "key": user_id,
        "value": json.dumps(event),
        "value_encoding": "utf8",
        "expected_reason": None,
        "event": event,
    }


def bad(value: str) -> dict:
    return {
        "key": "bad",
        "value": value,
        "value_encoding": "utf8",
        "expected_reason": "any",
        "event": None,
    }


def next_to_boundaries(url: str, country: str) -> list[dict]:
    """The users to erase, each with events next to hour and day boundaries, on a URL the
    generated traffic also visits and on one only they visit; a user who stays."""
    own = "https://shop.example.com/erase-only"
    return [
        message("ea-1", "erase-a", at(9, 59, 40), url, country),
        message("ea-2", "erase-a", at(10, 0, 20), own, country),
        message("ea-3", "erase-a", at(10, 25), url, country),
        message("ea-4", "erase-a", at(23, 55), url, country),
        message("eb-1", "erase-b", at(14, 30), url, country),
        message("eb-2", "erase-b", at(15, 0), own, "ZZ"),
        message("ec-1", LATER, at(17, 59, 59), url, country),
        message("ec-2", LATER, at(18, 10), url, country),
        message("k-1", KEPT, at(10, 0), url, country),
        message("k-2", KEPT, at(10, 10), own, country),
    ]


# Quarantined messages: two carry erase-a's id (one not even JSON), one only mentions it.
ATTRIBUTABLE = (
    '{"row_key": "qa-1", "user_id": "erase-a", "timestamp": "yesterday", "url": "/"}',
    '{"row_key": "qa-2", "user_id": "erase-a", "url": ',
)
NOT_THEIRS = ('{"row_key": "qk-1", "user_id": "keep-me", "timestamp": "soon", "url": "/erase-a"}',)


def without(sent: list[dict], users: tuple[str, ...]) -> list[dict]:
    return [m for m in sent if m["event"] is None or m["event"]["user_id"] not in users]


def window_key(document: dict) -> tuple[str, str]:
    return document["window"], document["window_start"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_erased_users_leave_no_event_message_or_click_and_stay_erased(
    open_pipeline: OpenPipeline, tmp_path: Path, run_id: str, cassandra: Session, es: Elasticsearch
) -> None:
    with open_pipeline(f"erase_{run_id}", tmp_path) as pipeline:
        keyspace = pipeline.keyspace
        sent = pipeline.generate("day", 1500, 29, "--day", DAY.date().isoformat())
        first = next(m["event"] for m in sent if m["event"] is not None)
        crafted = next_to_boundaries(first["url"], first["country"])
        crafted += [bad(value) for value in ATTRIBUTABLE + NOT_THEIRS]
        pipeline.produce(crafted)
        sent += crafted
        pipeline.run("stream", "--available-now")
        pipeline.run("aggregate")
        before = es_documents(es, pipeline.alias)
        quarantine_before = cassandra_quarantine(cassandra, keyspace)
        assert sum(quarantine_before.values()) == 3

        # -- two users erased -------------------------------------------------------------------
        output = pipeline.run("erase", "--user-id", ERASED[0], "--user-id", ERASED[1])

        assert "2 user(s), 2 with stored data, 0 unknown" in output
        assert "deleted 6 events and 2 quarantined messages" in output
        assert not any(user in output for user in ERASED)  # counts only, never who
        assert cassandra_events(cassandra, keyspace) == expected_events(without(sent, ERASED))
        gone = {raw for raw, _, _ in quarantine_before if raw in ATTRIBUTABLE}
        assert gone == set(ATTRIBUTABLE)
        assert cassandra_quarantine(cassandra, keyspace) == {
            key: n for key, n in quarantine_before.items() if key[0] not in gone
        }
        assert_same_metrics(
            published(es, pipeline.alias), reference_documents(without(sent, ERASED))
        )
        erased_times = [
            dt.datetime.fromisoformat(m["event"]["timestamp"]).replace(tzinfo=None)
            for m in crafted
            if m["event"] is not None and m["event"]["user_id"] in ERASED
        ]
        touched = {(k, f"{start:%Y-%m-%dT%H:%M:%SZ}") for k, start in touched_windows(erased_times)}
        after = es_documents(es, pipeline.alias)
        untouched = {i: d for i, d in before.items() if window_key(d) not in touched}
        assert untouched  # the day's other hours
        assert {i: after[i] for i in untouched} == untouched  # computed_at included
        log = {r.user_id: r for r in cassandra.execute(f"SELECT * FROM {keyspace}.erasure_log")}
        assert {u: (r.events_deleted, r.quarantine_deleted) for u, r in log.items()} == {
            "erase-a": (4, 2),
            "erase-b": (2, 0),
        }
        assert log["erase-a"].windows == 6  # hours 09, 10, 23 and the next day's 00; two days
        assert all(r.published_at is not None for r in log.values())

        # -- the whole day sent again: the erased users stay out --------------------------------
        pipeline.produce(sent)
        output = pipeline.run("stream", "--available-now")

        assert cassandra_events(cassandra, keyspace) == expected_events(without(sent, ERASED))
        lines = [line for line in output.splitlines() if " batch " in line and " erased " in line]
        # Their 6 events and their 2 quarantined messages, sent again, are kept out.
        assert sum(int(line.split(" erased ")[1].split()[0]) for line in lines) == 8
        assert cassandra_quarantine(cassandra, keyspace) == {
            key: 2 * n for key, n in quarantine_before.items() if key[0] not in gone
        }
        history = cassandra.execute(f"SELECT erased FROM {keyspace}.ingest_history")
        assert sum(r.erased or 0 for r in history) == 8

        # -- an unknown user: nothing changes ---------------------------------------------------
        published_before = es_documents(es, pipeline.alias)
        output = pipeline.run("erase", "--user-id", "nobody-at-all")

        assert "1 user(s), 0 with stored data, 1 unknown" in output
        assert "deleted 0 events and 0 quarantined messages; 0 windows" in output
        assert cassandra_events(cassandra, keyspace) == expected_events(without(sent, ERASED))
        assert es_documents(es, pipeline.alias) == published_before

        # -- Elasticsearch unreachable: Cassandra done, exit 1; the rerun publishes -------------
        dead = {"CLICKSTREAM_ELASTICSEARCH_PORT": str(free_port())}
        pipeline.job_env["erase"] = dead
        code, output = pipeline.attempt("erase", "--user-id", LATER)
        pipeline.job_env.pop("erase")

        errors = [line for line in output.splitlines() if line.startswith("erase.py: error:")]
        assert code == 1, output[-3000:]
        assert len(errors) == 1, output[-3000:]
        assert "deleted in Cassandra, but its windows are not re-published" in errors[0]
        erased_all = (*ERASED, LATER)
        assert cassandra_events(cassandra, keyspace) == expected_events(without(sent, erased_all))
        assert es_documents(es, pipeline.alias) == published_before

        output = pipeline.run("erase", "--user-id", LATER)

        assert "1 user(s), 0 with stored data, 1 unknown" in output
        assert_same_metrics(
            published(es, pipeline.alias), reference_documents(without(sent, erased_all))
        )
        rows = list(cassandra.execute(f"SELECT * FROM {keyspace}.erasure_log"))
        assert len(rows) == 5
        assert all(r.published_at is not None for r in rows)
