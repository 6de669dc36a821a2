"""``make report``: the published results as one HTML page with charts, and a PNG per chart.

python -m clickstream_spark.tools.html_report                       # the latest day window
python -m clickstream_spark.tools.html_report --window day --date 2026-03-14 --country NL
python -m clickstream_spark.tools.html_report --window hour --date 2026-03-14T13 --out /tmp/r
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

from cassandra.cluster import Session
from elasticsearch import Elasticsearch

from clickstream_spark.cli import (
    add_config_argument,
    configure_logging,
    fail,
    load_or_exit,
    one_line,
)
from clickstream_spark.config import Config
from clickstream_spark.cql import cassandra_session
from clickstream_spark.elastic import es_client
from clickstream_spark.tables import INGEST_HISTORY_TABLE
from clickstream_spark.tools.html_report.build import Scope, build_report
from clickstream_spark.tools.html_report.figures import Row
from clickstream_spark.tools.html_report.page import vega_bundle, write_report
from clickstream_spark.tools.html_report.sources import (
    hourly_sums,
    ingest_batches,
    latest_ingest_day,
    parse_date,
    window_documents,
)
from clickstream_spark.tools.report import latest_window_start
from clickstream_spark.windows import WINDOW_KINDS, WindowKind, parse_window_start

PROG = "python -m clickstream_spark.tools.html_report"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Write one self-contained HTML report (charts of the published results from "
            "Elasticsearch and of the stream's ingest history from Cassandra; it opens offline) "
            "and a PNG of each chart."
        ),
    )
    add_config_argument(parser)
    parser.add_argument("--window", dest="kind", choices=WINDOW_KINDS, default="day")
    parser.add_argument(
        "--date",
        metavar="WHEN",
        help="the window: YYYY-MM-DD for a day, YYYY-MM-DDTHH for an hour "
        "(default: the latest window published)",
    )
    parser.add_argument("--country", metavar="C", help="one country only (e.g. NL)")
    parser.add_argument(
        "--out", metavar="DIR", help="folder to write to (default: [report] out_dir/<window>)"
    )
    args = parser.parse_args(argv)
    try:
        args.start = None if args.date is None else parse_window_start(args.kind, args.date)
    except ValueError as exc:
        parser.error(str(exc))
    args.parser = parser
    return args


def _latest_start(es: Elasticsearch, alias: str, kind: WindowKind) -> dt.datetime:
    latest = latest_window_start(es, alias, kind)
    if latest is None:
        raise LookupError(f"{alias}: no {kind} window published yet (run the aggregation first)")
    return parse_date(latest)


def _folder(config: Config, kind: WindowKind, start: dt.datetime, country: str | None) -> Path:
    """[report] out_dir/<kind>-<start>[-<country>]."""
    name = f"{kind}-{start:%Y-%m-%d}" + (f"T{start:%H}" if kind == "hour" else "")
    name += f"-{country}" if country else ""
    return Path(config.resolve_path(config.report.out_dir)) / name


def _ingest_day(session: Session, day: dt.date) -> tuple[dt.date, list[Row], str]:
    """The window's own day of the ingest history or, when no micro-batch ran then (events
    sent long after they happened, as in the demo), the latest day that has some."""
    batches = ingest_batches(session, day)
    if batches:
        return day, batches, ""
    latest = latest_ingest_day(session)
    if latest is None:
        return day, [], ""
    return latest, ingest_batches(session, latest), f" (no micro-batch ran on {day})"


def render(
    config: Config,
    kind: WindowKind,
    start: dt.datetime | None,
    country: str | None = None,
    out: Path | None = None,
) -> list[Path]:
    """Read the stores, build the report of the window (default: the latest one published) and
    write it; the files written, page first."""
    alias = config.elasticsearch.index
    with es_client(config.elasticsearch, request_timeout=30) as es:
        start = start or _latest_start(es, alias, kind)
        documents = window_documents(es, alias, kind, start)
        day = start.replace(hour=0)
        hourly = hourly_sums(es, alias, day, country)
    with cassandra_session(config.cassandra) as session:
        ingest_day, batches, why = _ingest_day(session, day.date())
    scope = Scope(
        kind, start, country, ingest_day, config.report.top_countries, config.report.top_urls
    )
    cassandra = config.cassandra
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    sources = [
        f"Traffic: {len(documents):,} documents of the {scope.window_label} in the "
        f"Elasticsearch alias {alias} at {config.elasticsearch.url}.",
        f"Data quality: {len(batches):,} micro-batches of {ingest_day}{why} in the Cassandra "
        f"table {cassandra.keyspace}.{INGEST_HISTORY_TABLE} at {cassandra.endpoints}.",
        f"Generated {generated}.",
    ]
    report = build_report(scope, documents, hourly, batches, sources)
    bundle = vega_bundle(Path(config.resolve_path(config.report.out_dir)) / ".cache")
    return write_report(report, out or _folder(config, kind, start, country), bundle)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    configure_logging(args.verbose)
    config = load_or_exit(args.parser, args.config)
    started = time.monotonic()
    out = Path(args.out) if args.out else None
    try:
        written = render(config, args.kind, args.start, args.country, out)
    except Exception as exc:  # any failure ends with one clear line
        fail(PROG, one_line(exc))
    page, pngs = written[0], written[1:]
    print(
        f"report: {page} ({len(pngs)} charts, PNGs beside it) in {time.monotonic() - started:.1f}s"
    )
    return 0
