"""A report from the rows the stores returned: its headline numbers and charts, no I/O."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from clickstream_spark.tools.html_report import charts, figures
from clickstream_spark.tools.html_report.figures import Row
from clickstream_spark.windows import WindowKind, window_start


@dataclass(frozen=True)
class Scope:
    """What one report covers: a window (its documents), the day holding it (its hours) and an
    ingest day (the stream's micro-batches), optionally one country."""

    kind: WindowKind
    start: dt.datetime  # naive UTC
    country: str | None
    ingest_day: dt.date
    top_countries: int
    top_urls: int

    @property
    def day(self) -> dt.datetime:
        return window_start("day", self.start)

    @property
    def window_label(self) -> str:
        if self.kind == "hour":
            return f"hour {self.start:%Y-%m-%d %H}:00 UTC"
        return f"day {self.start:%Y-%m-%d}"


@dataclass(frozen=True)
class Report:
    title: str
    lines: list[str]  # under the title: what it shows and where from
    summary: dict[str, Any]
    charts: list[charts.Chart]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (chart title, why)


def build_report(
    scope: Scope,
    documents: list[Row],
    hourly: list[Row],
    batches: list[Row],
    sources: list[str],
) -> Report:
    """The report of ``scope`` from a window's documents, its day's hourly sums and its ingest
    day's micro-batches; ``sources`` are lines saying where they came from."""
    built: list[charts.Chart] = []
    skipped: list[tuple[str, str]] = []
    label, country = scope.window_label, scope.country
    docs = figures.in_country(documents, country)
    if docs:
        rows = figures.top_urls(docs, scope.top_countries, scope.top_urls, country)
        built.append(charts.top_urls_chart(rows, label))
    else:
        skipped.append(("Top URLs by clicks per country", f"no documents for the {label}"))
    built.append(
        charts.traffic_chart(figures.traffic_by_hour(hourly, scope.day), f"{scope.day:%Y-%m-%d}")
    )
    focus = country or figures.busiest_country(docs)
    if focus is not None:
        rows = figures.time_on_page(docs, focus, scope.top_urls)
        built.append(charts.time_on_page_chart(rows, focus, label))
    else:
        skipped.append(("Time on page per URL", f"no documents for the {label}"))
    if figures.has_session_fields(docs):
        rows = figures.landing_pages(docs, scope.top_urls, country)
        built.append(charts.landing_pages_chart(rows, label))
    else:
        skipped.append(
            (
                "Top landing pages by entrances, with bounce rate",
                "the documents have no session fields (entrances, bounces) yet: the aggregation "
                "that writes them has not published this window",
            )
        )
    if batches:
        by_status = figures.messages_by_hour(batches)
        by_reason = figures.quarantined_by_reason(batches)
        built.append(charts.data_quality_chart(by_status, by_reason, f"{scope.ingest_day}"))
    else:
        skipped.append(("Data quality", "the ingest history has no micro-batch at all"))
    where = f"country {country}" if country else "all countries"
    return Report(
        title=f"Clickstream report: {label}, {where}",
        lines=sources,
        summary={
            "window": scope.kind,
            "window_start": figures.iso(scope.start),
            "country": country,
            "ingest_day": f"{scope.ingest_day}",
            **figures.summary(documents, batches, country),
        },
        charts=built,
        skipped=skipped,
    )
