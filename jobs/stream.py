"""Streaming ingest: Kafka `clickstream_topic` -> typed events in Cassandra, bad ones quarantined.

./spark-submit.sh jobs/stream.py                  # run continuously (processing-time trigger)
./spark-submit.sh jobs/stream.py --available-now  # drain the topic, then exit 0
./spark-submit.sh --master spark://host:7077 jobs/stream.py
"""

from __future__ import annotations

import argparse
import logging
import sys

from pyspark.sql import SparkSession

from clickstream_spark.cli import (
    add_config_argument,
    configure_logging,
    fail,
    load_or_exit,
    one_line,
)
from clickstream_spark.config import ConfigError, with_overrides
from clickstream_spark.ingest.prometheus import serve_metrics
from clickstream_spark.ingest.query import check_tables, cql_session_of_stream, start_ingest
from clickstream_spark.session import check_master, stream_conf, wait_for_executors

log = logging.getLogger("clickstream.stream")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="stream.py",
        description=(
            "Read click events from Kafka, write valid ones to Cassandra (clickstream.events) and "
            "bad ones, with the reason, to clickstream.quarantine. Restarts resume from the "
            "checkpoint; replays are idempotent. Defaults come from the config file, then the "
            "environment (CLICKSTREAM_STREAM_*, KAFKA_BOOTSTRAP_SERVERS, CASSANDRA_HOSTS)."
        ),
    )
    add_config_argument(parser)
    when = parser.add_mutually_exclusive_group()
    when.add_argument(
        "--available-now",
        action="store_true",
        help="process everything in the topic now, in micro-batches, then exit 0",
    )
    when.add_argument(
        "--trigger-interval", metavar="DURATION", help='micro-batch interval, e.g. "10 seconds"'
    )
    parser.add_argument(
        "--max-offsets-per-trigger", type=int, metavar="N", help="cap on messages per micro-batch"
    )
    parser.add_argument(
        "--min-partitions",
        type=int,
        metavar="N",
        help="at least N Spark tasks per micro-batch (0: one per Kafka partition)",
    )
    parser.add_argument("--checkpoint", metavar="PATH", help="checkpoint folder or Hadoop URI")
    parser.add_argument(
        "--starting-offsets",
        metavar="WHERE",
        help='where a first start (empty checkpoint) begins: "earliest", "latest" or Kafka JSON',
    )
    parser.add_argument("--topic", help="Kafka topic to read")
    parser.add_argument(
        "--prometheus-address",
        metavar="HOST:PORT",
        help='serve Prometheus metrics on http://HOST:PORT/metrics while running ("off": not)',
    )
    args = parser.parse_args(argv)
    args.parser = parser
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    configure_logging(args.verbose)
    config = load_or_exit(args.parser, args.config)
    try:
        config = with_overrides(
            config,
            "stream",
            trigger_interval=args.trigger_interval,
            max_offsets_per_trigger=args.max_offsets_per_trigger,
            min_partitions=args.min_partitions,
            checkpoint=args.checkpoint,
            starting_offsets=args.starting_offsets,
        )
        config = with_overrides(config, "kafka", topic=args.topic)
        config = with_overrides(config, "monitoring", prometheus_address=args.prometheus_address)
    except ConfigError as exc:
        args.parser.error(str(exc))

    spark = None
    try:  # from the session on: any failure, at start too, ends with one line
        check_master()
        spark = (
            SparkSession.builder.appName(f"clickstream-stream ({config.stream.query_name})")
            .config(map=stream_conf(config))
            .getOrCreate()
        )
        wait_for_executors(spark, config.spark.start_timeout_seconds)
        metrics = serve_metrics(spark, config)
        on_batch = metrics.batch_written if metrics else None
        check_tables(spark, config)  # through the connector, whose errors name what to fix
        session = cql_session_of_stream(config)
        try:
            query = start_ingest(
                spark, config, session, available_now=args.available_now, on_batch=on_batch
            )
            log.info("query %s started (id %s)", query.name, query.id)
            query.awaitTermination()
            log.info("query %s finished", query.name)
        finally:
            session.cluster.shutdown()
        return 0
    except KeyboardInterrupt:
        log.info("interrupted: stopping; the next start resumes from the checkpoint")
        return 130
    except Exception as exc:  # any failure ends the job with one clear line
        fail("stream.py", one_line(exc, config))
    finally:
        if spark is not None:
            spark.stop()


if __name__ == "__main__":
    sys.exit(main())
