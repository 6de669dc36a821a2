"""Helpers of the pipeline integration tests: an isolated pipeline on the real local stack.

Each test module gets its own topic, keyspace, Elasticsearch alias and checkpoint (all named
after the run), and runs the real jobs through ./spark-submit.sh as separate processes.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cassandra.cluster import Session
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from elasticsearch import Elasticsearch
from pyspark.sql.types import LongType

from clickstream_spark.aggregate.pandas_metrics import GROUP_COLUMNS, METRIC_COLUMNS
from clickstream_spark.cassandra_schema import statements
from clickstream_spark.config import PROJECT_ROOT, Config
from clickstream_spark.event_log import log_lines
from clickstream_spark.ingest.query import OBSERVATION_NAME
from clickstream_spark.schema import METRICS_SCHEMA
from clickstream_spark.tools.generate import generate_messages, message_record
from tests.reference import reference_metrics

JOB_TIMEOUT_S = 600
# The tests send fixed days of 2026: history, replayed as a backfill would, so the stream accepts
# event times a century old (never those from the future) whatever the day the tests run.
HISTORY_ENV = {"CLICKSTREAM_STREAM_MAX_EVENT_AGE_DAYS": "36500"}
# What the test producers may send: messages over the broker's default 1 MB reach the parser.
KAFKA_MAX_MESSAGE = 4 * 1024 * 1024
# How a query progress event is named in a Spark event log.
PROGRESS_EVENT = "org.apache.spark.sql.streaming.StreamingQueryListener$QueryProgressEvent"


@dataclass(frozen=True)
class BatchCounts:
    """The counts the stream publishes for one micro-batch (its query progress's observed
    metrics)."""

    batch_id: int
    rows: int
    valid: int
    quarantined: int


@dataclass(frozen=True)
class StreamRun:
    """A finished run of the stream job: its output, and its counts for each micro-batch."""

    output: str
    batches: list[BatchCounts]

    def total(self, count: str) -> int:
        """``rows``, ``valid`` or ``quarantined`` summed over the run's micro-batches."""
        return sum(getattr(batch, count) for batch in self.batches)


def published_counts(event_log: Path) -> list[BatchCounts]:
    """The stream's counts per micro-batch, from the query progress events of one application's
    Spark event log (what the History Server and any StreamingQueryListener see)."""
    batches = []
    for line in log_lines(event_log):  # the stream's log is rolled and compressed
        if PROGRESS_EVENT not in line:
            continue
        progress = json.loads(line)["progress"]
        observed = progress.get("observedMetrics", {}).get(OBSERVATION_NAME)
        if observed is None:  # a progress without data
            continue
        names = [field["name"] for field in observed["schema"]["fields"]]
        values = dict(zip(names, observed["values"], strict=True))
        batches.append(BatchCounts(progress["batchId"], **values))
    return batches


@dataclass
class Pipeline:
    topic: str
    keyspace: str
    alias: str
    checkpoint: Path
    bootstrap_servers: str
    work: Path
    env: dict[str, str] = field(default_factory=dict)
    master: str = "local[2]"  # or a cluster's URL, e.g. spark://127.0.0.1:7077
    # Variables of one program only ("generate", "stream", "aggregate"), over ``env``: each job's
    # own user on a secured stack.
    job_env: dict[str, dict[str, str]] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)  # of every program run to completion

    def env_of(self, program: str) -> dict[str, str]:
        return {**self.env, **self.job_env.get(program, {})}

    @property
    def event_log_dir(self) -> Path:
        return self.work / "spark-events"

    # -- producing ------------------------------------------------------------------------

    def generate(self, name: str, events: int, seed: int, *extra: str) -> list[dict]:
        """Run the real generator into the topic and return the messages it recorded."""
        output = self.work / f"{name}.jsonl"
        cmd = [
            sys.executable, "-m", "clickstream_spark.tools.generate",
            "--topic", self.topic, "--events", str(events), "--seed", str(seed),
            "--output", str(output), "--no-progress", *extra,
        ]  # fmt: skip
        done = subprocess.run(
            cmd, cwd=PROJECT_ROOT, env=self.env_of("generate"), capture_output=True, text=True
        )
        self.outputs.append(done.stdout + done.stderr)
        assert done.returncode == 0, f"generator exited {done.returncode}:\n{done.stderr[-3000:]}"
        return read_messages(output)

    def send(
        self,
        messages: Iterable[tuple[str | bytes | None, bytes | None]],
        partition: int = -1,
        flush_s: float = 60,
    ) -> list[tuple[int, int]]:
        """Send (key, value) pairs in order (value None: a tombstone), to ``partition`` or by
        key (-1); the (partition, offset) each one was stored at, in the same order.

        Idempotent: a retried request can neither store a message twice (each bad message is
        expected in quarantine once per send) nor land behind later ones.
        """
        producer = Producer(
            {
                "bootstrap.servers": self.bootstrap_servers,
                "message.max.bytes": KAFKA_MAX_MESSAGE,
                "linger.ms": 20,
                "enable.idempotence": True,
            }
        )
        stored: dict[int, tuple[int, int]] = {}
        failures: list[str] = []

        def delivered(i: int, err: object, msg: object) -> None:
            if err is not None:
                failures.append(f"message {i}: {err}")
            else:
                stored[i] = (msg.partition(), msg.offset())  # type: ignore[attr-defined]

        sent = 0
        for i, (key, value) in enumerate(messages):
            producer.produce(
                self.topic,
                key=key,
                value=value,
                partition=partition,
                on_delivery=lambda err, msg, i=i: delivered(i, err, msg),
            )
            producer.poll(0)
            sent = i + 1
        assert producer.flush(flush_s) == 0
        assert not failures, failures[:3]
        assert len(stored) == sent
        return [stored[i] for i in range(sent)]

    def produce(self, messages: list[dict]) -> None:
        """Send recorded messages (again)."""
        self.send(((m["key"], raw_value(m)) for m in messages), flush_s=30)

    # -- running the jobs ---------------------------------------------------------------

    def command(self, job: str, *args: str, conf: dict[str, str] | None = None) -> list[str]:
        """The job's spark-submit command; ``conf`` adds Spark settings (the last one wins)."""
        extra = [
            item for key, value in (conf or {}).items() for item in ("--conf", f"{key}={value}")
        ]
        return [
            "./spark-submit.sh", "--master", self.master, "--conf", "spark.ui.enabled=false",
            *extra, f"jobs/{job}.py", *args,
        ]  # fmt: skip

    def attempt(self, job: str, *args: str) -> tuple[int, str]:
        """Run a job to completion: its exit code and output (Spark merges the Python driver's
        stderr into the job's stdout; both are here)."""
        done = subprocess.run(
            self.command(job, *args),
            cwd=PROJECT_ROOT,
            env=self.env_of(job),
            capture_output=True,
            text=True,
            timeout=JOB_TIMEOUT_S,
            check=False,
        )
        self.outputs.append(done.stdout + done.stderr)
        return done.returncode, done.stdout + done.stderr

    def run(self, job: str, *args: str) -> str:
        """Run a job to completion; its output, or a failure with the output's tail."""
        code, output = self.attempt(job, *args)
        assert code == 0, f"{job} exited {code}:\n{output[-4000:]}"
        return output

    def run_stream(self, *args: str) -> StreamRun:
        """Run the stream job to completion: its output and the counts it published."""
        before = set(self.event_logs())
        output = self.run("stream", *args)
        (event_log,) = set(self.event_logs()) - before
        return StreamRun(output, published_counts(event_log))

    def event_logs(self) -> list[Path]:
        """The Spark event logs of the pipeline's applications, finished or not."""
        return sorted(self.event_log_dir.iterdir()) if self.event_log_dir.exists() else []

    def start(
        self,
        job: str,
        *args: str,
        log_name: str | None = None,
        log_path: Path | None = None,
        env: dict[str, str] | None = None,
        conf: dict[str, str] | None = None,
    ) -> subprocess.Popen:
        """Start a job in its own process group (so that it can be killed whole), with ``env``
        added to the pipeline's environment and ``conf`` to Spark's; its output goes to
        ``log_path``, or ``work/<log_name or job-time>.log``."""
        name = log_name or f"{job}-{time.monotonic_ns()}"
        log = open(log_path or self.work / f"{name}.log", "w")  # noqa: SIM115
        return subprocess.Popen(
            self.command(job, *args, conf=conf),
            cwd=PROJECT_ROOT,
            env={**self.env_of(job), **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def committed_batches(self) -> int:
        commits = self.checkpoint / "commits"
        return len([p for p in commits.iterdir() if p.name.isdigit()]) if commits.exists() else 0

    def planned_batches(self) -> int:
        """Micro-batches whose offsets were written: one more than committed while one runs."""
        offsets = self.checkpoint / "offsets"
        return len([p for p in offsets.iterdir() if p.name.isdigit()]) if offsets.exists() else 0

    def wait_for_commits(self, job: subprocess.Popen, count: int, timeout_s: float = 300) -> None:
        """Wait until the running ``job`` has committed ``count`` micro-batches in all."""
        deadline = time.monotonic() + timeout_s
        while self.committed_batches() < count:
            assert job.poll() is None, f"the stream exited ({job.returncode}) before the fault"
            assert time.monotonic() < deadline, (
                f"{count} micro-batches not committed in {timeout_s} s"
            )
            time.sleep(0.2)


@contextmanager
def isolated_pipeline(
    name: str,
    work: Path,
    config: Config,
    cassandra: Session,
    kafka_admin: AdminClient,
    es: Elasticsearch,
    *,
    master: str = "local[2]",
    topic_config: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[Pipeline]:
    """A pipeline with its own topic, keyspace, alias, checkpoint and event logs; dropped after.

    ``env`` adds to (or replaces) the jobs' environment, e.g. other event-time limits than
    :data:`HISTORY_ENV`.
    """
    p = Pipeline(
        topic=f"clickstream_{name}",
        keyspace=f"clickstream_{name}",
        alias=f"{config.elasticsearch.index}_{name}",
        checkpoint=work / "checkpoint",
        bootstrap_servers=config.kafka.bootstrap_servers,
        work=work,
        master=master,
    )
    p.env = {
        **os.environ,
        "CLICKSTREAM_KAFKA_TOPIC": p.topic,
        "CLICKSTREAM_CASSANDRA_KEYSPACE": p.keyspace,
        "CLICKSTREAM_ELASTICSEARCH_INDEX": p.alias,
        "CLICKSTREAM_STREAM_CHECKPOINT": str(p.checkpoint),
        "CLICKSTREAM_SPARK_EVENT_LOG_DIR": str(p.event_log_dir),
        "CLICKSTREAM_AGGREGATE_RUN_SUMMARY_FILE": str(work / "aggregate-runs.jsonl"),
        **HISTORY_ENV,
        **(env or {}),
    }
    for statement in statements(p.keyspace, replication=config.cassandra.replication_factors):
        cassandra.execute(statement, timeout=60)
    topic = NewTopic(p.topic, num_partitions=3, replication_factor=1, config=topic_config or {})
    kafka_admin.create_topics([topic])[p.topic].result(timeout=30)
    try:
        yield p
    finally:
        kafka_admin.delete_topics([p.topic])[p.topic].result(timeout=30)
        cassandra.execute(f"DROP KEYSPACE IF EXISTS {p.keyspace}", timeout=60)
        created = es.indices.get(index=f"{p.alias}-*", expand_wildcards="open,closed")
        if created:  # deleting by wildcard is refused (action.destructive_requires_name)
            es.indices.delete(index=",".join(created))


# isolated_pipeline bound to a test session's servers (the `open_pipeline` fixture).
OpenPipeline = Callable[..., AbstractContextManager[Pipeline]]


def kill_hard(process: subprocess.Popen) -> None:
    """SIGKILL the whole process group: the driver JVM and its Python workers."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def read_messages(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


def raw_value(message: dict) -> bytes | None:
    encoding, value = message["value_encoding"], message["value"]
    if encoding == "none" or value is None:
        return None
    if encoding == "base64":
        return base64.b64decode(value)
    return value.encode("utf-8")


def quarantine_value(message: dict) -> tuple[str | None, str]:
    """(raw_value, raw_encoding) as the quarantine table must hold them."""
    raw = raw_value(message)
    if raw is None:
        return None, "none"
    try:
        return raw.decode("utf-8"), "utf8"
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii"), "base64"


def expected_events(messages: list[dict]) -> dict[str, tuple]:
    """row_key -> the row clickstream.events must hold, from the generator's own record."""
    rows = {}
    for message in messages:
        event = message["event"]
        if event is None:
            continue
        ts = dt.datetime.fromisoformat(event["timestamp"]).astimezone(dt.UTC).replace(tzinfo=None)
        rows[event["row_key"]] = (
            event["user_id"],
            ts.replace(microsecond=ts.microsecond // 1000 * 1000),  # Cassandra keeps milliseconds
            event["url"],
            *(event[f] for f in ("country", "city", "browser", "os", "device")),
        )
    return rows


def expected_quarantine(messages: list[dict]) -> Counter:
    """Multiset of (raw_value, raw_encoding, reason) of the bad messages."""
    return Counter(
        (*quarantine_value(m), m["expected_reason"]) for m in messages if m["event"] is None
    )


def cassandra_events(session: Session, keyspace: str) -> dict[str, tuple]:
    columns = "row_key, user_id, ts, url, country, city, browser, os, device"
    rows = session.execute(f"SELECT {columns} FROM {keyspace}.events")
    result = {}
    for r in rows:
        assert r.row_key not in result, f"row_key {r.row_key} stored twice"
        result[r.row_key] = (r.user_id, r.ts, r.url, r.country, r.city, r.browser, r.os, r.device)
    return result


def cassandra_quarantine(session: Session, keyspace: str) -> Counter:
    rows = session.execute(f"SELECT raw_value, raw_encoding, reason FROM {keyspace}.quarantine")
    return Counter((r.raw_value, r.raw_encoding, r.reason) for r in rows)


def es_documents(es: Elasticsearch, alias: str) -> dict[str, dict]:
    """_id -> _source of every document behind the alias."""
    es.indices.refresh(index=alias)
    docs: dict[str, dict] = {}
    response = es.search(index=alias, size=5000, scroll="1m", sort=["_doc"])
    try:
        while response["hits"]["hits"]:
            for hit in response["hits"]["hits"]:
                docs[hit["_id"]] = hit["_source"]
            response = es.scroll(scroll_id=response["_scroll_id"], scroll="1m")
    finally:
        es.clear_scroll(scroll_id=response["_scroll_id"])
    return docs


def assert_cassandra_matches(pipeline: Pipeline, cassandra: Session, sent: list[dict]) -> None:
    """Every message sent is in Cassandra exactly once: its event, or its quarantine row."""
    assert cassandra_events(cassandra, pipeline.keyspace) == expected_events(sent)
    assert cassandra_quarantine(cassandra, pipeline.keyspace) == expected_quarantine(sent)


# -- fault tests: counting and a steady producer ------------------------------------------------


def wait_for_lease_end(session: Session, keyspace: str, timeout_s: float = 600) -> None:
    """Wait until no run holds the aggregation lease (a killed run's ends with its TTL)."""
    deadline = time.monotonic() + timeout_s
    while session.execute(f"SELECT run_id FROM {keyspace}.aggregate_lease").one() is not None:
        assert time.monotonic() < deadline, f"the aggregation lease still held after {timeout_s} s"
        time.sleep(0.5)


def stored_count(session: Session, keyspace: str) -> int:
    """Messages the stream has written so far: events plus quarantined messages."""
    count = 0
    for table in ("events", "quarantine"):
        count += session.execute(f"SELECT count(*) FROM {keyspace}.{table}", timeout=120).one()[0]
    return count


def topic_size(bootstrap_servers: str, topic: str, partitions: int = 3) -> int:
    """Messages in the topic (the sum of its partitions' end offsets): what Kafka acknowledged."""
    consumer = Consumer({"bootstrap.servers": bootstrap_servers, "group.id": "fault-tests-probe"})
    try:
        return sum(
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
            for p in range(partitions)
        )
    finally:
        consumer.close()


class SteadyProducer:
    """Generated events sent at a steady rate from a thread until :meth:`stop`.

    The record of what was sent is taken in the thread right after each ``produce``, so it is
    exact whenever the producer is stopped (a generator process killed by a signal could be
    stopped between sending a message and writing it down). Idempotent with ``acks=all``, it rides
    through a broker restart without losing or doubling a message.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        *,
        seed: int,
        rate: float,
        day: dt.date,
        bad_fraction: float = 0.02,
        limit: int = 200_000,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.seed, self.rate, self.day = seed, rate, day
        self.bad_fraction, self.limit = bad_fraction, limit
        self.sent: list[dict] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="steady-producer", daemon=True)
        self._error: BaseException | None = None

    def __enter__(self) -> SteadyProducer:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=300)

    def _run(self) -> None:
        try:
            self._send()
        except BaseException as exc:  # reported by stop()
            self._error = exc

    def _send(self) -> None:
        producer = Producer(
            {
                "bootstrap.servers": self.bootstrap_servers,
                "linger.ms": 20,
                "enable.idempotence": True,
                "acks": "all",
                # Longer than any broker restart a test makes: a message is retried, not lost.
                "message.timeout.ms": 300_000,
                "delivery.report.only.error": True,
                "on_delivery": lambda err, _msg: self.failures.append(str(err)) if err else None,
                # Refused connections while a test has the broker down are expected, not news.
                "log_level": 2,
            }
        )
        start = dt.datetime.combine(self.day, dt.time(), dt.UTC)
        messages = generate_messages(
            self.limit,
            start=start,
            end=start + dt.timedelta(days=1),
            bad_fraction=self.bad_fraction,
            seed=self.seed,
        )
        began = time.monotonic()
        for seq, message in enumerate(messages):
            if self._stop.is_set():
                break
            while True:
                try:
                    producer.produce(self.topic, key=message.key, value=message.value)
                    break
                except BufferError:  # local queue full (broker away): let it drain
                    producer.poll(0.1)
            self.sent.append(message_record(seq, message))
            if seq % 20 == 0:
                producer.poll(0)
                ahead = (seq + 1) / self.rate - (time.monotonic() - began)
                if ahead > 0:
                    self._stop.wait(ahead)
        unacknowledged = producer.flush(300)
        if unacknowledged:
            self.failures.append(f"{unacknowledged} messages never acknowledged")

    def stop(self) -> list[dict]:
        """Stop sending, wait for every message to be acknowledged; what was sent, in order."""
        self._stop.set()
        self._thread.join(timeout=330)
        assert not self._thread.is_alive(), "the producer did not finish flushing in 330 s"
        if self._error is not None:
            raise self._error
        assert not self.failures, self.failures[:3]
        return self.sent


def reference_documents(sent: list[dict]) -> dict[tuple, tuple]:
    """(window, window_start, url, country) -> metrics, from the generator's own record."""
    events = [
        {
            **m["event"],
            "timestamp": dt.datetime.fromisoformat(m["event"]["timestamp"]).astimezone(dt.UTC),
        }
        for m in sent
        if m["event"] is not None
    ]
    unique = {e["row_key"]: e for e in events}.values()  # sent twice, stored once
    expected = {}
    for kind in ("hour", "day"):
        starts = {ev["timestamp"] for ev in unique}
        for row in reference_metrics(unique, kind, starts):
            window, start, url, country, *values = row
            expected[(window, start.strftime("%Y-%m-%dT%H:%M:%SZ"), url, country)] = tuple(values)
    return expected


# What identifies a published document; its metrics are METRIC_COLUMNS.
DOCUMENT_KEY = ("window", *GROUP_COLUMNS)


def published(es: Elasticsearch, alias: str) -> dict[tuple, tuple]:
    """(window, window_start, url, country) -> metrics, of every document behind the alias."""
    result = {}
    for doc in es_documents(es, alias).values():
        key = tuple(doc[name] for name in DOCUMENT_KEY)
        assert key not in result, f"two documents for {key}"
        result[key] = tuple(doc[name] for name in METRIC_COLUMNS)
    return result


def assert_same_metrics(got: dict[tuple, tuple], expected: dict[tuple, tuple]) -> None:
    """Same documents: counts (long fields) and nulls exact, doubles within 1e-9."""
    assert got.keys() == expected.keys()
    types = {f.name: f.dataType for f in METRICS_SCHEMA.fields}
    for key, values in expected.items():
        for name, value, want in zip(METRIC_COLUMNS, got[key], values, strict=True):
            if want is None or isinstance(types[name], LongType):
                assert value == want, (key, name, value, want)
            else:
                assert value == pytest.approx(want, rel=1e-9, abs=1e-9), (key, name, value, want)
