"""The bench run's own resources: a topic filled with generated messages, a keyspace per phase."""

from __future__ import annotations

import collections
import datetime as dt
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from bench.lib.console import say
from clickstream_spark.cassandra_schema import statements
from clickstream_spark.config import Config
from clickstream_spark.tools.generate import VALID, generate_messages

PERIOD_START = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
PERIOD_END = PERIOD_START + dt.timedelta(days=1)
TOPIC_PARTITIONS = 3


@dataclass
class Bench:
    """The run's resources: one topic, and a fresh keyspace for each timed phase.

    Every phase writes into a keyspace of its own, created just before it and (unless
    ``keep``) dropped right after it, outside the timings: a drop flushes or discards the
    keyspace's memtables, so no phase pays for flushing what an earlier one wrote.
    """

    config: Config
    run: str
    work: Path
    keep: bool
    session: Any = None
    created: list[str] = field(default_factory=list)  # keyspaces not dropped yet
    kept: list[str] = field(default_factory=list)

    @property
    def topic(self) -> str:
        return self.run

    def env(self, keyspace: str, checkpoint: Path) -> dict[str, str]:
        return {
            **os.environ,
            "CLICKSTREAM_KAFKA_TOPIC": self.topic,
            "CLICKSTREAM_CASSANDRA_KEYSPACE": keyspace,
            "CLICKSTREAM_STREAM_CHECKPOINT": str(checkpoint),
            "CLICKSTREAM_SPARK_EVENT_LOG_DIR": str(self.work / "spark-events"),
            # The generated day is fixed (PERIOD_START), so older than the default 365 days.
            "CLICKSTREAM_STREAM_MAX_EVENT_AGE_DAYS": "36500",
            "PYTHONUNBUFFERED": "1",
        }

    def connect(self) -> None:
        from cassandra.auth import PlainTextAuthProvider
        from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
        from cassandra.policies import DCAwareRoundRobinPolicy

        c = self.config.cassandra
        auth = PlainTextAuthProvider(c.username, c.password or "") if c.username else None
        profile = ExecutionProfile(
            load_balancing_policy=DCAwareRoundRobinPolicy(local_dc=c.local_dc), request_timeout=120
        )
        cluster = Cluster(
            c.hosts.split(","),
            port=c.port,
            auth_provider=auth,
            execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        )
        self.session = cluster.connect()

    def create_topic(self, settings: dict[str, str] | None = None) -> None:
        """The run's topic (``settings``: topic configs, e.g. ``message.timestamp.type``)."""
        from confluent_kafka.admin import AdminClient, NewTopic

        kafka = self.config.kafka
        admin = AdminClient({"bootstrap.servers": kafka.bootstrap_servers})
        topic = NewTopic(
            self.topic,
            num_partitions=TOPIC_PARTITIONS,
            replication_factor=kafka.replication_factor,
            config=settings or {},
        )
        for future in admin.create_topics([topic], operation_timeout=30).values():
            future.result()
        self.work.mkdir(parents=True, exist_ok=True)
        say(f"created topic {self.topic} ({TOPIC_PARTITIONS} partitions)")

    def new_keyspace(self, suffix: str) -> str:
        """Create ``<run>_<suffix>`` with the project's tables (conf/cassandra/*.cql)."""
        keyspace = f"{self.run}_{suffix}"
        self.created.append(keyspace)
        for statement in statements(keyspace):
            self.session.execute(statement, timeout=120)
        return keyspace

    def release_keyspace(self, keyspace: str) -> None:
        """Drop a phase's keyspace once it is measured (kept with ``--keep``)."""
        self.created.remove(keyspace)
        if self.keep:
            self.kept.append(keyspace)
            return
        try:
            self.session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=300)
        except Exception as exc:
            say(f"could not drop keyspace {keyspace}: {exc}")

    def close(self) -> None:
        """Remove what is left (everything but the kept keyspaces with ``--keep``)."""
        if self.session is not None:
            for keyspace in list(self.created):
                self.release_keyspace(keyspace)
            self.session.cluster.shutdown()
        if self.keep:
            say(f"kept: topic {self.topic}, keyspaces {', '.join(self.kept)}, {self.work}")
            return
        self._delete_topic()
        shutil.rmtree(self.work, ignore_errors=True)
        say(f"removed topic {self.topic}, the keyspaces {self.run}_* and {self.work}")

    def _delete_topic(self) -> None:
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self.config.kafka.bootstrap_servers})
        for name, future in admin.delete_topics([self.topic], operation_timeout=30).items():
            try:
                future.result()
            except Exception as exc:
                say(f"could not delete topic {name}: {exc}")


def produce(bench: Bench, events: int, bad_fraction: float, seed: int) -> collections.Counter:
    """Send the generated messages to the bench topic; returns the count of each kind."""
    from confluent_kafka import Producer

    failures: list[str] = []
    producer = Producer(
        {
            "bootstrap.servers": bench.config.kafka.bootstrap_servers,
            "linger.ms": 20,
            "batch.num.messages": 10_000,
            "compression.type": "lz4",
            "queue.buffering.max.messages": 1_000_000,
            "enable.idempotence": True,
            "delivery.report.only.error": True,
            "on_delivery": lambda err, _msg: failures.append(str(err)) if err else None,
        }
    )
    kinds: collections.Counter = collections.Counter()
    started = time.monotonic()
    messages = generate_messages(
        events, start=PERIOD_START, end=PERIOD_END, bad_fraction=bad_fraction, seed=seed
    )
    with tqdm(total=events, unit="ev", unit_scale=True, desc="produce", mininterval=2) as bar:
        for i, message in enumerate(messages, 1):
            while True:
                try:
                    producer.produce(bench.topic, value=message.value, key=message.key)
                    break
                except BufferError:
                    producer.poll(0.05)
            kinds[message.kind] += 1
            if i % 8192 == 0:
                producer.poll(0)
                bar.update(8192)
        bar.update(events % 8192)
    left = producer.flush(120)
    if left or failures:
        raise SystemExit(f"produce: {left} unacknowledged, failures {failures[:3]}")
    elapsed = time.monotonic() - started
    bad = events - kinds[VALID]
    say(f"produced {events} messages ({bad} bad) in {elapsed:.1f}s: {events / elapsed:,.0f}/s")
    return kinds
