"""What a user would write instead of the stream: a Kafka consumer inserting row by row.

Each message is classified with ``clickstream_spark.ingest.contract.classify`` and inserted (into
events or quarantine) with one prepared statement per message, synchronously or with a bounded
number of concurrent ``execute_async`` calls.
"""

from __future__ import annotations

import collections
import datetime as dt
import time
import uuid
from collections.abc import Iterator
from typing import Any

import xxhash
from tqdm import tqdm

from bench.lib.resources import Bench
from clickstream_spark.ingest.contract import classify
from clickstream_spark.schema import EVENT_BUCKETS
from clickstream_spark.tables import EVENTS_TABLE, QUARANTINE_TABLE

SPARK_XXHASH64_SEED = 42  # the seed of Spark's xxhash64 function
ASYNC_CONCURRENCY = 64  # in-flight inserts of the extra async variant

_INSERT_EVENT = (
    f"INSERT INTO {{ks}}.{EVENTS_TABLE} (hour, bucket, row_key, user_id, ts, url, country, city, "
    "browser, os, device) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_QUARANTINE = (
    f"INSERT INTO {{ks}}.{QUARANTINE_TABLE} (topic, partition, offset, raw_value, raw_encoding, "
    "reason, kafka_timestamp, ingested_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def spark_xxhash64(text: str) -> int:
    """Spark's ``xxhash64`` of a string: XXH64 of its UTF-8 bytes, as a signed 64-bit long."""
    digest = xxhash.xxh64_intdigest(text.encode("utf-8"), seed=SPARK_XXHASH64_SEED)
    return digest - (1 << 64) if digest >= 1 << 63 else digest


def bucket(row_key: str) -> int:
    """``pmod(xxhash64(row_key), EVENT_BUCKETS)``: the same bucket the Spark writer picks."""
    return spark_xxhash64(row_key) % EVENT_BUCKETS  # Python's % of a positive divisor is pmod


def run_plain(bench: Bench, keyspace: str, limit: int, concurrency: int) -> float:
    """Messages/s of the plain consumer; concurrency 1 is the synchronous one."""
    session = bench.session
    events = session.prepare(_INSERT_EVENT.format(ks=keyspace))
    quarantine = session.prepare(_INSERT_QUARANTINE.format(ks=keyspace))
    group = f"{bench.run}-plain-{concurrency}-{uuid.uuid4().hex[:6]}"
    pending: collections.deque = collections.deque()
    started: float | None = None
    desc = "plain sync" if concurrency == 1 else f"plain async x{concurrency}"
    with tqdm(total=limit, unit="ev", unit_scale=True, desc=desc, mininterval=2) as bar:
        for n, message in enumerate(_messages(bench, limit, group), 1):
            if started is None:
                started = time.perf_counter()  # after connecting and joining the group
            statement, values = _to_statement(message, events, quarantine)
            if concurrency == 1:
                session.execute(statement, values)
            else:
                if len(pending) >= concurrency:
                    pending.popleft().result()
                pending.append(session.execute_async(statement, values))
            if n % 1000 == 0:
                bar.update(1000)
        while pending:
            pending.popleft().result()
        bar.update(limit % 1000)
    assert started is not None
    return limit / (time.perf_counter() - started)


def _to_statement(message: Any, events: Any, quarantine: Any) -> tuple[Any, tuple]:
    """The prepared statement and values a plain consumer writes for one Kafka message."""
    verdict = classify(message.value())
    if verdict.valid:
        ts = verdict.timestamp.replace(tzinfo=None)  # naive UTC, as the driver wants
        values = (
            ts.replace(minute=0, second=0, microsecond=0),
            bucket(verdict.row_key),
            verdict.row_key,
            verdict.user_id,
            ts,
            verdict.url,
            verdict.country,
            verdict.city,
            verdict.browser,
            verdict.os,
            verdict.device,
        )
        return events, values
    _, kafka_ms = message.timestamp()
    values = (
        message.topic(),
        message.partition(),
        message.offset(),
        verdict.raw_value,
        verdict.raw_encoding,
        verdict.reason,
        dt.datetime.fromtimestamp(kafka_ms / 1000, dt.UTC).replace(tzinfo=None),
        dt.datetime.now(dt.UTC).replace(tzinfo=None),
    )
    return quarantine, values


def _messages(bench: Bench, limit: int, group: str) -> Iterator[Any]:
    """The first ``limit`` messages of the topic, for a new consumer group."""
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": bench.config.kafka.bootstrap_servers,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([bench.topic])
    try:
        seen, idle_since = 0, time.monotonic()
        while seen < limit:
            message = consumer.poll(1.0)
            if message is None:
                if time.monotonic() - idle_since > 60:
                    raise SystemExit(f"plain consumer: nothing more after {seen} messages")
                continue
            if message.error():
                raise SystemExit(f"plain consumer: {message.error()}")
            idle_since = time.monotonic()
            seen += 1
            yield message
    finally:
        consumer.close()
