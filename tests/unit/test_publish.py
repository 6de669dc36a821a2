from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from pyspark.sql import SparkSession
from pyspark.testing import assertDataFrameEqual

from clickstream_spark.aggregate import publish as publish_module
from clickstream_spark.aggregate.publish import (
    DOCUMENT_FIELDS,
    ID_COLUMN,
    Publisher,
    PublishError,
    ShelfPublication,
    carried_over,
    to_documents,
    with_ids,
)
from clickstream_spark.aggregate.shelves import Shelf, Step
from clickstream_spark.config import ElasticsearchConfig
from clickstream_spark.schema import METRICS_SCHEMA
from clickstream_spark.windows import Window

T = dt.datetime
COMPUTED = T(2026, 3, 16, 4, 5, 6)
RUN = "20260316t040506-abcdef"


def metrics_rows(spark: SparkSession, *keys: tuple[str, dt.datetime, str, str]):
    values = (3, 2, 10.0, 9.0, 20.0, 0.5, 2, 2, 1, 0.5, 2 / 3)
    rows = [(kind, start, url, c, *values) for kind, start, url, c in keys]
    return spark.createDataFrame(rows, METRICS_SCHEMA)


def sha256_40(key: str) -> str:
    """A document id as the published indices hold it: the first 40 hex digits of SHA-256."""
    return hashlib.sha256(key.encode()).hexdigest()[:40]


def test_documents_get_deterministic_ids_and_iso_dates(spark: SparkSession) -> None:
    metrics = metrics_rows(
        spark,
        ("hour", T(2026, 3, 14, 23), "/a", "FR"),
        ("hour", T(2026, 3, 14, 23), "/a", "DE"),
        ("day", T(2026, 3, 14), "/a", "FR"),
    )
    documents = with_ids(to_documents(metrics, COMPUTED)).collect()
    again = with_ids(to_documents(metrics, COMPUTED)).collect()

    ids = [r[ID_COLUMN] for r in documents]
    assert ids == [
        sha256_40("hour\x012026-03-14T23:00:00Z\x01/a\x01FR"),
        sha256_40("hour\x012026-03-14T23:00:00Z\x01/a\x01DE"),
        sha256_40("day\x012026-03-14T00:00:00Z\x01/a\x01FR"),
    ]
    assert ids == [r[ID_COLUMN] for r in again]
    assert documents[0]["window_start"] == "2026-03-14T23:00:00Z"
    assert documents[0]["computed_at"] == "2026-03-16T04:05:06Z"
    assert tuple(documents[0].asDict()) == (*DOCUMENT_FIELDS, ID_COLUMN)


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
    assert carried_over(previous, []) is previous  # a consolidation copies everything


class FakeIndices:
    """The index API surface the publisher uses, on a cluster with the strict template and
    ``existing`` indices (name -> run id in their _meta, None for none)."""

    def __init__(
        self, existing: dict[str, str | None] | None = None, fail_deletes: bool = False
    ) -> None:
        self.existing = dict(existing or {})
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
        return {
            name: {"mappings": {"_meta": {"run_id": run}} if run else {}}
            for name, run in self.existing.items()
        }

    def create(self, index: str, mappings: dict) -> None:
        assert mappings == {"_meta": {"run_id": RUN}}
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
    nodes="127.0.0.1",
    port=9200,
    index="results",
    wan_only=True,
    batch_size_entries=1000,
    number_of_replicas=0,
)


@pytest.mark.parametrize("server_gone", [False, True])
def test_a_failed_write_publishes_nothing_and_says_readers_keep_the_previous_result(
    spark: SparkSession, monkeypatch: pytest.MonkeyPatch, server_gone: bool
) -> None:
    written = RuntimeError("EsHadoopNoNodesLeftException: all nodes failed")

    def failing_write(documents: object, index: str) -> None:
        raise written

    monkeypatch.setattr(publish_module, "write_documents", failing_write)
    indices = FakeIndices(fail_deletes=server_gone)
    publisher = Publisher(FakeClient(indices), ES_CONFIG, RUN)  # type: ignore[arg-type]
    shelf = Shelf.parse("hour-2026.03.14")
    step = Step(shelf, (T(2026, 3, 14, 22), T(2026, 3, 14, 23)), ("results-hour-2026.03.14-x-1",))
    metrics = metrics_rows(spark, ("hour", T(2026, 3, 14, 23), "/a", "FR"))

    with pytest.raises(PublishError) as raised, ShelfPublication(spark, publisher, step) as new:
        new.write(metrics, COMPUTED)

    assert str(raised.value) == (
        "2 hour window(s) not published (the alias results still serves the previous result; "
        "rerun to publish them)"
    )
    assert raised.value.__cause__ is written
    assert indices.alias_actions == []  # the alias was never touched
    assert indices.created == [f"results-hour-2026.03.14-{RUN}"]
    # Deleted when the server answers; otherwise left for the next run's orphan removal.
    assert indices.deleted == ([] if server_gone else indices.created)


def test_orphans_are_the_unserved_indices_of_other_runs() -> None:
    indices = FakeIndices(
        {
            "results-hour-2026.03.14-20260315t000000-aaaaaa": "20260315t000000-aaaaaa",
            f"results-hour-2026.03.15-{RUN}": RUN,  # being written by this run
            "results-day-2026.03-20260101t000000-bbbbbb": None,  # created before run ids
        }
    )
    publisher = Publisher(FakeClient(indices), ES_CONFIG, RUN)  # type: ignore[arg-type]

    orphans = publisher.remove_orphans()

    assert orphans == [
        "results-day-2026.03-20260101t000000-bbbbbb",
        "results-hour-2026.03.14-20260315t000000-aaaaaa",
    ]
    assert indices.deleted == orphans


def test_a_step_swaps_in_one_request(spark: SparkSession, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(publish_module, "write_documents", lambda documents, index: None)
    monkeypatch.setattr(Publisher, "verify_count", lambda self, index, expected: None)
    indices = FakeIndices()
    publisher = Publisher(FakeClient(indices), ES_CONFIG, RUN)  # type: ignore[arg-type]
    checks: list[str] = []
    step = Step(Shelf.parse("day-2026.03"), (T(2026, 3, 14),), ())

    with ShelfPublication(spark, publisher, step, lambda: checks.append("lease")) as new:
        new.write(metrics_rows(spark, ("day", T(2026, 3, 14), "/a", "FR")), COMPUTED)

    assert (new.recomputed, new.kept, checks) == (1, 0, ["lease"])
    assert indices.alias_actions == [
        [{"add": {"index": f"results-day-2026.03-{RUN}", "alias": "results"}}]
    ]
