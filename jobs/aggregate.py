"""Aggregation: per URL x country metrics of UTC hour/day windows, published to Elasticsearch.

./spark-submit.sh jobs/aggregate.py                          # incremental: what changed
./spark-submit.sh jobs/aggregate.py --window day --date 2026-01-31
./spark-submit.sh jobs/aggregate.py --hour 2026-01-31T13
./spark-submit.sh jobs/aggregate.py --from 2026-01-01 --to 2026-01-31   # backfill

Exit codes: 0 published; 1 failed (one line says why); 2 bad arguments or config; 75 another run
holds the aggregation lease (one line names it and when its lease ends; retry later).
"""

from __future__ import annotations

import argparse
import logging
import sys

from pyspark.sql import SparkSession

from clickstream_spark.aggregate.lease import LEASE_HELD_EXIT, LeaseHeld, open_lease
from clickstream_spark.aggregate.publish import check_publish_access, new_run_id
from clickstream_spark.aggregate.run import append_run_record, run_requests
from clickstream_spark.cli import (
    add_config_argument,
    configure_logging,
    fail,
    load_or_exit,
    one_line,
)
from clickstream_spark.elastic import es_client
from clickstream_spark.session import check_master, session_conf, wait_for_executors
from clickstream_spark.windows import WINDOW_KINDS, requested_windows

log = logging.getLogger("clickstream.aggregate")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="aggregate.py",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Compute per URL x country clicks, unique users, time on page, entrances, exits and\n"
            "bounces for UTC hour or day windows from Cassandra, and publish them to the\n"
            "Elasticsearch alias clickstream_index (atomically: readers see the previous result\n"
            "until the new one is complete).\n\n"
            "Without --date/--hour/--from, the run is incremental: it recomputes every window\n"
            "the stream marked as changed since the last successful run (late events included,\n"
            "and the windows 30 minutes before and after an event, where its user's previous and\n"
            "next events may lie), for --window, or for both kinds when --window is not given."
        ),
    )
    add_config_argument(parser)
    parser.add_argument(
        "--window", dest="kind", choices=WINDOW_KINDS, help="window kind (default: both)"
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--date", metavar="YYYY-MM-DD", help="one day (its 24 hours with --window hour)"
    )
    which.add_argument("--hour", metavar="YYYY-MM-DDTHH", help="one hour")
    which.add_argument(
        "--from", dest="range_from", metavar="START", help="backfill from this day or hour"
    )
    parser.add_argument(
        "--to", dest="range_to", metavar="END", help="backfill to this day or hour (inclusive)"
    )
    args = parser.parse_args(argv)
    try:
        args.request = requested_windows(
            args.kind, args.date, args.hour, args.range_from, args.range_to
        )
    except ValueError as exc:
        parser.error(str(exc))
    args.parser = parser
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    configure_logging(args.verbose)
    config = load_or_exit(args.parser, args.config)
    if args.request is not None:
        requests = [args.request]
    else:
        requests = [(kind, None) for kind in ([args.kind] if args.kind else WINDOW_KINDS)]

    try:
        # A master that cannot be reached is said before anything else (a socket connect, no
        # Spark); then the lease: a second run must exit at once, before it starts Spark.
        check_master()
        with open_lease(config, new_run_id()) as (cql, lease):
            spark = None
            es = es_client(config.elasticsearch)
            try:  # from the session on: any failure, at start too, ends with one line
                check_publish_access(es, config)  # before reading or computing anything
                spark = (
                    SparkSession.builder.appName("clickstream-aggregate")
                    .config(map=session_conf(config))
                    .getOrCreate()
                )
                wait_for_executors(spark, config.spark.start_timeout_seconds)
                for summary in run_requests(spark, es, config, cql, lease, requests):
                    print(summary.text(), flush=True)
                    append_run_record(config, summary.record())
            finally:
                es.close()
                if spark is not None:
                    spark.stop()
        print(f"published to Elasticsearch alias {config.elasticsearch.index}", flush=True)
        return 0
    except LeaseHeld as exc:
        fail("aggregate.py", str(exc), code=LEASE_HELD_EXIT)
    except Exception as exc:  # any failure ends the job with one clear line
        message = one_line(exc, config)
        append_run_record(config, {"status": "failed", "error": message})
        fail("aggregate.py", message)


if __name__ == "__main__":
    sys.exit(main())
