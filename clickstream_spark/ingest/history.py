"""The stream's ingest history: what each micro-batch read, wrote and quarantined, by reason.

One row per micro-batch in ``clickstream.ingest_history`` (conf/cassandra/40-ingest-history.cql),
for operators and for the report's data-quality chart.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from clickstream_spark.schema import INGEST_HISTORY_SCHEMA

if TYPE_CHECKING:
    from clickstream_spark.ingest.batch import BatchSummary

# Structured Streaming sets this local property on the thread that runs a micro-batch: the
# query's id, kept in the checkpoint across restarts.
QUERY_ID_PROPERTY = "sql.streaming.queryId"
# A batch written outside a streaming query (tests, backfills through write_batch).
NO_QUERY = "none"


def reason_counts(parsed: DataFrame) -> dict[str, int]:
    """reason -> how many messages of a parsed micro-batch were quarantined for it."""
    rows = parsed.where(F.col("reason").isNotNull()).groupBy("reason").count().collect()
    return {row["reason"]: row["count"] for row in rows}


def history_row(spark: SparkSession, summary: BatchSummary, batch_time: dt.datetime) -> DataFrame:
    """The ingest_history row of one micro-batch (``batch_time``: naive UTC)."""
    query_id = spark.sparkContext.getLocalProperty(QUERY_ID_PROPERTY) or NO_QUERY
    row = (
        batch_time.date(),
        query_id,
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
    return spark.createDataFrame([row], INGEST_HISTORY_SCHEMA)
