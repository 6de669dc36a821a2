"""Realistic clickstream for ``clickstream_topic``: sessions, Zipf URLs, countries, bad messages.

Two halves, kept apart on purpose:

* ``generate_messages`` (messages.py) is pure and seedable: an iterator of ``Message`` (the
  Kafka key and value as sent, plus what a correct parser must make of them). Tests and benchmarks
  use it without Kafka.
* ``main`` (cli.py; ``clickstream-generate``, ``python -m clickstream_spark.tools.generate``)
  sends those messages with confluent-kafka and/or writes them as JSON lines (``--output``).

The model: world.py (the site's URLs, countries, devices, client flavours), population.py (each
user's fixed attributes and how their client writes them), sessions.py (who clicks when),
bad_messages.py (one kind per way to break the event contract). Row keys are UUID-shaped, derived
from the seed and the message number through a bijection: unique within a run and identical when
re-run with the same arguments, so a re-run is an idempotent upsert downstream.
"""

from clickstream_spark.tools.generate.bad_messages import BAD_KINDS, BadKind
from clickstream_spark.tools.generate.cli import main
from clickstream_spark.tools.generate.messages import (
    VALID,
    Event,
    Message,
    generate_messages,
    message_record,
)
from clickstream_spark.tools.generate.sessions import SESSION_GAP_MS, default_users
from clickstream_spark.tools.generate.world import COUNTRIES, DEVICES, URLS

__all__ = [
    "BAD_KINDS",
    "COUNTRIES",
    "DEVICES",
    "SESSION_GAP_MS",
    "URLS",
    "VALID",
    "BadKind",
    "Event",
    "Message",
    "default_users",
    "generate_messages",
    "main",
    "message_record",
]
