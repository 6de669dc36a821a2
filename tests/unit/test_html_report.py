"""The HTML report without servers: the figures of each chart, the charts' data, the page."""

from __future__ import annotations

import json
import re
from pathlib import Path

from clickstream_spark.tools.html_report import figures
from clickstream_spark.tools.html_report.build import build_report
from clickstream_spark.tools.html_report.page import _script_text, render_html, write_report
from tests import report_sample as sample
from tests.report_sample import chart_values

ROOT = sample.SITE


def test_top_urls_per_country_with_the_rest_as_other() -> None:
    rows = figures.top_urls(sample.documents(), top_countries=2, top_urls=2)

    assert rows == [
        {"country": "NL", "url": f"{ROOT}/", "clicks": 500},
        {"country": "NL", "url": f"{ROOT}/cart", "clicks": 300},
        {"country": "DE", "url": f"{ROOT}/", "clicks": 400},
        {"country": "DE", "url": f"{ROOT}/deals", "clicks": 350},
        {"country": "other", "url": f"{ROOT}/", "clicks": 120},  # FR 90 + unknown 30
        {"country": "other", "url": f"{ROOT}/cart", "clicks": 60},
    ]
    assert figures.top_urls(sample.documents(), 2, 5, country="FR") == [
        {"country": "FR", "url": f"{ROOT}/", "clicks": 90},
        {"country": "FR", "url": f"{ROOT}/cart", "clicks": 60},
    ]
    assert [r["country"] for r in figures.top_urls(sample.documents(), 9, 1)] == [
        "NL",
        "DE",
        "FR",
        "unknown",
    ]  # fmt: skip  (no "other" when every country is shown)


def test_traffic_by_hour_has_every_hour_of_the_day() -> None:
    rows = figures.traffic_by_hour(sample.hourly(), sample.DAY)

    assert len(rows) == 48
    assert rows[:2] == [
        {"hour": "00:00", "hour_start": "2026-03-14T00:00:00Z", "measure": "clicks", "value": 700},
        {"hour": "00:00", "hour_start": "2026-03-14T00:00:00Z", "measure": "unique users",
         "value": 300},
    ]  # fmt: skip
    assert rows[26:28] == [
        {"hour": "13:00", "hour_start": "2026-03-14T13:00:00Z", "measure": "clicks", "value": 1150},
        {"hour": "13:00", "hour_start": "2026-03-14T13:00:00Z", "measure": "unique users",
         "value": 420},
    ]  # fmt: skip
    assert sum(r["value"] for r in rows) == 700 + 300 + 1150 + 420


def test_time_on_page_of_the_top_urls_of_one_country() -> None:
    assert figures.busiest_country(sample.documents()) == "NL"
    assert figures.time_on_page(sample.documents(), "NL", 3) == [
        {"url": f"{ROOT}/", "country": "NL", "clicks": 500, "median_s": 30.0, "p90_s": 95.5,
         "coverage": 0.9},
        {"url": f"{ROOT}/cart", "country": "NL", "clicks": 300, "median_s": 30.0, "p90_s": 95.5,
         "coverage": 0.2},
        {"url": f"{ROOT}/deals", "country": "NL", "clicks": 120, "median_s": None, "p90_s": None,
         "coverage": 0.0},
    ]  # fmt: skip


def test_landing_pages_sum_entrances_and_bounces_over_countries() -> None:
    assert figures.has_session_fields(sample.documents())
    assert not figures.has_session_fields(sample.documents(with_sessions=False))
    assert figures.landing_pages(sample.documents(), top_urls=2) == [
        {"url": f"{ROOT}/", "entrances": 402, "bounces": 132, "bounce_rate": 132 / 402},
        {"url": f"{ROOT}/deals", "entrances": 90, "bounces": 45, "bounce_rate": 0.5},
    ]
    assert figures.landing_pages(sample.documents(), 5, country="NL") == [
        {"url": f"{ROOT}/", "entrances": 200, "bounces": 80, "bounce_rate": 0.4},
        {"url": f"{ROOT}/cart", "entrances": 10, "bounces": 5, "bounce_rate": 0.5},
    ]  # /deals had no entrances in NL


def test_data_quality_per_hour_of_micro_batch_time() -> None:
    batches = sample.batches()
    by_status = figures.messages_by_hour(batches)
    by_reason = figures.quarantined_by_reason(batches)

    assert [(r["hour"], r["status"], r["messages"]) for r in by_status] == [
        ("09:00", "valid", 1800),
        ("09:00", "quarantined", 7),
        ("10:00", "valid", 500),
        ("10:00", "quarantined", 0),
        ("23:00", "valid", 1200),
        ("23:00", "quarantined", 4),
    ]
    assert [(r["hour"], r["reason"], r["messages"]) for r in by_reason] == [
        ("09:00", "malformed_json", 6),
        ("09:00", "missing_or_bad:url", 1),
        ("23:00", "missing_or_bad:url", 3),
        ("23:00", "too_large", 1),
    ]
    assert {r["hour_start"] for r in by_status + by_reason} == {
        "2026-03-14T09:00:00Z",
        "2026-03-14T10:00:00Z",
        "2026-03-14T23:00:00Z",
    }


def test_each_chart_carries_exactly_its_figures() -> None:
    docs, batches = sample.documents(), sample.batches()

    report = build_report(sample.scope(), docs, sample.hourly(), batches, ["sample"])

    values = {chart.name: chart_values(chart.spec) for chart in report.charts}
    assert list(values) == [
        "top-urls", "traffic-by-hour", "time-on-page", "landing-pages", "data-quality",
    ]  # fmt: skip
    assert values["top-urls"] == figures.top_urls(docs, 2, 2)
    assert values["traffic-by-hour"] == figures.traffic_by_hour(sample.hourly(), sample.DAY)
    assert values["time-on-page"] == figures.time_on_page(docs, "NL", 2)
    assert values["landing-pages"] == figures.landing_pages(docs, 2)
    assert values["data-quality"] == (
        figures.messages_by_hour(batches) + figures.quarantined_by_reason(batches)
    )
    assert report.summary == {
        "window": "day",
        "window_start": "2026-03-14T00:00:00Z",
        "country": None,
        "ingest_day": "2026-03-14",
        "clicks": 1850,
        "documents": 8,
        "urls": 3,
        "countries": 4,
        "batches": 4,
        "messages_read": 3511,
        "valid": 3500,
        "quarantined": 11,
    }
    assert report.skipped == []


def test_without_session_fields_the_landing_page_chart_is_skipped_with_a_note() -> None:
    docs = sample.documents(with_sessions=False)

    report = build_report(sample.scope("DE"), docs, sample.hourly(), [], ["sample"])

    assert [c.name for c in report.charts] == ["top-urls", "traffic-by-hour", "time-on-page"]
    assert [title for title, _ in report.skipped] == [
        "Top landing pages by entrances, with bounce rate",
        "Data quality",
    ]
    assert "no session fields" in report.skipped[0][1]
    assert report.summary["clicks"] == 750  # DE only


def test_the_page_inlines_its_scripts_and_data(tmp_path: Path) -> None:
    report = build_report(sample.scope(), sample.documents(), sample.hourly(), [], ["from here"])
    bundle = 'window.vegaEmbed = () => Promise.resolve(); const re = /</g; // "</script>"'

    page = render_html(report, bundle)

    assert "<script src" not in page and "<link" not in page  # nothing to fetch
    assert 'const re = /</g; // "<\\/script>"' in page  # the bundle, unable to close its element
    data = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page)
    assert data is not None
    parsed = json.loads(data.group(1))
    assert parsed["summary"] == report.summary
    assert [c["spec"] for c in parsed["charts"]] == [c.spec for c in report.charts]
    assert "Not shown: the ingest history has no micro-batch at all." in page
    assert _script_text("a</SCRIPT>b</div>") == "a<\\/SCRIPT>b</div>"

    written = write_report(report, tmp_path / "out", bundle=bundle)

    assert [p.name for p in written] == [
        "report.html", "top-urls.png", "traffic-by-hour.png", "time-on-page.png",
        "landing-pages.png",
    ]  # fmt: skip
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in written[1:])
