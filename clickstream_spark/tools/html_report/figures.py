"""The numbers each chart of the report shows, from the rows the stores returned (no I/O).

Documents are the ``_source`` of the Elasticsearch results of one window; batches are rows of
``clickstream.ingest_history``. Every figure is a sum, a count or a copy of stored values, so a
test can recompute it from the stores.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

OTHER = "other"  # the countries after the top ones, together
SESSION_FIELDS = ("entrances", "exits", "bounces", "bounce_rate", "exit_rate")
HOURS = tuple(f"{hour:02d}:00" for hour in range(24))

Row = dict[str, Any]


def iso(moment: dt.datetime) -> str:
    """A naive UTC datetime as Elasticsearch returns dates: ``2026-03-14T13:00:00Z``."""
    return f"{moment:%Y-%m-%dT%H:%M:%S}Z"


def in_country(documents: Iterable[Row], country: str | None) -> list[Row]:
    return [d for d in documents if country is None or d["country"] == country]


def clicks_by_country(documents: Iterable[Row]) -> list[tuple[str, int]]:
    """(country, clicks), most clicks first (ties by name)."""
    totals: Counter[str] = Counter()
    for doc in documents:
        totals[doc["country"]] += doc["clicks"]
    return sorted(totals.items(), key=lambda item: (-item[1], item[0]))


def _ranked(totals: dict[str, int], top: int) -> list[tuple[str, int]]:
    return sorted(totals.items(), key=lambda item: (-item[1], item[0]))[:top]


def top_urls(
    documents: list[Row], top_countries: int, top_urls: int, country: str | None = None
) -> list[Row]:
    """Per country (``country`` only, or the ``top_countries`` with most clicks and the rest as
    ``other``): its ``top_urls`` URLs by clicks."""
    ranked = clicks_by_country(in_country(documents, country))
    leaders = [name for name, _ in ranked[: 1 if country else top_countries]]
    per_group: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for doc in in_country(documents, country):
        group = doc["country"] if doc["country"] in leaders else OTHER
        per_group[group][doc["url"]] += doc["clicks"]
    groups = leaders + ([OTHER] if OTHER in per_group else [])
    return [
        {"country": group, "url": url, "clicks": clicks}
        for group in groups
        for url, clicks in _ranked(per_group[group], top_urls)
    ]


def traffic_by_hour(hourly: list[Row], day: dt.datetime) -> list[Row]:
    """Clicks and unique users of each hour of ``day`` (0 for an hour without documents), from
    per-hour sums ``{"window_start", "clicks", "unique_users"}``."""
    by_start = {row["window_start"]: row for row in hourly}
    rows = []
    for hour, label in enumerate(HOURS):
        start = iso(day + dt.timedelta(hours=hour))
        found = by_start.get(start, {})
        for measure, field in (("clicks", "clicks"), ("unique users", "unique_users")):
            value = found.get(field, 0)
            rows.append({"hour": label, "hour_start": start, "measure": measure, "value": value})
    return rows


def busiest_country(documents: list[Row]) -> str | None:
    ranked = clicks_by_country(documents)
    return ranked[0][0] if ranked else None


def time_on_page(documents: list[Row], country: str, top_urls: int) -> list[Row]:
    """The ``top_urls`` URLs of ``country`` by clicks, with their median and p90 time on page
    and its coverage (the share of clicks that have a time on page)."""
    docs = sorted(in_country(documents, country), key=lambda d: (-d["clicks"], d["url"]))
    return [
        {
            "url": doc["url"],
            "country": country,
            "clicks": doc["clicks"],
            "median_s": doc["median_time_on_page_s"],
            "p90_s": doc["p90_time_on_page_s"],
            "coverage": doc["time_on_page_coverage"],
        }
        for doc in docs[:top_urls]
    ]


def has_session_fields(documents: list[Row]) -> bool:
    return any("entrances" in doc for doc in documents)


def landing_pages(documents: list[Row], top_urls: int, country: str | None = None) -> list[Row]:
    """The ``top_urls`` landing pages by entrances, with their bounce rate (bounces over
    entrances, all countries of a URL together unless ``country``)."""
    entrances: dict[str, int] = defaultdict(int)
    bounces: dict[str, int] = defaultdict(int)
    for doc in in_country(documents, country):
        entrances[doc["url"]] += doc.get("entrances") or 0
        bounces[doc["url"]] += doc.get("bounces") or 0
    landed = {url: count for url, count in entrances.items() if count > 0}
    return [
        {
            "url": url,
            "entrances": count,
            "bounces": bounces[url],
            "bounce_rate": bounces[url] / count,
        }
        for url, count in _ranked(landed, top_urls)
    ]


def _hour_of(batch_time: dt.datetime) -> tuple[str, str]:
    start = batch_time.replace(minute=0, second=0, microsecond=0)
    return f"{start:%H}:00", iso(start)


def messages_by_hour(batches: list[Row]) -> list[Row]:
    """Per hour of micro-batch time with batches: messages read, as valid and quarantined."""
    totals: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for batch in batches:
        totals[_hour_of(batch["batch_time"])].update(
            valid=batch["valid"], quarantined=batch["quarantined"]
        )
    return [
        {"hour": hour, "hour_start": start, "status": status, "messages": counts[status]}
        for (hour, start), counts in sorted(totals.items())
        for status in ("valid", "quarantined")
    ]


def quarantined_by_reason(batches: list[Row]) -> list[Row]:
    """Per hour of micro-batch time and reason: messages quarantined (reasons without any left
    out)."""
    totals: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for batch in batches:
        totals[_hour_of(batch["batch_time"])].update(batch["quarantined_by_reason"] or {})
    return [
        {"hour": hour, "hour_start": start, "reason": reason, "messages": count}
        for (hour, start), counts in sorted(totals.items())
        for reason, count in sorted(counts.items())
        if count
    ]


def summary(documents: list[Row], batches: list[Row], country: str | None) -> Row:
    """The headline numbers: the window's traffic and the ingest day's messages."""
    docs = in_country(documents, country)
    return {
        "clicks": sum(d["clicks"] for d in docs),
        "documents": len(docs),
        "urls": len({d["url"] for d in docs}),
        "countries": len({d["country"] for d in docs}),
        "batches": len(batches),
        "messages_read": sum(b["rows"] for b in batches),
        "valid": sum(b["valid"] for b in batches),
        "quarantined": sum(b["quarantined"] for b in batches),
    }
