"""Aggregation: per URL x country metrics of UTC hour/day windows, published to Elasticsearch.

./spark-submit.sh jobs/aggregate.py                          # incremental: what changed
./spark-submit.sh jobs/aggregate.py --window day --date 2026-01-31
./spark-submit.sh jobs/aggregate.py --hour 2026-01-31T13
./spark-submit.sh jobs/aggregate.py --from 2026-01-01 --to 2026-01-31   # backfill
"""

from __future__ import annotations

import argparse
import logging
import sys

from pyspark.sql import SparkSession

from clickstream_spark.aggregate.publish import check_publish_access
from clickstream_spark.aggregate.run import run_aggregation
from clickstream_spark.cli import (
    add_config_argument,
    configure_logging,
    fail,
    load_or_exit,
    one_line,
)
from clickstream_spark.elastic import es_client
from clickstream_spark.session import session_conf
from clickstream_spark.windows import WINDOW_KINDS, requested_windows

log = logging.getLogger("clickstream.aggregate")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="aggregate.py",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Compute per URL x country clicks, unique users and time on page for UTC hour or\n"
            "day windows from Cassandra, and publish them to the Elasticsearch alias\n"
            "clickstream_index (atomically: readers see the previous result until the new one\n"
            "is complete).\n\n"
            "Without --date/--hour/--from, the run is incremental: it recomputes every window\n"
            "the stream marked as changed since the last successful run (late events included,\n"
            "and the window before an event when the event defines the time on page of its\n"
            "user's previous one), for --window, or for both kinds when --window is not given."
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
        runs = [args.request]
    else:
        runs = [(kind, None) for kind in ([args.kind] if args.kind else WINDOW_KINDS)]

    spark = (
        SparkSession.builder.appName("clickstream-aggregate")
        .config(map=session_conf(config))
        .getOrCreate()
    )
    es = es_client(config.elasticsearch)
    try:
        check_publish_access(es, config)
        for kind, starts in runs:
            summary = run_aggregation(spark, es, config, kind, starts)
            print(summary.text(), flush=True)
        print(f"published to Elasticsearch alias {config.elasticsearch.index}", flush=True)
        return 0
    except Exception as exc:  # any failure ends the job with one clear line
        fail("aggregate.py", one_line(exc, config))
    finally:
        es.close()
        spark.stop()


if __name__ == "__main__":
    sys.exit(main())
