"""The bare query, a yardstick for bench/ingest.py (``--phases bare``); never a job to run.

Kafka -> ``parse_kafka`` -> the valid events to ``<keyspace>.events``, one pass per micro-batch
and nothing else: no cache, no quarantine (bad messages are dropped), no changed windows, no
counts beyond the stream's observed ones (``ingest.observed``, in an ``Observation`` on the
write). It is what issue 4 timed as "a bare query (no quarantine, no bookkeeping)", so that
``stream/bare`` shows what write_batch's extras cost.
With ``--sink noop`` the events go to Spark's noop sink: Kafka read and parser alone.

It reads the same topic and settings as jobs/stream.py (``CLICKSTREAM_*`` environment) and logs
the same ``batch N: ... in Ss`` and ``query ... started/finished`` lines, which the bench times.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable

from pyspark.sql import DataFrame, Observation, SparkSession

from clickstream_spark.cli import configure_logging
from clickstream_spark.config import load_config, with_overrides
from clickstream_spark.events_table import to_table_rows
from clickstream_spark.ingest.batch import BatchSummary
from clickstream_spark.ingest.parse import parse_kafka, valid_events
from clickstream_spark.ingest.query import observed
from clickstream_spark.ingest.source import kafka_source
from clickstream_spark.session import stream_conf
from clickstream_spark.tables import CASSANDRA_FORMAT, EVENTS_TABLE

log = logging.getLogger("bench.bare")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--available-now", action="store_true", help="accepted; always on")
    parser.add_argument("--max-offsets-per-trigger", type=int, metavar="N")
    parser.add_argument("--sink", choices=("cassandra", "noop"), default="cassandra")
    args = parser.parse_args(argv)
    configure_logging()
    config = load_config()
    config = with_overrides(config, "stream", max_offsets_per_trigger=args.max_offsets_per_trigger)
    spark = (
        SparkSession.builder.appName(f"bench-ingest-bare ({args.sink})")
        .config(map=stream_conf(config))
        .getOrCreate()
    )
    try:
        query = (
            parse_kafka(kafka_source(spark, config), oversized_raw=False)
            .writeStream.queryName("bare")
            .option("checkpointLocation", config.resolve_path(config.stream.checkpoint))
            .foreachBatch(_writer(config.cassandra.keyspace, args.sink))
            .trigger(availableNow=True)
            .start()
        )
        log.info("query %s started (id %s)", query.name, query.id)
        query.awaitTermination()
        log.info("query %s finished", query.name)
        return 0
    finally:
        spark.stop()


def _writer(keyspace: str, sink: str) -> Callable[[DataFrame, int], None]:
    """The micro-batch function: valid events to ``sink``, one line with the batch's counts."""

    def write(parsed: DataFrame, batch_id: int) -> None:
        started = time.monotonic()
        counts = Observation(f"bare{batch_id}")
        rows = to_table_rows(valid_events(observed(parsed, counts))).write.mode("append")
        if sink == "noop":
            rows.format("noop").save()
        else:
            rows.format(CASSANDRA_FORMAT).options(keyspace=keyspace, table=EVENTS_TABLE).save()
        seen = counts.get
        report = BatchSummary(
            batch_id=batch_id,
            offsets={},
            rows=seen["rows"],
            valid=seen["valid"],
            quarantined=seen["quarantined"],
            windows=0,
            seconds=time.monotonic() - started,
        )
        log.info("%s %s", "bare", report.line())

    return write


if __name__ == "__main__":
    sys.exit(main())
