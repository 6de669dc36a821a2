"""The stream's ingest history: what each micro-batch read, wrote and quarantined, by reason.

One row per micro-batch in ``clickstream.ingest_history`` (conf/cassandra/40-ingest-history.cql),
for operators and for the report's data-quality chart; :mod:`clickstream_spark.ingest.records`
writes it.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clickstream_spark.ingest.batch import BatchSummary

# Structured Streaming sets this local property on the thread that runs a micro-batch: the
# query's id, kept in the checkpoint across restarts.
QUERY_ID_PROPERTY = "sql.streaming.queryId"
# A batch written outside a streaming query (tests, backfills through write_batch).
NO_QUERY = "none"


def history_values(
    summary: BatchSummary, batch_time: dt.datetime, query_id: str | None
) -> tuple[Any, ...]:
    """The ingest_history row of one micro-batch, in INGEST_HISTORY_SCHEMA's order
    (``batch_time``: naive UTC; ``query_id``: None outside a streaming query)."""
    return (
        batch_time.date(),
        query_id or NO_QUERY,
        summary.batch_id,
        batch_time,
        summary.rows,
        summary.valid,
        summary.quarantined,
        dict(summary.by_reason),
        summary.erased,
        summary.windows,
        summary.seconds,
    )
