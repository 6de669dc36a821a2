"""A micro-batch's own few rows, written through the stream's CQL session: its changed-window
marks and its ingest history row.

The events and the quarantine go through the Spark connector; these rows are a handful per
micro-batch, and a Spark job for each took 0.2-0.3 s of every micro-batch (job and connector
setup, measured), against milliseconds for a prepared statement. They use the configured write
consistency, like the connector's writes.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from cassandra import ConsistencyLevel
from cassandra.cluster import Session
from cassandra.concurrent import execute_concurrent_with_args

from clickstream_spark.config import Config
from clickstream_spark.ingest.history import history_values
from clickstream_spark.schema import CHANGED_WINDOWS_SCHEMA, INGEST_HISTORY_SCHEMA
from clickstream_spark.tables import CHANGED_WINDOWS_TABLE, INGEST_HISTORY_TABLE
from clickstream_spark.windows import Window

if TYPE_CHECKING:
    from clickstream_spark.ingest.batch import BatchSummary


def _insert(keyspace: str, table: str, columns: list[str]) -> str:
    names = ", ".join(f'"{name}"' for name in columns)
    return f"INSERT INTO {keyspace}.{table} ({names}) VALUES ({', '.join('?' * len(columns))})"


class BatchRecords:
    """Prepared once per stream; :meth:`mark_windows` and :meth:`record` per micro-batch."""

    def __init__(self, session: Session, config: Config) -> None:
        keyspace = config.cassandra.keyspace
        consistency = ConsistencyLevel.name_to_value[config.cassandra.write_consistency]
        self._session = session
        self._mark = session.prepare(
            _insert(keyspace, CHANGED_WINDOWS_TABLE, CHANGED_WINDOWS_SCHEMA.fieldNames())
        )
        self._history = session.prepare(
            _insert(keyspace, INGEST_HISTORY_TABLE, INGEST_HISTORY_SCHEMA.fieldNames())
        )
        for statement in (self._mark, self._history):
            statement.consistency_level = consistency

    def mark_windows(self, windows: list[Window], changed_at: dt.datetime, batch_id: int) -> None:
        """Mark ``windows`` changed by micro-batch ``batch_id`` (``changed_at``: naive UTC)."""
        rows = [(kind, start, changed_at, batch_id) for kind, start in windows]
        execute_concurrent_with_args(self._session, self._mark, rows, raise_on_first_error=True)

    def record(self, summary: BatchSummary, batch_time: dt.datetime, query_id: str | None) -> None:
        """The micro-batch's ingest_history row."""
        self._session.execute(self._history, history_values(summary, batch_time, query_id))
