"""Sending messages: to Kafka through confluent-kafka and/or to a JSON-lines file, paced."""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TextIO

from clickstream_spark.access import AccessProblem, classify, describe
from clickstream_spark.config import Config
from clickstream_spark.kafka_clients import librdkafka_config
from clickstream_spark.tools.generate.messages import Message, message_record

# librdkafka retries these for ever; a producer that cannot authenticate or trust the brokers
# stops at once instead of waiting for every message to time out.
_ACCESS_ERRORS = ("_AUTHENTICATION", "_SSL", "SASL_AUTHENTICATION_FAILED")


@dataclass
class Stats:
    sent: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)  # the first few, for the summary
    by_kind: Counter[str] = field(default_factory=Counter)
    first_ts: int | None = None
    last_ts: int | None = None

    def delivery_failed(self, error: object) -> None:
        self.failed += 1
        if len(self.errors) < 5:
            self.errors.append(str(error))


class KafkaSink:
    """confluent-kafka producer tuned for throughput; only failures call back into Python."""

    def __init__(self, config: Config, stats: Stats) -> None:
        from confluent_kafka import Producer

        self.config = config
        self.topic = config.kafka.topic
        self.access_error: str | None = None  # set when the brokers refuse this client
        self._producer = Producer(
            {
                **librdkafka_config(config.kafka),
                # Batch up to 20 ms / 10k messages, lz4 (cheap, good on JSON), deep local queue.
                "linger.ms": 20,
                "batch.num.messages": 10_000,
                "compression.type": "lz4",
                "queue.buffering.max.messages": 1_000_000,
                # Exactly what was generated: no duplicates or reordering on retries.
                "enable.idempotence": True,
                "acks": "all",
                "message.timeout.ms": 120_000,
                # No per-message Python callback for successes: that is most of the cost.
                "delivery.report.only.error": True,
                "on_delivery": lambda err, _msg: stats.delivery_failed(err) if err else None,
                "error_cb": self._error,
            }
        )

    def refusal(self) -> str:
        """One line on why the brokers refused this client, and what to change."""
        error = self.access_error or ""
        problem = classify(error) or AccessProblem("kafka", "credentials")
        return f"{describe(problem, self.config)}: {error}"

    def _error(self, error: Any) -> None:
        if error.name() in _ACCESS_ERRORS:
            self.access_error = error.str()
        else:
            print(f"kafka: {error}", file=sys.stderr)

    def produce(self, key: bytes, value: bytes | None) -> None:
        while self.access_error is None:
            try:
                self._producer.produce(self.topic, value=value, key=key)
                return
            except BufferError:  # local queue full: serve delivery reports, let it drain
                self._producer.poll(0.05)
        raise KafkaAccessError(self.access_error)

    def poll(self) -> None:
        self._producer.poll(0)

    def flush(self, timeout: float) -> int:
        """Wait for outstanding messages; returns how many were never acknowledged (at once
        when the brokers refused this client)."""
        deadline = time.monotonic() + timeout
        left = self._producer.flush(0)
        while left and self.access_error is None and time.monotonic() < deadline:
            left = self._producer.flush(min(1.0, max(0.0, deadline - time.monotonic())))
        if self.access_error is not None:
            self._producer.purge()  # nothing queued will ever be delivered
            self._producer.flush(0)
        return left


class KafkaAccessError(RuntimeError):
    """The brokers refused this client (credentials, TLS): nothing more can be sent."""


def send(
    messages: Iterable[Message],
    *,
    sink: KafkaSink | None,
    out: TextIO | None,
    rate: float | None,
    progress: Any,
    stats: Stats,
) -> None:
    # Housekeeping (progress, poll, pacing) every `step` messages, not per message.
    step = max(1, min(4096, int(rate / 20))) if rate else 4096
    started = time.monotonic()
    for seq, message in enumerate(messages):
        if sink is not None:
            sink.produce(message.key, message.value)
        if out is not None:
            out.write(json.dumps(message_record(seq, message), ensure_ascii=False) + "\n")
        stats.by_kind[message.kind] += 1
        if stats.first_ts is None:
            stats.first_ts = message.timestamp_ms
        stats.last_ts = message.timestamp_ms  # messages come in event-time order
        stats.sent += 1
        if stats.sent % step == 0:
            progress.update(step)
            if sink is not None:
                sink.poll()
                if sink.access_error is not None:
                    raise KafkaAccessError(sink.access_error)
            if rate:
                ahead = stats.sent / rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
    progress.update(stats.sent % step)
