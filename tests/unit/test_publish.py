from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from clickstream_spark.aggregate import publish as publish_module
from clickstream_spark.aggregate.publish import (
    DOCUMENT_FIELDS,
    ID_COLUMN,
    INDEX_COLUMN,
    PublishError,
    carried_over,
    publish,
    shelf_column,
    shelf_of,
    to_documents,
    with_routing,
)
from clickstream_spark.config import ElasticsearchConfig
from clickstream_spark.schema import METRICS_SCHEMA
from clickstream_spark.windows import Window

T = dt.datetime
COMPUTED = T(2026, 3, 16, 4, 5, 6)


def metrics_rows(spark: SparkSession, *keys: tuple[str, dt.datetime, str, str]):
    values = (3, 2, 10.0, 9.0, 20.0, 0.5, 2, 2, 1, 0.5, 2 / 3)
    rows = [(kind, start, url, c, *values) for kind, start, url, c in keys]
    return spark.createDataFrame(rows, METRICS_SCHEMA)


def test_shelves_group_hours_by_day_and_days_by_month(spark: SparkSession) -> None:
    assert shelf_of(Window("hour", T(2026, 3, 14, 23))) == "hour-2026.03.14"
    assert shelf_of(Window("day", T(2026, 3, 14))) == "day-2026.03"
    windows = [("hour", T(2026, 3, 14, 23)), ("day", T(2026, 12, 31)), ("hour", T(2026, 1, 1))]
    frame = spark.createDataFrame(windows, "window string, window_start timestamp")
    shelves = frame.select(shelf_column(F.col("window"), F.col("window_start")))
    got = [r[0] for r in shelves.collect()]
    assert got == [shelf_of(Window(k, s)) for k, s in windows]  # type: ignore[arg-type]


def sha256_40(key: str) -> str:
    """A document id as the published indices hold it: the first 40 hex digits of SHA-256."""
    return hashlib.sha256(key.encode()).hexdigest()[:40]


def test_documents_are_routed_with_deterministic_ids_and_iso_dates(spark: SparkSession) -> None:
    metrics = metrics_rows(
        spark,
        ("hour", T(2026, 3, 14, 23), "/a", "FR"),
        ("hour", T(2026, 3, 14, 23), "/a", "DE"),
        ("day", T(2026, 3, 14), "/a", "FR"),
    )
    indices = {"hour-2026.03.14": "idx-hour", "day-2026.03": "idx-day"}
    routed = with_routing(to_documents(metrics, COMPUTED), indices).collect()
    again = with_routing(to_documents(metrics, COMPUTED), indices).collect()

    assert [r[INDEX_COLUMN] for r in routed] == ["idx-hour", "idx-hour", "idx-day"]
    ids = [r[ID_COLUMN] for r in routed]
    assert ids == [
        sha256_40("hour\x012026-03-14T23:00:00Z\x01/a\x01FR"),
        sha256_40("hour\x012026-03-14T23:00:00Z\x01/a\x01DE"),
        sha256_40("day\x012026-03-14T00:00:00Z\x01/a\x01FR"),
    ]
    assert ids == [r[ID_COLUMN] for r in again]
    assert routed[0]["window_start"] == "2026-03-14T23:00:00Z"
    assert routed[0]["computed_at"] == "2026-03-16T04:05:06Z"
    assert tuple(routed[0].asDict())[: len(DOCUMENT_FIELDS)] == DOCUMENT_FIELDS


def test_carried_over_keeps_only_windows_not_recomputed(spark: SparkSession) -> None:
    previous = to_documents(
        metrics_rows(
            spark,
            ("hour", T(2026, 3, 14, 7), "/a", "FR"),
            ("hour", T(2026, 3, 14, 8), "/a", "FR"),
            ("hour", T(2026, 3, 14, 8), "/b", "FR"),
            ("day", T(2026, 3, 14), "/a", "FR"),
        ),
        COMPUTED,
    )
    kept = carried_over(previous, [Window("hour", T(2026, 3, 14, 8)), Window("day", T(2026, 3, 1))])
    expected = to_documents(
        metrics_rows(
            spark, ("hour", T(2026, 3, 14, 7), "/a", "FR"), ("day", T(2026, 3, 14), "/a", "FR")
        ),
        COMPUTED,
    )
    assertDataFrameEqual(kept, expected)


class FakeIndices:
    """The index API surface publish() uses, on an empty cluster with the strict template."""

    def __init__(self, fail_deletes: bool = False) -> None:
        self.created: list[str] = []
        self.deleted: list[str] = []
        self.alias_actions: list[list[dict]] = []
        self.fail_deletes = fail_deletes

    def exists(self, index: str) -> bool:
        return False

    def exists_alias(self, name: str) -> bool:
        return False

    def get_alias(self, name: str) -> dict:
        return {}

    def get(self, index: str, expand_wildcards: str) -> dict:
        return {}

    def create(self, index: str) -> None:
        self.created.append(index)

    def get_mapping(self, index: str) -> dict:
        properties = {field: {} for field in DOCUMENT_FIELDS}
        return {index: {"mappings": {"dynamic": "strict", "properties": properties}}}

    def delete(self, index: str, ignore_unavailable: bool = False) -> None:
        if self.fail_deletes:
            raise ConnectionRefusedError("Elasticsearch is gone")
        self.deleted.append(index)

    def update_aliases(self, actions: list[dict]) -> None:
        self.alias_actions.append(actions)


class FakeClient:
    def __init__(self, indices: FakeIndices) -> None:
        self.indices = indices


ES_CONFIG = ElasticsearchConfig(
    nodes="127.0.0.1", port=9200, index="results", wan_only=True, batch_size_entries=1000
)


@pytest.mark.parametrize("server_gone", [False, True])
def test_a_failed_write_publishes_nothing_and_says_readers_keep_the_previous_result(
    spark: SparkSession, monkeypatch: pytest.MonkeyPatch, server_gone: bool
) -> None:
    written = RuntimeError("EsHadoopNoNodesLeftException: all nodes failed")

    def failing_write(routed: object) -> None:
        raise written

    monkeypatch.setattr(publish_module, "write_documents", failing_write)
    indices = FakeIndices(fail_deletes=server_gone)
    windows = [Window("hour", T(2026, 3, 14, 23)), Window("hour", T(2026, 3, 14, 22))]
    metrics = metrics_rows(spark, ("hour", T(2026, 3, 14, 23), "/a", "FR"))

    with pytest.raises(PublishError) as raised:
        publish(spark, FakeClient(indices), ES_CONFIG, metrics, windows, COMPUTED)  # type: ignore[arg-type]

    assert str(raised.value) == (
        "2 hour window(s) not published (the alias results still serves the previous result; "
        "rerun to publish them)"
    )
    assert raised.value.__cause__ is written
    assert indices.alias_actions == []  # the alias was never touched
    assert len(indices.created) == 1  # one shelf: the hours of 2026-03-14
    # Deleted when the server answers; otherwise left for the next run's orphan removal.
    assert indices.deleted == ([] if server_gone else indices.created)
