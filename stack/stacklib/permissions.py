"""What each job may do, and nothing more: Kafka ACLs, CQL grants, an Elasticsearch role.

The secured local stack applies exactly these (stacklib.secure_bootstrap); the integration tests
grant them on their own topics and keyspaces; README's "Running against secured clusters" shows
them for real clusters.

- the stream reads the topic (its consumer groups by prefix) and writes events, quarantine,
  changed_windows and ingest_history; it reads no table and cannot drop one;
- the aggregation reads events and changed_windows, reads and writes its bookkeeping tables
  (aggregated_windows, its lease aggregate_lease, backfills), and creates, writes, deletes and
  aliases only ``<index>*`` indices;
- erasure (jobs/erase.py) has a user of its own: the aggregation's rights (it re-publishes
  through the aggregation's path) and what erasing adds: deleting events and quarantined
  messages (reading the quarantine to find them), marking windows changed, adding to the erased
  users and keeping the erasure log; the stream reads the erased users;
- the generator writes the topic.
"""

from __future__ import annotations

from dataclasses import dataclass

from clickstream_spark.aggregate.publish import INDEX_PRIVILEGES
from clickstream_spark.tables import (
    AGGREGATED_WINDOWS_TABLE,
    BACKFILLS_TABLE,
    CHANGED_WINDOWS_TABLE,
    ERASED_USERS_TABLE,
    ERASURE_LOG_TABLE,
    EVENTS_TABLE,
    INGEST_HISTORY_TABLE,
    LEASE_TABLE,
    QUARANTINE_TABLE,
)
from stacklib.secure import AGGREGATE, ERASE, GENERATE, STREAM

STREAM_WRITES = (EVENTS_TABLE, QUARANTINE_TABLE, CHANGED_WINDOWS_TABLE, INGEST_HISTORY_TABLE)
STREAM_READS = (ERASED_USERS_TABLE,)
# The lease is a lightweight transaction (INSERT ... IF NOT EXISTS): it reads as it writes.
AGGREGATE_BOOKKEEPING = (AGGREGATED_WINDOWS_TABLE, LEASE_TABLE, BACKFILLS_TABLE)
AGGREGATE_READS = (EVENTS_TABLE, CHANGED_WINDOWS_TABLE, *AGGREGATE_BOOKKEEPING)
AGGREGATE_WRITES = AGGREGATE_BOOKKEEPING
# What erasure adds to the aggregation's rights (Cassandra's MODIFY is also what deletes).
ERASE_READS = (QUARANTINE_TABLE, ERASURE_LOG_TABLE)
ERASE_WRITES = (EVENTS_TABLE, QUARANTINE_TABLE, CHANGED_WINDOWS_TABLE, ERASED_USERS_TABLE,
                ERASURE_LOG_TABLE)  # fmt: skip
# The aggregation's index privileges on <index>*: what the job itself checks before it starts.
AGGREGATE_INDEX_PRIVILEGES = INDEX_PRIVILEGES


@dataclass(frozen=True)
class KafkaAcl:
    principal: str  # User:<name>
    resource: str  # "topic" or "group"
    name: str
    pattern: str  # "literal" or "prefixed"
    operation: str  # "read", "write", "describe"

    def text(self) -> str:
        """As ``kafka-acls.sh`` would be told: for README and messages."""
        option = "--topic" if self.resource == "topic" else "--group"
        pattern = " --resource-pattern-type prefixed" if self.pattern == "prefixed" else ""
        return (
            f"--allow-principal {self.principal} --operation {self.operation.capitalize()} "
            f"{option} {self.name}{pattern}"
        )


def kafka_acls(topic: str, group_prefix: str, stream: str | None = None) -> list[KafkaAcl]:
    """The ACLs of the stream and the generator on ``topic`` (``stream``: another user name
    for the stream's rights)."""
    reader = f"User:{stream or STREAM.kafka}"
    writer = f"User:{GENERATE.kafka}"
    return [
        KafkaAcl(reader, "topic", topic, "literal", "read"),
        KafkaAcl(reader, "topic", topic, "literal", "describe"),
        KafkaAcl(reader, "group", group_prefix, "prefixed", "read"),
        KafkaAcl(writer, "topic", topic, "literal", "write"),
        KafkaAcl(writer, "topic", topic, "literal", "describe"),
    ]


def stream_grants(
    keyspace: str, role: str | None = None, tables: tuple[str, ...] = STREAM_WRITES
) -> list[str]:
    """CQL grants of the stream (``role``: another role with the stream's rights, writing
    ``tables``)."""
    grantee = role or STREAM.cassandra
    return [
        *(f"GRANT SELECT ON TABLE {keyspace}.{table} TO {grantee}" for table in STREAM_READS),
        *(f"GRANT MODIFY ON TABLE {keyspace}.{table} TO {grantee}" for table in tables),
    ]


def aggregate_grants(keyspace: str, role: str | None = None) -> list[str]:
    grantee = role or AGGREGATE.cassandra
    return [
        *(f"GRANT SELECT ON TABLE {keyspace}.{table} TO {grantee}" for table in AGGREGATE_READS),
        *(f"GRANT MODIFY ON TABLE {keyspace}.{table} TO {grantee}" for table in AGGREGATE_WRITES),
    ]


def erase_grants(keyspace: str, role: str | None = None) -> list[str]:
    """The aggregation's grants, then what erasing adds (README shows the additions)."""
    grantee = role or ERASE.cassandra
    return [
        *aggregate_grants(keyspace, grantee),
        *(f"GRANT SELECT ON TABLE {keyspace}.{table} TO {grantee}" for table in ERASE_READS),
        *(f"GRANT MODIFY ON TABLE {keyspace}.{table} TO {grantee}" for table in ERASE_WRITES),
    ]


def aggregate_role(index: str, privileges: tuple[str, ...] = AGGREGATE_INDEX_PRIVILEGES) -> dict:
    """The Elasticsearch role of the aggregation: only ``<index>*``, the alias included."""
    return {
        # ES-Hadoop's version check and node discovery read cluster information.
        "cluster": ["monitor"],
        "indices": [{"names": [f"{index}*"], "privileges": list(privileges)}],
    }
