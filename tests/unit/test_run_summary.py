"""The aggregation's run summary as the JSON line schedulers and alerting read."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

from clickstream_spark.aggregate.run import RunSummary, append_run_record
from clickstream_spark.config import load_config

DAY = dt.datetime(2026, 3, 14)


def test_a_run_is_one_json_line_appended_to_the_configured_file(tmp_path: Path) -> None:
    target = tmp_path / "logs" / "aggregate-runs.jsonl"
    config = load_config(env={"CLICKSTREAM_AGGREGATE_RUN_SUMMARY_FILE": str(target)})
    hours = [DAY + dt.timedelta(hours=h) for h in range(24)]
    summary = RunSummary(
        "hour", hours, empty_starts=hours[:2], rows_in=5000, documents_written=900,
        documents_recomputed=700, top_urls=[("/", 10)], seconds=12.34567,
    )  # fmt: skip

    append_run_record(config, summary.record())
    append_run_record(config, RunSummary("day", []).record())
    append_run_record(config, {"status": "failed", "error": "Elasticsearch is unreachable: x"})

    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert [set(line) - {"at"} for line in lines][2] == {"status", "error"}
    for line in lines:
        assert dt.datetime.fromisoformat(line.pop("at")) <= dt.datetime.now(dt.UTC)
    assert lines == [
        {
            "status": "ok", "window": "hour", "windows": 24,
            "first_window": "2026-03-14T00:00:00Z", "last_window": "2026-03-14T23:00:00Z",
            "empty_windows": 2, "rows_read": 5000, "documents_written": 900,
            "documents_recomputed": 700, "seconds": 12.346,
        },
        {
            "status": "ok", "window": "day", "windows": 0, "first_window": None,
            "last_window": None, "empty_windows": 0, "rows_read": 0, "documents_written": 0,
            "documents_recomputed": 0, "seconds": 0.0,
        },
        {"status": "failed", "error": "Elasticsearch is unreachable: x"},
    ]  # fmt: skip


def test_an_unwritable_summary_file_does_not_fail_the_run(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    config = load_config(env={})
    aggregate = dataclasses.replace(config.aggregate, run_summary_file=str(blocker / "x.jsonl"))

    append_run_record(dataclasses.replace(config, aggregate=aggregate), {"status": "ok"})

    assert blocker.read_text() == ""
