"""What operators and analysts see, on the real stack: the stream's Prometheus endpoint scraped
while it runs, the aggregation's run-summary lines, and the report of the day, every number of
which must equal the store it came from, opened in Chromium.

The tests share one stream (started, scraped, stopped by the ``streamed`` fixture) and one
aggregation and report (the ``report`` fixture).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cassandra.cluster import Session
from elasticsearch import Elasticsearch

from clickstream_spark.config import PROJECT_ROOT
from clickstream_spark.ingest.contract import REASONS
from clickstream_spark.tools.html_report.build import Report
from clickstream_spark.tools.html_report.charts import Chart
from tests.browser.chromium import require_chromium
from tests.browser.test_report_page import check_page
from tests.integration.pipeline import (
    OpenPipeline,
    Pipeline,
    es_documents,
    expected_events,
    kill_hard,
)
from tests.report_sample import chart_values

DAY = dt.date(2026, 5, 20)
EVENTS = 6000
TOP_COUNTRIES, TOP_URLS = 5, 8  # conf/clickstream.toml [report]
SCRAPE_TIMEOUT_S = 420
_ADDRESS = re.compile(r"Prometheus metrics on (http://\S+/metrics)")


@dataclass
class Streamed:
    sent: list[dict]
    metrics: dict[str, float]  # the stream's endpoint: 'name{labels}' -> value
    spark_metrics: str  # Spark's PrometheusServlet on the driver UI


@pytest.fixture(scope="module")
def pipeline(
    tmp_path_factory: pytest.TempPathFactory, run_id: str, open_pipeline: OpenPipeline
) -> Iterator[Pipeline]:
    with open_pipeline(f"obs_{run_id}", tmp_path_factory.mktemp("observe")) as p:
        yield p


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def samples(text: str) -> dict[str, float]:
    return {
        name: float(value)
        for name, value in (line.rsplit(" ", 1) for line in text.splitlines() if line[:1] != "#")
    }


def wait_for_address(job: subprocess.Popen, log: Path) -> str:
    deadline = time.monotonic() + SCRAPE_TIMEOUT_S
    while not (found := _ADDRESS.search(log.read_text())):
        assert job.poll() is None, f"the stream exited:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, "no Prometheus address in the stream's log"
        time.sleep(0.5)
    return found.group(1)


@pytest.fixture(scope="module")
def streamed(pipeline: Pipeline) -> Iterator[Streamed]:
    """A day of messages through a running stream, its endpoints scraped once all are in."""
    sent = pipeline.generate("day", EVENTS, 31, "--day", DAY.isoformat(), "--bad-fraction", "0.03")
    ui_port = free_port()
    log = pipeline.work / "stream.log"
    job = pipeline.start(
        "stream",
        "--trigger-interval", "2 seconds",
        "--max-offsets-per-trigger", "2500",
        "--prometheus-address", "127.0.0.1:0",
        log_path=log,
        conf={"spark.ui.enabled": "true", "spark.ui.port": str(ui_port)},
    )  # fmt: skip
    try:
        url = wait_for_address(job, log)
        deadline = time.monotonic() + SCRAPE_TIMEOUT_S
        while (metrics := samples(scrape(url)))["clickstream_ingest_rows_read_total"] < len(sent):
            assert job.poll() is None, f"the stream exited:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"not every message counted: {metrics}"
            time.sleep(1)
        spark_metrics = scrape(f"http://127.0.0.1:{ui_port}/metrics/prometheus/")
        assert job.poll() is None  # scraped while the stream runs
        yield Streamed(sent, metrics, spark_metrics)
    finally:
        kill_hard(job)


def test_the_scraped_counters_equal_what_landed_in_cassandra(
    streamed: Streamed, pipeline: Pipeline, cassandra: Session
) -> None:
    metrics, keyspace = streamed.metrics, pipeline.keyspace
    history = list(
        cassandra.execute(
            f"SELECT rows, valid, quarantined, quarantined_by_reason, windows "
            f"FROM {keyspace}.ingest_history"
        )
    )
    events = cassandra.execute(f"SELECT count(*) FROM {keyspace}.events").one()[0]
    by_reason = Counter(
        r.reason for r in cassandra.execute(f"SELECT reason FROM {keyspace}.quarantine")
    )

    assert metrics["clickstream_ingest_rows_read_total"] == len(streamed.sent)
    assert metrics["clickstream_ingest_rows_valid_total"] == events
    assert events == len(expected_events(streamed.sent))
    for reason in REASONS:
        name = f'clickstream_ingest_rows_quarantined_total{{reason="{reason}"}}'
        assert metrics[name] == by_reason[reason], reason
    assert sum(by_reason.values()) == len(streamed.sent) - events
    # The ingest history holds the same counts, batch by batch.
    assert metrics["clickstream_ingest_batches_total"] == len(history) >= 3
    assert metrics["clickstream_ingest_batch_duration_seconds_count"] == len(history)
    assert sum(row.rows for row in history) == len(streamed.sent)
    assert sum(row.valid for row in history) == events
    assert sum(row.quarantined for row in history) == sum(by_reason.values())
    history_reasons: Counter[str] = Counter()
    for row in history:
        history_reasons.update(dict(row.quarantined_by_reason or {}))
    assert history_reasons == by_reason
    assert metrics["clickstream_ingest_windows_marked_total"] == sum(r.windows for r in history)
    # Gauges: the last batch read up to the end of the topic; rates and the clock are there.
    for stat in ("min", "avg", "max"):
        assert metrics[f'clickstream_ingest_kafka_offsets_behind_latest{{stat="{stat}"}}'] == 0
    assert metrics["clickstream_ingest_processed_rows_per_second"] > 0
    assert "clickstream_ingest_input_rows_per_second" in metrics
    assert metrics["clickstream_ingest_seconds_since_last_batch"] >= 0


def test_spark_serves_its_own_streaming_metrics(streamed: Streamed) -> None:
    names = {line.split("{")[0] for line in streamed.spark_metrics.splitlines()}
    for metric in ("inputRate_total", "processingRate_total", "latency"):
        name = f"metrics_clickstream_driver_spark_streaming_clickstream_ingest_{metric}_Value"
        assert name in names, sorted(n for n in names if "streaming" in n)


@dataclass
class Rendered:
    page: Path
    data: dict[str, Any]  # the page's embedded summary and chart specifications
    output: str


@pytest.fixture(scope="module")
def report(streamed: Streamed, pipeline: Pipeline) -> Rendered:
    pipeline.run("aggregate")
    out = pipeline.work / "report"
    command = [sys.executable, "-m", "clickstream_spark.tools.html_report", "--window", "day",
               "--date", DAY.isoformat(), "--out", str(out)]  # fmt: skip
    done = subprocess.run(
        command, cwd=PROJECT_ROOT, env=pipeline.env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    page = out / "report.html"
    found = re.search(r'id="report-data">(.*?)</script>', page.read_text(encoding="utf-8"))
    assert found is not None
    return Rendered(page, json.loads(found.group(1)), done.stdout)


def test_each_aggregation_run_wrote_its_summary_line(
    report: Rendered, streamed: Streamed, pipeline: Pipeline, es: Elasticsearch
) -> None:
    lines = (pipeline.work / "aggregate-runs.jsonl").read_text().splitlines()
    runs = {run["window"]: run for run in map(json.loads, lines)}
    documents = es_documents(es, pipeline.alias).values()
    events = len(expected_events(streamed.sent))

    assert len(lines) == 2 and set(runs) == {"hour", "day"}
    for kind, run in runs.items():
        assert run["status"] == "ok"
        assert run["documents_written"] == sum(d["window"] == kind for d in documents)
        assert run["rows_read"] == events  # every window of the day, look-ahead included
        assert run["seconds"] > 0
        # Windows with documents, and marked windows left empty (a look-back or look-ahead may
        # mark a window beside the generated day's, where none of its events lands).
        published = {d["window_start"] for d in documents if d["window"] == kind}
        assert run["windows"] - run["empty_windows"] == len(published), kind
        assert run["first_window"] <= min(published) <= max(published) <= run["last_window"]
    assert {d["window_start"] for d in documents if d["window"] == "day"} == {f"{DAY}T00:00:00Z"}


def test_every_number_in_the_report_equals_its_store(
    report: Rendered, streamed: Streamed, pipeline: Pipeline, es: Elasticsearch, cassandra: Session
) -> None:
    charts = {chart["name"]: chart_values(chart["spec"]) for chart in report.data["charts"]}
    docs = es_documents(es, pipeline.alias).values()
    day = [d for d in docs if d["window"] == "day" and d["window_start"] == f"{DAY}T00:00:00Z"]
    by_key = {(d["url"], d["country"]): d for d in day}
    summary = report.data["summary"]
    assert summary["clicks"] == sum(d["clicks"] for d in day)
    assert summary["documents"] == len(day)
    assert summary["urls"] == len({d["url"] for d in day})
    assert summary["countries"] == len({d["country"] for d in day})

    # Top URLs per country: each country's own documents, "other" from ES sums.
    leaders = top_countries(es, pipeline.alias)
    groups = list(dict.fromkeys(row["country"] for row in charts["top-urls"]))
    assert groups == [*leaders, "other"]
    for group in leaders:
        rows = [(r["url"], r["clicks"]) for r in charts["top-urls"] if r["country"] == group]
        ranked = sorted(
            (d for d in day if d["country"] == group), key=lambda d: (-d["clicks"], d["url"])
        )
        assert rows == [(d["url"], d["clicks"]) for d in ranked[:TOP_URLS]]
    for row in (r for r in charts["top-urls"] if r["country"] == "other"):
        assert row["clicks"] == clicks_elsewhere(es, pipeline.alias, row["url"], leaders)

    # Clicks and unique users per hour: the hour documents' sums.
    per_hour: dict[str, Counter[str]] = defaultdict(Counter)
    for d in docs:
        if d["window"] == "hour":
            per_hour[d["window_start"]].update(clicks=d["clicks"], users=d["unique_users"])
    for row in charts["traffic-by-hour"]:
        field = "clicks" if row["measure"] == "clicks" else "users"
        assert row["value"] == per_hour[row["hour_start"]][field], row
    assert sum(r["value"] for r in charts["traffic-by-hour"] if r["measure"] == "clicks") == sum(
        d["clicks"]
        for d in docs
        if d["window"] == "hour" and d["window_start"].startswith(str(DAY))
    )

    # Time on page: copies of the documents' own figures.
    for row in charts["time-on-page"]:
        doc = by_key[(row["url"], row["country"])]
        assert (row["clicks"], row["median_s"], row["p90_s"], row["coverage"]) == (
            doc["clicks"], doc["median_time_on_page_s"], doc["p90_time_on_page_s"],
            doc["time_on_page_coverage"],
        )  # fmt: skip
    assert charts["time-on-page"][0]["country"] == leaders[0]

    # Landing pages, once the documents carry session fields.
    if "landing-pages" in charts:
        for row in charts["landing-pages"]:
            mine = [d for d in day if d["url"] == row["url"]]
            assert row["entrances"] == sum(d["entrances"] for d in mine)
            assert row["bounces"] == sum(d["bounces"] for d in mine)
    else:
        assert "entrances" not in next(iter(day))
        assert "Not shown: the documents have no session fields" in report.page.read_text()

    # Data quality: the ingest history of the day the stream ran, per hour of batch time.
    ingest_day = dt.date.fromisoformat(summary["ingest_day"])
    history = list(cassandra.execute(
        f"SELECT batch_time, rows, valid, quarantined, quarantined_by_reason "
        f"FROM {pipeline.keyspace}.ingest_history WHERE day = %s", (ingest_day,)
    ))  # fmt: skip
    assert summary["batches"] == len(history)
    assert summary["messages_read"] == sum(r.rows for r in history) == len(streamed.sent)
    assert summary["valid"] == sum(r.valid for r in history)
    assert summary["quarantined"] == sum(r.quarantined for r in history)
    hourly: dict[str, Counter[str]] = defaultdict(Counter)
    for r in history:
        hour = f"{r.batch_time:%Y-%m-%dT%H}:00:00Z"
        hourly[hour].update(valid=r.valid, quarantined=r.quarantined)
        hourly[hour].update({f"reason {k}": v for k, v in (r.quarantined_by_reason or {}).items()})
    shown: dict[str, Counter[str]] = defaultdict(Counter)
    for row in charts["data-quality"]:
        key = row["status"] if "status" in row else f"reason {row['reason']}"
        shown[row["hour_start"]][key] += row["messages"]
    assert shown == hourly


def top_countries(es: Elasticsearch, alias: str) -> list[str]:
    """The countries with most clicks in the day window, by an Elasticsearch aggregation."""
    response = es.search(
        index=alias,
        size=0,
        query={"bool": {"filter": [{"term": {"window": "day"}},
                                   {"term": {"window_start": f"{DAY}T00:00:00Z"}}]}},
        aggs={"countries": {"terms": {"field": "country", "size": 1000,
                                      "order": [{"clicks": "desc"}, {"_key": "asc"}]},
                            "aggs": {"clicks": {"sum": {"field": "clicks"}}}}},
    )  # fmt: skip
    return [b["key"] for b in response["aggregations"]["countries"]["buckets"][:TOP_COUNTRIES]]


def clicks_elsewhere(es: Elasticsearch, alias: str, url: str, countries: list[str]) -> int:
    """The day's clicks of ``url`` outside ``countries``, summed by Elasticsearch."""
    response = es.search(
        index=alias,
        size=0,
        query={"bool": {
            "filter": [{"term": {"window": "day"}}, {"term": {"window_start": f"{DAY}T00:00:00Z"}},
                       {"term": {"url": url}}],
            "must_not": [{"terms": {"country": countries}}],
        }},
        aggs={"clicks": {"sum": {"field": "clicks"}}},
    )  # fmt: skip
    return int(response["aggregations"]["clicks"]["value"])


def test_the_report_opens_in_chromium(report: Rendered) -> None:
    require_chromium()
    charts = [Chart(c["name"], c["title"], "", c["spec"]) for c in report.data["charts"]]
    shown = Report("", [], report.data["summary"], charts)

    check_page(shown, report.page, report.page.parent.parent / "report-screenshot.png")
    assert {c.name for c in charts} >= {
        "top-urls",
        "traffic-by-hour",
        "time-on-page",
        "data-quality",
    }
    assert re.search(
        r"report: \S+report\.html \(\d charts, PNGs beside it\) in \d+\.\ds", report.output
    )
    assert sorted(p.name for p in report.page.parent.glob("*.png")) == sorted(
        f"{c.name}.png" for c in charts
    )
