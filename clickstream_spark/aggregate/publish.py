"""Publish aggregation results to Elasticsearch so that readers never see a half-written result.

Readers query the alias ``clickstream_index``. Behind it, results live in concrete indices, one per
*shelf* (:mod:`~clickstream_spark.aggregate.shelves`). A run publishes step by step, one shelf at a
time and in time order; each step

1. creates a fresh concrete index ``<alias>-<shelf>-<run id>``, its mapping from the index template
   (checked to be the strict one) with the run id in the mapping's ``_meta``;
2. writes into it, through ES-Hadoop, the recomputed documents, then the documents of the shelf's
   other windows copied from the indices the alias serves for that period (so they keep their
   values and ``computed_at``);
3. checks the new index holds exactly the documents written to it;
4. in ONE ``_aliases`` request, points the alias at it and removes the indices it replaces, so
   readers switch atomically from the previous complete result to the new one.

An index left behind by a run that died before step 4 is not behind the alias, so no reader sees
it. Only the run holding the aggregation lease (:mod:`~clickstream_spark.aggregate.lease`)
publishes or deletes, so every other run is gone: the next run deletes what they left, never an
index of its own. Document ids are a hash of (window, window_start, url, country), so a rerun
writes identical documents.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType

from elasticsearch import Elasticsearch, NotFoundError
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from clickstream_spark.aggregate.shelves import Shelf, Step
from clickstream_spark.config import Config, ElasticsearchConfig
from clickstream_spark.elastic import require_index_privileges
from clickstream_spark.schema import METRICS_SCHEMA
from clickstream_spark.windows import Window

log = logging.getLogger(__name__)

ES_FORMAT = "org.elasticsearch.spark.sql"
ID_COLUMN = "_doc_id"
DOCUMENT_FIELDS = (*METRICS_SCHEMA.fieldNames(), "computed_at")


# What publishing does on the alias and its concrete indices: create and delete indices, write and
# read documents, and move the alias (which takes `manage`; it also covers refresh and mappings).
INDEX_PRIVILEGES = ("create_index", "delete_index", "read", "write", "manage")


class PublishError(RuntimeError):
    """The new result could not be published; the alias still serves the previous one."""


def check_publish_access(es: Elasticsearch, config: Config) -> None:
    """Fail before reading or computing anything if Elasticsearch would refuse to publish."""
    alias = config.elasticsearch.index
    require_index_privileges(es, config, [alias, f"{alias}-*"], INDEX_PRIVILEGES)


def _iso_utc(timestamp: Column) -> Column:
    return F.date_format(timestamp, "yyyy-MM-dd'T'HH:mm:ss'Z'")


def document_id(kind: Column, start: Column, url: Column, country: Column) -> Column:
    """Deterministic id of a result document: same window and key -> same id, run after run."""
    key = F.concat_ws("\u0001", kind, _iso_utc(start), url, country)
    return F.sha2(key, 256).substr(1, 40)


def new_run_id(now: dt.datetime | None = None) -> str:
    """Sortable, unique id of a run; it ends the names of the concrete indices the run creates."""
    now = now or dt.datetime.now(dt.UTC)
    return f"{now:%Y%m%dt%H%M%S}-{secrets.token_hex(3)}"


class Publisher:
    """Elasticsearch side of a run: index life cycle and the atomic alias swap."""

    def __init__(self, client: Elasticsearch, config: ElasticsearchConfig, run_id: str) -> None:
        self.client = client
        self.alias = config.index
        self.run_id = run_id

    # -- reading the current state -------------------------------------------------------

    def served_indices(self) -> dict[Shelf, str]:
        """shelf -> concrete index the alias points at now."""
        try:
            aliased = self.client.indices.get_alias(name=self.alias)
        except NotFoundError:
            return {}
        return {self.shelf_of_index(index): index for index in aliased}

    def shelf_of_index(self, index: str) -> Shelf:
        # <alias>-<kind>-<period>-<run id>; the run id has one dash inside.
        kind, period = index.removeprefix(f"{self.alias}-").split("-")[:2]
        try:
            return Shelf.parse(f"{kind}-{period}")
        except ValueError as exc:
            raise PublishError(f"the alias {self.alias} serves {index}: {exc}") from None

    def check_alias_is_free(self) -> None:
        """An index literally named like the alias would shadow it: refuse clearly."""
        if self.client.indices.exists(index=self.alias) and not self.client.indices.exists_alias(
            name=self.alias
        ):
            raise PublishError(
                f"{self.alias} is a concrete index, not an alias: delete it or choose another "
                "[elasticsearch] index name"
            )

    def remove_orphans(self) -> list[str]:
        """Delete the project's indices no alias serves and another run created.

        Called by the lease holder: every other run is gone (its lease expired or was released),
        so their unpublished indices are leftovers. This run's own are never touched.
        """
        served = set(self.served_indices().values())
        existing = self.client.indices.get(index=f"{self.alias}-*", expand_wildcards="open,closed")
        orphans = []
        for index in sorted(set(existing) - served):
            owner = existing[index].get("mappings", {}).get("_meta", {}).get("run_id")
            if owner != self.run_id:
                self.client.indices.delete(index=index, ignore_unavailable=True)
                log.info("removed index %s left by run %s, which is gone", index, owner)
                orphans.append(index)
        if orphans:
            log.info("removed %d index(es) left by an interrupted run: %s", len(orphans), orphans)
        return orphans

    # -- building and swapping ------------------------------------------------------------

    def create_index(self, shelf: Shelf) -> str:
        """A new, empty concrete index for ``shelf`` with the template's strict mapping."""
        index = f"{self.alias}-{shelf.name}-{self.run_id}"
        self.client.indices.create(index=index, mappings={"_meta": {"run_id": self.run_id}})
        mapping = self.client.indices.get_mapping(index=index)[index]["mappings"]
        if mapping.get("dynamic") != "strict" or set(mapping.get("properties", {})) != set(
            DOCUMENT_FIELDS
        ):
            self.client.indices.delete(index=index)
            raise PublishError(
                f"index template for {self.alias}* is missing or not the strict mapping of "
                "conf/elasticsearch/clickstream.template.json: run `make up` (bootstrap)"
            )
        return index

    def verify_count(self, index: str, expected: int) -> None:
        """The new index must hold exactly the documents written to it."""
        self.client.indices.refresh(index=index)
        found = self.client.count(index=index)["count"]
        if found != expected:
            raise PublishError(f"{index} holds {found} documents, expected {expected}")

    def swap(self, index: str, replaced: Sequence[str]) -> None:
        """Point the alias at ``index`` and drop the indices it replaces, atomically."""
        actions: list[dict] = [{"add": {"index": index, "alias": self.alias}}]
        actions += [{"remove_index": {"index": old}} for old in replaced]
        self.client.indices.update_aliases(actions=actions)

    def discard(self, index: str) -> None:
        self.client.indices.delete(index=index, ignore_unavailable=True)


def carried_over(previous: DataFrame, recomputed: Sequence[Window]) -> DataFrame:
    """Documents of the served indices whose windows this run does not recompute."""
    if not recomputed:
        return previous
    recomputed_keys = previous.sparkSession.createDataFrame(
        [(window.kind, window.start) for window in recomputed],
        "window string, window_start timestamp",
    )
    return previous.join(recomputed_keys, ["window", "window_start"], "left_anti")


def to_documents(metrics: DataFrame, computed_at: dt.datetime) -> DataFrame:
    """METRICS_SCHEMA rows -> DOCUMENT_FIELDS rows."""
    return metrics.select(
        *METRICS_SCHEMA.fieldNames(), F.lit(computed_at).cast("timestamp").alias("computed_at")
    )


def with_ids(documents: DataFrame) -> DataFrame:
    """Documents as they are sent: ISO dates and the document id (excluded from _source)."""
    # Dates go out as ISO-8601 UTC text: ES-Hadoop would send epoch millis, which readers of
    # _source would then have to decode.
    iso = {name: _iso_utc(F.col(name)).alias(name) for name in ("window_start", "computed_at")}
    return documents.select(
        *[iso.get(name, F.col(name)) for name in DOCUMENT_FIELDS],
        document_id(F.col("window"), F.col("window_start"), F.col("url"), F.col("country")).alias(
            ID_COLUMN
        ),
    )


def write_documents(documents: DataFrame, index: str) -> None:
    """Bulk-write documents (with their ids) through ES-Hadoop into the concrete ``index``."""
    (
        documents.write.format(ES_FORMAT)
        .option("es.resource", index)
        .option("es.mapping.id", ID_COLUMN)
        .option("es.mapping.exclude", ID_COLUMN)
        .option("es.write.operation", "create")
        # The index exists already, with its checked mapping; if it is gone, fail, never
        # create one from the template behind the run's back.
        .option("es.index.auto.create", "false")
        .option("es.spark.dataframe.write.null", "true")
        .option("es.batch.write.retry.count", "3")
        .mode("append")
        .save()
    )


def read_documents(spark: SparkSession, indices: Iterable[str]) -> DataFrame:
    """The documents of the given concrete indices, typed as DOCUMENT_FIELDS."""
    frame = (
        spark.read.format(ES_FORMAT)
        .option("es.read.field.include", ",".join(DOCUMENT_FIELDS))
        .option("es.read.metadata", "false")
        .load(",".join(sorted(indices)))
    )
    types = {f.name: f.dataType for f in METRICS_SCHEMA.fields}
    return frame.select(
        *[F.col(name).cast(types[name]).alias(name) for name in METRICS_SCHEMA.fieldNames()],
        F.col("computed_at").cast("timestamp").alias("computed_at"),
    )


def _count_and_write(
    spark: SparkSession, documents: DataFrame, index: str, what: str
) -> dict[dt.datetime, int]:
    """Write ``documents`` into ``index``; how many there were per window start."""
    documents = documents.persist()
    try:
        spark.sparkContext.setJobDescription(f"publish: count {what}")
        rows = documents.groupBy("window_start").count().collect()
        counts = {row["window_start"]: row["count"] for row in rows}
        if counts:
            total = sum(counts.values())
            spark.sparkContext.setJobDescription(f"publish: write {total} {what} to {index}")
            write_documents(with_ids(documents), index)
    finally:
        documents.unpersist()
        spark.sparkContext.setJobDescription(None)
    return counts


class ShelfPublication:
    """One step, as a context: a new index for the step's shelf, written inside the block and
    published when the block ends (carried-over documents copied, counted, alias swapped).

    Any failure discards the new index and raises :class:`PublishError`, which says that readers
    still see the previous result of those windows. ``before_swap`` runs just before the swap
    (the lease check: never publish without holding it).
    """

    def __init__(
        self,
        spark: SparkSession,
        publisher: Publisher,
        step: Step,
        before_swap: Callable[[], None] = lambda: None,
    ) -> None:
        self.spark, self.publisher, self.step = spark, publisher, step
        self.before_swap = before_swap
        self.index = ""
        self.recomputed = 0  # documents of the recomputed windows
        self.kept = 0  # documents copied from the replaced indices

    def __enter__(self) -> ShelfPublication:
        try:
            self.index = self.publisher.create_index(self.step.shelf)
        except PublishError:  # already says what to do
            raise
        except Exception as exc:
            raise PublishError(not_published(self.publisher.alias, self.step)) from exc
        return self

    def write(self, metrics: DataFrame, computed_at: dt.datetime) -> dict[dt.datetime, int]:
        """Write the documents of (some of) the recomputed windows; how many per window."""
        documents = to_documents(metrics, computed_at)
        counts = _count_and_write(self.spark, documents, self.index, "documents")
        self.recomputed += sum(counts.values())
        return counts

    def _finish(self) -> None:
        if self.step.replaced:
            previous = read_documents(self.spark, self.step.replaced)
            kept = carried_over(previous, self.step.windows)
            counts = _count_and_write(self.spark, kept, self.index, "carried-over documents")
            self.kept = sum(counts.values())
        self.publisher.verify_count(self.index, self.recomputed + self.kept)
        self.before_swap()
        self.publisher.swap(self.index, self.step.replaced)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        if exc is None:
            try:
                self._finish()
            except BaseException as error:
                self._fail(error)
                raise
            return False
        self._fail(exc)
        return False

    def _fail(self, exc: BaseException) -> None:
        """Discard the unpublished index; say what an error means for readers (an interrupt,
        KeyboardInterrupt or SystemExit, goes on as it is)."""
        _discard_unpublished(self.publisher, self.index)
        if isinstance(exc, Exception):
            # The operator's first question is whether readers are affected: say they are not,
            # and keep the cause (a JVM error, a refused connection) on the same line.
            raise PublishError(not_published(self.publisher.alias, self.step)) from exc


def not_published(alias: str, step: Step) -> str:
    what = (
        f"{len(step.starts)} {step.shelf.kind} window(s) not published"
        if step.starts
        else f"{step.shelf.name} not consolidated"
    )
    return f"{what} (the alias {alias} still serves the previous result; rerun to publish them)"


def _discard_unpublished(publisher: Publisher, index: str) -> None:
    """Nothing was swapped: readers still see the previous result. Best-effort clean-up; the
    next run removes whatever is left (an index a dead server could not delete, for one)."""
    try:
        publisher.discard(index)
    except Exception:  # the server may be the thing that failed
        log.warning("could not delete the unpublished index %s (the next run deletes it)", index)
