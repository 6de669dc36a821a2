"""The sink's ceiling for bench/ingest.py: a Spark batch write of already-parsed events.

Launched by ``python -m bench.ingest`` through ./spark-submit.sh (same SPARK_CONF_DIR, packages and
connector settings as jobs/stream.py); not meant to be run by hand, but it can be:

    CLICKSTREAM_KAFKA_TOPIC=t ./spark-submit.sh --master local[2] bench/ingest_ceiling.py \
        --keyspace ks --repeats 1

Reads the whole topic as a batch, parses it exactly as the stream does (``parse_kafka``,
``valid_events``, ``to_table_rows``), caches and counts it, then times only the write(s) to
``<keyspace>.events``. Prints one ``CEILING_RESULT {json}`` line on stdout.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

from pyspark.sql import DataFrame, SparkSession

from clickstream_spark.cli import configure_logging
from clickstream_spark.config import Config, load_config
from clickstream_spark.events_table import to_table_rows
from clickstream_spark.ingest.parse import parse_kafka, valid_events
from clickstream_spark.session import stream_conf
from clickstream_spark.tables import CASSANDRA_FORMAT, EVENTS_TABLE

log = logging.getLogger("bench.ceiling")
RESULT_PREFIX = "CEILING_RESULT "


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keyspace", required=True, help="keyspace whose events table is written")
    parser.add_argument("--repeats", type=int, default=1, help="timed writes (1)")
    args = parser.parse_args(argv)
    configure_logging()
    config = load_config()
    spark = (
        SparkSession.builder.appName("bench-ingest-ceiling")
        .config(map=stream_conf(config))
        .getOrCreate()
    )
    try:
        rows = to_table_rows(valid_events(parse_kafka(_whole_topic(spark, config)))).cache()
        started = time.perf_counter()
        count = rows.count()
        materialise_s = time.perf_counter() - started
        storage = [
            (info.memSize(), info.diskSize())
            for info in spark.sparkContext._jsc.sc().getRDDStorageInfo()
        ]
        log.info("materialised %d rows in %.1fs (cache %s)", count, materialise_s, storage)
        result = {
            "rows": count,
            "materialise_s": materialise_s,
            "write_s": _timed_writes(rows, count, args.keyspace, args.repeats),
            "cache_mem_bytes": sum(m for m, _ in storage),
            "cache_disk_bytes": sum(d for _, d in storage),
            "partitions": rows.rdd.getNumPartitions(),
        }
        print(RESULT_PREFIX + json.dumps(result), flush=True)
        return 0
    finally:
        spark.stop()


def _whole_topic(spark: SparkSession, config: Config) -> DataFrame:
    return (
        spark.read.format("kafka")
        .option("kafka.bootstrap.servers", config.kafka.bootstrap_servers)
        .option("subscribe", config.kafka.topic)
        .option("startingOffsets", "earliest")
        .option("endingOffsets", "latest")
        .load()
    )


def _timed_writes(rows: DataFrame, count: int, keyspace: str, repeats: int) -> list[float]:
    """Seconds of each write of the cached rows into ``keyspace``'s events table."""
    writes = []
    for i in range(repeats):
        started = time.perf_counter()
        (
            rows.write.format(CASSANDRA_FORMAT)
            .options(keyspace=keyspace, table=EVENTS_TABLE)
            .mode("append")
            .save()
        )
        writes.append(time.perf_counter() - started)
        log.info("write %d: %d rows in %.1fs: %.0f rows/s", i, count, writes[-1],
                 count / writes[-1])  # fmt: skip
    return writes


if __name__ == "__main__":
    sys.exit(main())
