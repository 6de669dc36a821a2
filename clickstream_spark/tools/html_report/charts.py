"""The report's charts as Vega-Lite specifications, built with Altair from the figures' rows.

Every chart carries its rows inline (``data.values``): the page and the PNGs need nothing else,
and a test can read back every number a chart shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import altair as alt

from clickstream_spark.tools.html_report.figures import HOURS, OTHER, Row

WIDTH = 520
# Axis labels show URLs without their scheme; the full URL is in each mark's tooltip.
URL_LABEL = "replace(datum.label, /^https?:\\/\\//, '')"
URL_AXIS = alt.Axis(labelLimit=340, labelExpr=URL_LABEL)
HOUR_AXIS = alt.Axis(labelAngle=0, labelOverlap=True)
PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#9d755d")


def _by(field: str) -> alt.EncodingSortField:
    """Largest first. ``max``: the sort layered marks can share (one row per bar)."""
    return alt.EncodingSortField(field, op="max", order="descending")


@dataclass(frozen=True)
class Chart:
    """One chart of the report: an id (its file and element names), its title, a note for the
    reader, and the Vega-Lite specification."""

    name: str
    title: str
    note: str
    spec: dict[str, Any]


def _spec(chart: alt.TopLevelMixin) -> dict[str, Any]:
    return chart.configure_title(anchor="start", fontSize=15).to_dict()


def _country_urls(rows: list[Row], country: str, color: str, last: bool) -> alt.LayerChart:
    """One country's bars, titled with the country; the clicks axis title under the last."""
    base = alt.Chart().encode(
        y=alt.Y("url:N", sort=_by("clicks"), title=None, axis=URL_AXIS),
        x=alt.X("clicks:Q", title="clicks" if last else None),
        tooltip=["country:N", "url:N", alt.Tooltip("clicks:Q", format=",")],
    )
    bars = base.mark_bar(color=color)
    labels = base.mark_text(align="left", dx=3).encode(text=alt.Text("clicks:Q", format=","))
    part = [row for row in rows if row["country"] == country]
    return alt.layer(bars, labels, data=alt.Data(values=part)).properties(
        title=alt.TitleParams(country, anchor="start", fontSize=12),
        width=WIDTH,
        height=alt.Step(16),
    )


def top_urls_chart(rows: list[Row], window_label: str) -> Chart:
    title = f"Top URLs by clicks per country, {window_label}"
    countries = list(dict.fromkeys(row["country"] for row in rows))  # in clicks order
    parts = [
        _country_urls(rows, country, PALETTE[i % len(PALETTE)], i == len(countries) - 1)
        for i, country in enumerate(countries)
    ]
    chart = alt.vconcat(*parts, title=title, spacing=8).resolve_scale(x="shared")
    note = "The countries with the most clicks in the window" + (
        f"; {OTHER!r} sums the URLs of all other countries." if OTHER in countries else "."
    )
    return Chart("top-urls", title, note, _spec(chart))


def traffic_chart(rows: list[Row], day_label: str) -> Chart:
    title = f"Clicks and unique users per hour, {day_label} (UTC)"
    chart = (
        alt.Chart(alt.Data(values=rows), title=title)
        .mark_line(point=True)
        .encode(
            x=alt.X(
                "hour:O", title="hour (UTC)", scale=alt.Scale(domain=list(HOURS)), axis=HOUR_AXIS
            ),
            y=alt.Y("value:Q", title="per hour"),
            color=alt.Color("measure:N", title=None, legend=alt.Legend(orient="top")),
            tooltip=["hour_start:N", "measure:N", alt.Tooltip("value:Q", format=",")],
        )
        .properties(width=WIDTH, height=260)
    )
    note = (
        "From the hour windows' documents. Unique users are counted per URL and country and "
        "summed here: a visitor of three URLs in an hour counts three times."
    )
    return Chart("traffic-by-hour", title, note, _spec(chart))


def time_on_page_chart(rows: list[Row], country: str, window_label: str) -> Chart:
    title = f"Time on page per URL in {country}, {window_label}"
    coverage = alt.Opacity(
        "coverage:Q",
        title="coverage",
        scale=alt.Scale(domain=[0, 1], range=[0.15, 1]),
        legend=alt.Legend(format=".0%", orient="top"),
    )
    base = alt.Chart().encode(
        y=alt.Y(
            "url:N",
            sort=_by("clicks"),
            title=None,
            axis=URL_AXIS,
        ),
        tooltip=[
            "url:N",
            alt.Tooltip("clicks:Q", format=","),
            alt.Tooltip("median_s:Q", title="median (s)", format=".1f"),
            alt.Tooltip("p90_s:Q", title="p90 (s)", format=".1f"),
            alt.Tooltip("coverage:Q", format=".1%"),
        ],
    )
    p90 = base.mark_bar(color="#4c78a8").encode(
        x=alt.X("p90_s:Q", title="seconds on page (bar: p90, black tick: median)"),
        opacity=coverage,
    )
    median = base.mark_tick(color="black", thickness=3).encode(x="median_s:Q")
    label = base.mark_text(align="left", dx=4).encode(
        x="p90_s:Q", text=alt.Text("coverage:Q", format=".0%")
    )
    chart = alt.layer(p90, median, label, data=alt.Data(values=rows)).properties(
        title=title, width=WIDTH, height=alt.Step(20)
    )
    note = (
        "The URLs with most clicks in the country. Coverage (label and shade) is the share of "
        "the URL's clicks that have a time on page: a visit's last click has none, so a pale bar "
        "rests on few clicks."
    )
    return Chart("time-on-page", title, note, _spec(chart))


def landing_pages_chart(rows: list[Row], window_label: str) -> Chart:
    title = f"Top landing pages by entrances, with bounce rate, {window_label}"
    base = alt.Chart().encode(
        y=alt.Y("url:N", sort=_by("entrances"), title=None, axis=URL_AXIS),
        x=alt.X("entrances:Q", title="entrances (label: bounce rate)"),
        tooltip=[
            "url:N",
            alt.Tooltip("entrances:Q", format=","),
            alt.Tooltip("bounces:Q", format=","),
            alt.Tooltip("bounce_rate:Q", format=".1%"),
        ],
    )
    bars = base.mark_bar().encode(
        color=alt.Color(
            "bounce_rate:Q",
            title="bounce rate",
            scale=alt.Scale(domain=[0, 1], scheme="orangered"),
            legend=alt.Legend(format=".0%", orient="top"),
        )
    )
    labels = base.mark_text(align="left", dx=3).encode(text=alt.Text("bounce_rate:Q", format=".0%"))
    chart = alt.layer(bars, labels, data=alt.Data(values=rows)).properties(
        title=title, width=WIDTH, height=alt.Step(20)
    )
    note = "A bounce is a visit of one page; the rate is bounces over entrances."
    return Chart("landing-pages", title, note, _spec(chart))


def _messages_per_hour(rows: list[Row], title: str, color: alt.Color) -> alt.Chart:
    """Stacked bars of messages per hour of ingestion, coloured by ``color``'s field."""
    return (
        alt.Chart(alt.Data(values=rows), title=title)
        .mark_bar()
        .encode(
            x=alt.X(
                "hour:O",
                title="hour of ingestion (UTC)",
                scale=alt.Scale(domain=list(HOURS)),
                axis=HOUR_AXIS,
            ),
            y=alt.Y("messages:Q", title="messages", stack="zero"),
            color=color,
            tooltip=["hour_start:N", color.shorthand, alt.Tooltip("messages:Q", format=",")],
        )
        .properties(width=WIDTH, height=180)
    )


def data_quality_chart(by_status: list[Row], by_reason: list[Row], day_label: str) -> Chart:
    title = f"Data quality: messages ingested on {day_label} (UTC), per hour"
    status = _messages_per_hour(
        by_status,
        "Messages read: valid and quarantined",
        alt.Color(
            "status:N", title=None, sort=["valid", "quarantined"], legend=alt.Legend(orient="top")
        ),
    )
    reasons = _messages_per_hour(
        by_reason, "Quarantined, by reason", alt.Color("reason:N", title="reason")
    )
    chart = alt.vconcat(status, reasons, title=title).resolve_scale(color="independent")
    note = (
        "From the stream's ingest history (clickstream.ingest_history), by the time each "
        "micro-batch was written, not by the events' own time."
    )
    return Chart("data-quality", title, note, _spec(chart))
