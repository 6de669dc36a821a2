"""The report page in a real browser: Debian's Chromium, headless, opens it from disk.

Built from a small sample with every chart (session fields included), so that each chart's
drawing is checked; tests/integration/test_report_and_metrics.py opens the report of a real run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from clickstream_spark.tools.html_report.build import Report, build_report
from clickstream_spark.tools.html_report.page import render_html, vega_bundle
from tests import report_sample as sample
from tests.browser.chromium import Opened, open_page, painted_share, require_chromium

# Axis titles each chart must show, in drawing order.
AXIS_TITLES = {
    "top-urls": ["clicks"],
    "traffic-by-hour": ["hour (UTC)", "per hour"],
    "time-on-page": ["seconds on page (bar: p90, black tick: median)"],
    "landing-pages": ["entrances (label: bounce rate)"],
    "data-quality": ["hour of ingestion (UTC)", "messages"] * 2,
}


@pytest.fixture(scope="module")
def bundle() -> str:
    require_chromium()
    return vega_bundle()


def check_page(report: Report, page: Path, screenshot: Path) -> Opened:
    """The page of ``report`` draws every chart with its titles and axes, quietly, offline."""
    opened = open_page(page, screenshot)

    assert opened.errors == []
    assert [kind for kind, _ in opened.console] == []  # no warnings either
    assert opened.requests == [page.resolve().as_uri()]  # nothing fetched but the page itself
    assert opened.rendered == str(len(report.charts))
    assert [c["id"] for c in opened.charts] == [f"chart-{c.name}" for c in report.charts]
    for chart, drawn in zip(report.charts, opened.charts, strict=True):
        assert drawn["svg"], chart.name
        assert drawn["marks"] > 0, chart.name
        assert chart.title in drawn["titles"], (chart.name, drawn["titles"])
        assert drawn["axis_titles"] == AXIS_TITLES[chart.name], chart.name
    share, colours = painted_share(screenshot)
    assert share > 0.03 and colours > 50, (share, colours)  # text and coloured marks
    return opened


def test_every_chart_is_drawn_in_chromium(tmp_path: Path, bundle: str) -> None:
    report = build_report(
        sample.scope(), sample.documents(), sample.hourly(), sample.batches(), ["a sample"]
    )
    page = tmp_path / "report.html"
    page.write_text(render_html(report, bundle), encoding="utf-8")

    opened = check_page(report, page, tmp_path / "report.png")

    labels = {c["id"]: c["axis_labels"] for c in opened.charts}
    assert "shop.example.com/cart" in labels["chart-top-urls"]  # URLs without their scheme
    assert "13:00" in labels["chart-traffic-by-hour"]


def test_a_report_without_session_fields_says_what_it_left_out(tmp_path: Path, bundle: str) -> None:
    docs = sample.documents(with_sessions=False)
    report = build_report(sample.scope("FR"), docs, sample.hourly(), [], ["a sample"])
    page = tmp_path / "report.html"
    page.write_text(render_html(report, bundle), encoding="utf-8")

    check_page(report, page, tmp_path / "report.png")
    assert "Not shown: the documents have no session fields" in page.read_text()
