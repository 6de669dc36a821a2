"""The stream's monitoring without servers: its ingest history row, its Prometheus metrics."""

from __future__ import annotations

import datetime as dt

import pytest
from prometheus_client import generate_latest

from clickstream_spark.config import ConfigError, load_config, with_overrides
from clickstream_spark.ingest.batch import BatchSummary
from clickstream_spark.ingest.contract import REASONS
from clickstream_spark.ingest.history import NO_QUERY, history_values
from clickstream_spark.ingest.prometheus import IngestMetrics
from clickstream_spark.schema import INGEST_HISTORY_SCHEMA

SUMMARY = BatchSummary(
    batch_id=3,
    offsets={0: (0, 9)},
    rows=11,
    valid=6,
    quarantined=4,
    windows=2,
    seconds=1.5,
    by_reason={"malformed_json": 3, "missing_or_bad:url": 1},
    erased=1,
)


def test_history_values_hold_the_batch_summary() -> None:
    batch_time = dt.datetime(2026, 3, 14, 23, 59, 58, 123000)

    assert history_values(SUMMARY, batch_time, None) == (
        dt.date(2026, 3, 14),
        NO_QUERY,  # written outside a streaming query
        3,
        batch_time,
        11,
        6,
        4,
        {"malformed_json": 3, "missing_or_bad:url": 1},
        1,
        2,
        1.5,
    )
    assert len(history_values(SUMMARY, batch_time, "q")) == len(INGEST_HISTORY_SCHEMA.fields)
    assert history_values(SUMMARY, batch_time, "q")[1] == "q"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def samples(metrics: IngestMetrics) -> dict[str, float]:
    """'name{labels}' -> value of every exported sample."""
    found = {}
    for line in generate_latest(metrics.registry).decode().splitlines():
        if not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            found[name] = float(value)
    return found


def progress(batch_id: int, **extra: object) -> dict:
    return {
        "name": "clickstream_ingest",
        "batchId": batch_id,
        "inputRowsPerSecond": 120.5,
        "processedRowsPerSecond": 80.25,
        "durationMs": {"triggerExecution": 1500, "addBatch": 1200},
        "sources": [
            {
                "description": "KafkaV2[Subscribe[clickstream_topic]]",
                "metrics": {
                    "avgOffsetsBehindLatest": "3.5",
                    "maxOffsetsBehindLatest": "7",
                    "minOffsetsBehindLatest": "0",
                },
            }
        ],
        **extra,
    }


def test_a_batch_counts_once_its_progress_is_reported() -> None:
    clock = Clock()
    metrics = IngestMetrics(clock)
    before = samples(metrics)
    assert before["clickstream_ingest_rows_read_total"] == 0
    assert before["clickstream_ingest_seconds_since_last_batch"] == 0
    assert {f'clickstream_ingest_rows_quarantined_total{{reason="{r}"}}' for r in REASONS} <= set(
        before
    )  # every reason is there from the start, at 0

    metrics.batch_written(SUMMARY)
    clock.now = 1004.0
    assert samples(metrics)["clickstream_ingest_rows_read_total"] == 0  # not committed yet
    metrics.on_progress(progress(3))
    clock.now = 1010.0
    metrics.on_progress(progress(3, inputRowsPerSecond=0.0))  # a repeated progress adds nothing

    after = samples(metrics)
    assert after["clickstream_ingest_batches_total"] == 1
    assert after["clickstream_ingest_rows_read_total"] == 11
    assert after["clickstream_ingest_rows_valid_total"] == 6
    assert after["clickstream_ingest_rows_erased_total"] == 1
    assert after['clickstream_ingest_rows_quarantined_total{reason="malformed_json"}'] == 3
    assert after['clickstream_ingest_rows_quarantined_total{reason="missing_or_bad:url"}'] == 1
    assert after['clickstream_ingest_rows_quarantined_total{reason="empty_value"}'] == 0
    assert after["clickstream_ingest_windows_marked_total"] == 2
    assert after["clickstream_ingest_input_rows_per_second"] == 0.0
    assert after["clickstream_ingest_processed_rows_per_second"] == 80.25
    assert after["clickstream_ingest_batch_duration_seconds_count"] == 1
    assert after["clickstream_ingest_batch_duration_seconds_sum"] == 1.5
    assert after['clickstream_ingest_batch_duration_seconds_bucket{le="2.0"}'] == 1
    assert after['clickstream_ingest_batch_duration_seconds_bucket{le="1.0"}'] == 0
    assert after['clickstream_ingest_kafka_offsets_behind_latest{stat="max"}'] == 7
    assert after['clickstream_ingest_kafka_offsets_behind_latest{stat="avg"}'] == 3.5
    assert after['clickstream_ingest_kafka_offsets_behind_latest{stat="min"}'] == 0
    assert after["clickstream_ingest_last_batch_timestamp_seconds"] == 1004.0
    assert after["clickstream_ingest_seconds_since_last_batch"] == 6.0
    assert not any(name.endswith("_created") for name in after)


def test_the_prometheus_address_is_host_and_port_or_off() -> None:
    config = load_config(env={})
    assert config.monitoring.host_port == ("127.0.0.1", 9464)
    env = {"CLICKSTREAM_MONITORING_PROMETHEUS_ADDRESS": "[::1]:0"}
    assert load_config(env=env).monitoring.host_port == ("::1", 0)
    off = with_overrides(config, "monitoring", prometheus_address="off")
    assert off.monitoring.host_port is None
    for bad in ("9464", "localhost:", "localhost:http", ":9464", "host:70000"):
        with pytest.raises(ConfigError, match=r"monitoring\.prometheus_address"):
            with_overrides(config, "monitoring", prometheus_address=bad)
