"""What the report reads: a window's documents and a day's hourly sums from Elasticsearch (through
the project's client), and a day of the stream's ingest history from Cassandra."""

from __future__ import annotations

import datetime as dt
from typing import Any

from cassandra.cluster import Session
from elasticsearch import Elasticsearch

from clickstream_spark.tables import INGEST_HISTORY_TABLE
from clickstream_spark.tools.html_report.figures import Row, iso
from clickstream_spark.windows import WindowKind

PAGE = 5000  # documents per scroll page


def parse_date(text: str) -> dt.datetime:
    """An Elasticsearch date (``2026-03-14T00:00:00Z``, with or without millis) as naive UTC."""
    return dt.datetime.fromisoformat(text).astimezone(dt.UTC).replace(tzinfo=None)


def window_documents(
    es: Elasticsearch, alias: str, kind: WindowKind, start: dt.datetime
) -> list[Row]:
    """Every document of the window of ``kind`` starting at ``start``."""
    query = {
        "bool": {"filter": [{"term": {"window": kind}}, {"term": {"window_start": iso(start)}}]}
    }
    documents: list[Row] = []
    response: Any = es.search(index=alias, query=query, size=PAGE, scroll="1m", sort=["_doc"])
    try:
        while response["hits"]["hits"]:
            documents += [hit["_source"] for hit in response["hits"]["hits"]]
            response = es.scroll(scroll_id=response["_scroll_id"], scroll="1m")
    finally:
        es.clear_scroll(scroll_id=response["_scroll_id"])
    return documents


def hourly_sums(
    es: Elasticsearch, alias: str, day: dt.datetime, country: str | None = None
) -> list[Row]:
    """Per hour window of ``day`` that has documents: the sums of clicks and unique users."""
    filters: list[dict[str, Any]] = [
        {"term": {"window": "hour"}},
        {"range": {"window_start": {"gte": iso(day), "lt": iso(day + dt.timedelta(days=1))}}},
    ]
    if country is not None:
        filters.append({"term": {"country": country}})
    sums = {name: {"sum": {"field": name}} for name in ("clicks", "unique_users")}
    response: Any = es.search(
        index=alias,
        size=0,
        query={"bool": {"filter": filters}},
        aggs={"hours": {"terms": {"field": "window_start", "size": 24}, "aggs": sums}},
    )
    return [
        {
            "window_start": iso(dt.datetime.fromtimestamp(bucket["key"] / 1000, dt.UTC)),
            # Sums of longs come back as doubles: exact below 2**53.
            "clicks": int(bucket["clicks"]["value"]),
            "unique_users": int(bucket["unique_users"]["value"]),
        }
        for bucket in response["aggregations"]["hours"]["buckets"]
    ]


def ingest_batches(session: Session, day: dt.date) -> list[Row]:
    """The ingest history's rows of ``day`` (UTC, by micro-batch time)."""
    rows = session.execute(
        f"SELECT batch_id, batch_time, rows, valid, quarantined, quarantined_by_reason, windows "
        f"FROM {INGEST_HISTORY_TABLE} WHERE day = %s",
        (day,),
    )
    return [row._asdict() for row in rows]


def latest_ingest_day(session: Session) -> dt.date | None:
    """The last UTC day with micro-batches in the ingest history (one row per partition read)."""
    days = [
        row.day.date()
        for row in session.execute(f"SELECT DISTINCT day FROM {INGEST_HISTORY_TABLE}")
    ]
    return max(days, default=None)
