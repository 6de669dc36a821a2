"""Erasure: remove users' events and quarantined messages, re-publish every result they touched.

./spark-submit.sh jobs/erase.py --user-id U [--user-id U2 ...] [--from-file ids.txt]

When it exits 0, no event of the users is stored, no quarantined message carrying their id is
kept, every window their events entered is re-published without them, and the stream keeps them
out from its next micro-batch on. The request is recorded in clickstream.erasure_log; the job's
output gives counts only, never a user id.

Exit codes: 0 erased and re-published; 1 failed (one line says why; a rerun finishes what is left,
e.g. the publishing after Elasticsearch was down); 2 bad arguments or config; 75 an aggregation
run holds the lease (retry later).
"""

from __future__ import annotations

import argparse
import logging
import sys

from pyspark.sql import SparkSession

from clickstream_spark.aggregate.lease import LEASE_HELD_EXIT, LeaseHeld, open_lease
from clickstream_spark.aggregate.publish import new_run_id
from clickstream_spark.cli import (
    add_config_argument,
    configure_logging,
    fail,
    load_or_exit,
    one_line,
)
from clickstream_spark.erasure.publish import erase
from clickstream_spark.erasure.request import read_user_ids
from clickstream_spark.session import check_master, session_conf, wait_for_executors

log = logging.getLogger("clickstream.erase")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="erase.py",
        description=(
            "Erase users: delete their events (clickstream.events) and the quarantined messages "
            "that carry their id, re-publish every window their events entered, and keep them "
            "out of the stream from now on. user_id as stored (text)."
        ),
    )
    add_config_argument(parser)
    parser.add_argument(
        "--user-id", action="append", default=[], metavar="U", help="a user to erase (repeatable)"
    )
    parser.add_argument(
        "--from-file",
        action="append",
        default=[],
        metavar="FILE",
        help="users to erase, one id per line (repeatable)",
    )
    args = parser.parse_args(argv)
    try:
        args.user_ids = read_user_ids(args.user_id, args.from_file)
    except ValueError as exc:
        parser.error(str(exc))
    args.parser = parser
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    configure_logging(args.verbose)
    config = load_or_exit(args.parser, args.config)
    request_id = f"erase-{new_run_id()}"
    try:
        check_master()
        # The aggregation's lease: erasures and aggregation runs publish one at a time.
        with open_lease(config, new_run_id()) as (cql, lease):
            spark = None
            try:
                spark = (
                    SparkSession.builder.appName("clickstream-erase")
                    .config(map=session_conf(config))
                    .getOrCreate()
                )
                wait_for_executors(spark, config.spark.start_timeout_seconds)
                for line in erase(spark, config, cql, lease, args.user_ids, request_id):
                    print(line, flush=True)
            finally:
                if spark is not None:
                    spark.stop()
        return 0
    except LeaseHeld as exc:
        fail("erase.py", str(exc), code=LEASE_HELD_EXIT)
    except Exception as exc:  # any failure ends the job with one clear line
        fail("erase.py", one_line(exc, config))


if __name__ == "__main__":
    sys.exit(main())
