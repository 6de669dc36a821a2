"""The stream's health in Prometheus' text format, served by the driver while the stream runs.

The counters move when Spark reports a micro-batch's progress, that is once the batch is
committed: ``write_batch`` hands each :class:`BatchSummary` over (:meth:`IngestMetrics.
batch_written`) and a ``StreamingQueryListener`` adds it up on the batch's progress event, with
the progress' own figures (rates, duration, Kafka lag). So the counters hold exactly what the
committed batches wrote to Cassandra (the same numbers as the ingest history and the log lines).
Spark's own streaming metrics (``spark.sql.streaming.metricsEnabled``) are served beside these by
its PrometheusServlet on the driver UI (conf/spark/spark-defaults.conf).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from pyspark.sql import SparkSession
from pyspark.sql.streaming import StreamingQueryListener

from clickstream_spark.config import Config
from clickstream_spark.ingest.batch import BatchSummary
from clickstream_spark.ingest.contract import REASONS

log = logging.getLogger(__name__)

NAMESPACE = "clickstream_ingest"
# Spark's Kafka source reports, per micro-batch, how far its end offsets are behind the latest
# ones over the topic's partitions (SourceProgress.metrics).
LAG_STATS = ("min", "avg", "max")
DURATION_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)


class IngestMetrics:
    """The stream's metrics, in a registry of their own (nothing else is exported)."""

    def __init__(self, clock: Any = time.time) -> None:
        prometheus_client.disable_created_metrics()  # one series per counter: no *_created
        self.registry = CollectorRegistry()
        self._clock = clock
        self._lock = threading.Lock()
        self._written: dict[int, BatchSummary] = {}
        self._last_batch_at = clock()  # the start, until a batch is committed
        common = {"namespace": NAMESPACE, "registry": self.registry}
        self.batches = Counter("batches", "Micro-batches committed.", **common)
        self.rows_read = Counter("rows_read", "Kafka messages read by committed batches.", **common)
        self.rows_valid = Counter("rows_valid", "Messages written to the events table.", **common)
        self.rows_quarantined = Counter(
            "rows_quarantined", "Messages written to the quarantine table.", ["reason"], **common
        )
        self.rows_erased = Counter(
            "rows_erased",
            "Messages of erased users (events, bad messages naming them), not stored.",
            **common,
        )
        for reason in REASONS:  # every reason exported from the start, at 0, for ratios
            self.rows_quarantined.labels(reason)
        self.windows_marked = Counter(
            "windows_marked", "Hour and day windows marked as changed.", **common
        )
        self.input_rate = Gauge(
            "input_rows_per_second", "Rate at which the last batch's messages arrived.", **common
        )
        self.processing_rate = Gauge(
            "processed_rows_per_second", "Rate at which the last batch was processed.", **common
        )
        self.batch_duration = Histogram(
            "batch_duration_seconds",
            "Duration of committed batches (Spark's triggerExecution).",
            buckets=DURATION_BUCKETS,
            **common,
        )
        self.kafka_lag = Gauge(
            "kafka_offsets_behind_latest",
            "Offsets the last batch ended behind the latest ones, over the topic's partitions.",
            ["stat"],
            **common,
        )
        self.last_batch = Gauge(
            "last_batch_timestamp_seconds",
            "Unix time of the last committed batch (of the start before the first).",
            **common,
        )
        self.last_batch.set_function(lambda: self._last_batch_at)
        self.since_last_batch = Gauge(
            "seconds_since_last_batch",
            "Seconds since the last committed batch (since the start before the first).",
            **common,
        )
        self.since_last_batch.set_function(lambda: self._clock() - self._last_batch_at)

    def batch_written(self, summary: BatchSummary) -> None:
        """A batch's writes are done; it counts once Spark reports it (after its commit)."""
        with self._lock:
            self._written[summary.batch_id] = summary

    def on_progress(self, progress: dict[str, Any]) -> None:
        """A query progress (``StreamingQueryProgress.json``, parsed) of the stream's query."""
        with self._lock:
            summary = self._written.pop(progress["batchId"], None)
        if summary is not None:  # progress events of triggers without data carry no batch
            self.batches.inc()
            self.rows_read.inc(summary.rows)
            self.rows_valid.inc(summary.valid)
            self.rows_erased.inc(summary.erased)
            for reason, count in summary.by_reason.items():
                self.rows_quarantined.labels(reason).inc(count)
            self.windows_marked.inc(summary.windows)
            duration_ms = progress.get("durationMs", {}).get("triggerExecution")
            if duration_ms is not None:
                self.batch_duration.observe(duration_ms / 1000)
            self._last_batch_at = self._clock()
        # Spark leaves a rate out of the JSON when it is not a number (no time elapsed).
        self.input_rate.set(progress.get("inputRowsPerSecond", 0.0))
        self.processing_rate.set(progress.get("processedRowsPerSecond", 0.0))
        for source in progress.get("sources", []):
            lag = source.get("metrics") or {}
            for stat in LAG_STATS:
                value = lag.get(f"{stat}OffsetsBehindLatest")
                if value is not None:
                    self.kafka_lag.labels(stat).set(float(value))


class _ProgressListener(StreamingQueryListener):
    """Feeds :class:`IngestMetrics` from the progress events of the query named ``query_name``."""

    def __init__(self, metrics: IngestMetrics, query_name: str) -> None:
        self._metrics = metrics
        self._query_name = query_name

    def onQueryStarted(self, event: Any) -> None:
        pass

    def onQueryProgress(self, event: Any) -> None:
        try:
            progress = json.loads(event.progress.json)
            if progress.get("name") == self._query_name:
                self._metrics.on_progress(progress)
        except Exception:  # a metrics bug must not disturb Spark's listener bus
            log.exception("Prometheus metrics: progress event not counted")

    def onQueryIdle(self, event: Any) -> None:
        pass

    def onQueryTerminated(self, event: Any) -> None:
        pass


def serve_metrics(spark: SparkSession, config: Config) -> IngestMetrics | None:
    """Serve the stream's metrics on ``[monitoring] prometheus_address`` and feed them from the
    query's progress; None when serving is off or the address cannot be bound (the stream goes
    on: its data matters more than its metrics, and the log says why)."""
    where = config.monitoring.host_port
    if where is None:
        log.info("Prometheus endpoint off ([monitoring] prometheus_address)")
        return None
    host, port = where
    metrics = IngestMetrics()
    try:
        server, _ = prometheus_client.start_http_server(port, addr=host, registry=metrics.registry)
    except OSError as exc:
        log.warning("Prometheus endpoint not served: cannot listen on %s:%d: %s", host, port, exc)
        return None
    shown = f"[{host}]" if ":" in host else host
    log.info("Prometheus metrics on http://%s:%d/metrics", shown, server.server_address[1])
    spark.streams.addListener(_ProgressListener(metrics, config.stream.query_name))
    return metrics
