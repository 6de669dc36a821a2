"""A small report's inputs, as the stores return them (documents with session fields, hourly
sums, ingest-history rows), and a reader of the numbers a chart carries: for the report's tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

from clickstream_spark.tools.html_report.build import Scope
from clickstream_spark.tools.html_report.figures import Row

DAY = dt.datetime(2026, 3, 14)
SITE = "https://shop.example.com"


def document(url: str, country: str, clicks: int, coverage: float, **session: float) -> Row:
    return {
        "window": "day",
        "window_start": "2026-03-14T00:00:00Z",
        "url": f"{SITE}{url}",
        "country": country,
        "clicks": clicks,
        "unique_users": clicks // 2,
        "avg_time_on_page_s": 40.0,
        "median_time_on_page_s": 30.0 if coverage else None,
        "p90_time_on_page_s": 95.5 if coverage else None,
        "time_on_page_coverage": coverage,
        "computed_at": "2026-03-15T01:00:00Z",
        **session,
    }


def documents(with_sessions: bool = True) -> list[Row]:
    rows = [
        ("/", "NL", 500, 0.9, 200, 80),
        ("/cart", "NL", 300, 0.2, 10, 5),
        ("/deals", "NL", 120, 0.0, 0, 0),
        ("/", "DE", 400, 0.8, 150, 30),
        ("/deals", "DE", 350, 0.7, 90, 45),
        ("/", "FR", 90, 0.5, 40, 10),
        ("/cart", "FR", 60, 0.5, 0, 0),
        ("/", "unknown", 30, 0.5, 12, 12),
    ]
    docs = []
    for url, country, clicks, coverage, entrances, bounces in rows:
        session = {}
        if with_sessions:
            session = {
                "entrances": entrances,
                "exits": entrances,
                "bounces": bounces,
                "bounce_rate": bounces / entrances if entrances else None,
                "exit_rate": 0.5,
            }
        docs.append(document(url, country, clicks, coverage, **session))
    return docs


def hourly() -> list[Row]:
    return [
        {"window_start": "2026-03-14T00:00:00Z", "clicks": 700, "unique_users": 300},
        {"window_start": "2026-03-14T13:00:00Z", "clicks": 1150, "unique_users": 420},
    ]


def batches() -> list[Row]:
    def batch(batch_id: int, hour: int, valid: int, by_reason: dict[str, int]) -> Row:
        quarantined = sum(by_reason.values())
        return {
            "batch_id": batch_id,
            "batch_time": DAY.replace(hour=hour, minute=batch_id),
            "rows": valid + quarantined,
            "valid": valid,
            "quarantined": quarantined,
            "quarantined_by_reason": by_reason or None,  # Cassandra returns an empty map as null
            "windows": 2,
        }

    return [
        batch(0, 9, 1000, {"malformed_json": 4, "missing_or_bad:url": 1}),
        batch(1, 9, 800, {"malformed_json": 2}),
        batch(2, 10, 500, {}),
        batch(3, 23, 1200, {"too_large": 1, "missing_or_bad:url": 3}),
    ]


def scope(country: str | None = None) -> Scope:
    return Scope("day", DAY, country, DAY.date(), top_countries=2, top_urls=2)


def chart_values(spec: Any) -> list[Row]:
    """Every inline data row of a Vega-Lite specification, wherever it sits."""
    if isinstance(spec, dict):
        found = list(spec["data"]["values"]) if "values" in spec.get("data", {}) else []
        return found + [row for key, v in spec.items() if key != "data" for row in chart_values(v)]
    if isinstance(spec, list):
        return [row for item in spec for row in chart_values(item)]
    return []
