"""Publish aggregation results to Elasticsearch so that readers never see a half-written result.

Readers query the alias ``clickstream_index``. Behind it, results live in concrete indices, one per
*shelf*: the hour windows of one UTC day, or the day windows of one UTC month. A run that
re-aggregates some windows

1. creates, for every shelf it touches, a fresh concrete index (mapping from the index template,
   checked to be the strict one);
2. writes into it, through ES-Hadoop, the new documents and the documents of the shelf's other
   windows, copied from the index the alias serves now (so they keep their values and
   ``computed_at``);
3. checks every new index holds exactly the documents it should;
4. in ONE ``_aliases`` request, points the alias at the new indices and removes the superseded
   ones, so readers switch atomically from the previous complete result to the new one.

An index left behind by a run that died before step 4 is not behind the alias, so no reader sees
it; the next run deletes it. Document ids are a hash of (window, window_start, url, country), so a
rerun writes identical documents.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from elasticsearch import Elasticsearch, NotFoundError
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from clickstream_spark.config import Config, ElasticsearchConfig
from clickstream_spark.elastic import require_index_privileges
from clickstream_spark.schema import METRICS_SCHEMA
from clickstream_spark.windows import Window

log = logging.getLogger(__name__)

ES_FORMAT = "org.elasticsearch.spark.sql"
INDEX_COLUMN = "_index_name"
ID_COLUMN = "_doc_id"
NEW_COLUMN = "_recomputed"  # False for documents carried over from the served index
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


def shelf_of(window: Window) -> str:
    """The concrete-index group a window's documents live in."""
    if window.kind == "hour":
        return f"hour-{window.start:%Y.%m.%d}"
    return f"day-{window.start:%Y.%m}"


def shelf_column(kind: Column, start: Column) -> Column:
    """:func:`shelf_of` as a Spark expression of a window's kind and start (kept in step)."""
    return F.when(
        kind == F.lit("hour"), F.concat(F.lit("hour-"), F.date_format(start, "yyyy.MM.dd"))
    ).otherwise(F.concat(F.lit("day-"), F.date_format(start, "yyyy.MM")))


def _iso_utc(timestamp: Column) -> Column:
    return F.date_format(timestamp, "yyyy-MM-dd'T'HH:mm:ss'Z'")


def document_id(kind: Column, start: Column, url: Column, country: Column) -> Column:
    """Deterministic id of a result document: same window and key -> same id, run after run."""
    key = F.concat_ws("\u0001", kind, _iso_utc(start), url, country)
    return F.sha2(key, 256).substr(1, 40)


def run_suffix(now: dt.datetime | None = None) -> str:
    """Sortable, unique suffix for this run's concrete indices."""
    now = now or dt.datetime.now(dt.UTC)
    return f"{now:%Y%m%dt%H%M%S}-{secrets.token_hex(3)}"


class Publisher:
    """Elasticsearch side of a run: index life cycle and the atomic alias swap."""

    def __init__(self, client: Elasticsearch, config: ElasticsearchConfig) -> None:
        self.client = client
        self.alias = config.index

    # -- reading the current state -------------------------------------------------------

    def served_indices(self) -> dict[str, str]:
        """shelf -> concrete index the alias points at now."""
        try:
            aliased = self.client.indices.get_alias(name=self.alias)
        except NotFoundError:
            return {}
        return {self.shelf_of_index(index): index for index in aliased}

    def shelf_of_index(self, index: str) -> str:
        # <alias>-<kind>-<period>-<run suffix>; the suffix has one dash inside.
        rest = index.removeprefix(f"{self.alias}-")
        kind, period = rest.split("-")[:2]
        return f"{kind}-{period}"

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
        """Delete this project's indices no alias serves: leftovers of runs that died."""
        served = set(self.served_indices().values())
        existing = self.client.indices.get(index=f"{self.alias}-*", expand_wildcards="open,closed")
        orphans = sorted(set(existing) - served)
        for index in orphans:
            self.client.indices.delete(index=index, ignore_unavailable=True)
        if orphans:
            log.info("removed %d index(es) left by an interrupted run: %s", len(orphans), orphans)
        return orphans

    # -- building and swapping ------------------------------------------------------------

    def create_indices(self, shelves: Iterable[str], suffix: str) -> dict[str, str]:
        """shelf -> new, empty concrete index with the template's strict mapping."""
        created = {}
        for shelf in sorted(set(shelves)):
            index = f"{self.alias}-{shelf}-{suffix}"
            self.client.indices.create(index=index)
            mapping = self.client.indices.get_mapping(index=index)[index]["mappings"]
            if mapping.get("dynamic") != "strict" or set(mapping.get("properties", {})) != set(
                DOCUMENT_FIELDS
            ):
                self.client.indices.delete(index=index)
                raise PublishError(
                    f"index template for {self.alias}* is missing or not the strict mapping of "
                    "conf/elasticsearch/clickstream.template.json: run `make up` (bootstrap)"
                )
            created[shelf] = index
        return created

    def verify_counts(self, expected: dict[str, int]) -> None:
        """Each new index must hold exactly the documents written to it."""
        if not expected:
            return
        self.client.indices.refresh(index=",".join(expected))
        for index, count in expected.items():
            found = self.client.count(index=index)["count"]
            if found != count:
                raise PublishError(f"{index} holds {found} documents, expected {count}")

    def swap(self, new: dict[str, str], old: dict[str, str]) -> None:
        """Point the alias at the new indices and drop the superseded ones, atomically."""
        actions: list[dict] = [
            {"add": {"index": index, "alias": self.alias}} for index in new.values()
        ]
        actions += [{"remove_index": {"index": old[shelf]}} for shelf in new if shelf in old]
        self.client.indices.update_aliases(actions=actions)

    def discard(self, indices: Iterable[str]) -> None:
        for index in indices:
            self.client.indices.delete(index=index, ignore_unavailable=True)


def carried_over(previous: DataFrame, recomputed: Sequence[Window]) -> DataFrame:
    """Documents of the served indices whose windows this run does not recompute."""
    recomputed_keys = previous.sparkSession.createDataFrame(
        [(window.kind, window.start) for window in recomputed],
        "window string, window_start timestamp",
    )
    return previous.join(recomputed_keys, ["window", "window_start"], "left_anti")


def to_documents(metrics: DataFrame, computed_at: dt.datetime) -> DataFrame:
    """METRICS_SCHEMA rows -> documents with their id and shelf (both excluded from _source)."""
    return metrics.select(
        *METRICS_SCHEMA.fieldNames(),
        F.lit(computed_at).cast("timestamp").alias("computed_at"),
        F.lit(True).alias(NEW_COLUMN),
    )


def with_routing(documents: DataFrame, indices: dict[str, str]) -> DataFrame:
    """Add the target concrete index and the document id to each document."""
    mapping = F.create_map(
        *[x for shelf, index in indices.items() for x in (F.lit(shelf), F.lit(index))]
    )
    # Dates go out as ISO-8601 UTC text: ES-Hadoop would send epoch millis, which readers of
    # _source would then have to decode.
    iso = {name: _iso_utc(F.col(name)).alias(name) for name in ("window_start", "computed_at")}
    return documents.select(
        *[iso.get(name, F.col(name)) for name in DOCUMENT_FIELDS],
        NEW_COLUMN,
        mapping[shelf_column(F.col("window"), F.col("window_start"))].alias(INDEX_COLUMN),
        document_id(F.col("window"), F.col("window_start"), F.col("url"), F.col("country")).alias(
            ID_COLUMN
        ),
    )


def write_documents(routed: DataFrame) -> None:
    """Bulk-write through ES-Hadoop into each document's own concrete index."""
    (
        routed.write.format(ES_FORMAT)
        .option("es.resource", f"{{{INDEX_COLUMN}}}")
        .option("es.mapping.id", ID_COLUMN)
        .option("es.mapping.exclude", f"{INDEX_COLUMN},{ID_COLUMN},{NEW_COLUMN}")
        .option("es.write.operation", "create")
        # The indices exist already (created with their checked mapping); ES-Hadoop cannot
        # verify a per-document {pattern} resource up front, so it must not try.
        .option("es.index.auto.create", "true")
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
        F.lit(False).alias(NEW_COLUMN),
    )


@dataclass(frozen=True)
class PublishResult:
    documents: int  # written by this run, carried-over ones included
    recomputed_documents: int
    indices: dict[str, str]  # shelf -> new concrete index


def publish(
    spark: SparkSession,
    client: Elasticsearch,
    config: ElasticsearchConfig,
    metrics: DataFrame,
    recomputed: Sequence[Window],
    computed_at: dt.datetime,
) -> PublishResult:
    """Replace the results of ``recomputed`` windows by ``metrics``, atomically for readers."""
    publisher = Publisher(client, config)
    publisher.check_alias_is_free()
    publisher.remove_orphans()
    served = publisher.served_indices()
    shelves = {shelf_of(window) for window in recomputed}
    new = publisher.create_indices(shelves, run_suffix())
    try:
        documents = to_documents(metrics, computed_at)
        previous = [served[shelf] for shelf in sorted(shelves) if shelf in served]
        if previous:
            documents = documents.unionByName(
                carried_over(read_documents(spark, previous), recomputed)
            )
        counts, recomputed_documents = _count_and_write(spark, with_routing(documents, new))
        publisher.verify_counts({index: counts.get(index, 0) for index in new.values()})
        publisher.swap(new, served)
    except Exception as exc:
        _discard_unpublished(publisher, new)
        # The operator's first question is whether readers are affected: say they are not,
        # and keep the cause (a JVM error, a refused connection) on the same line.
        raise PublishError(not_published(publisher.alias, recomputed)) from exc
    except BaseException:  # KeyboardInterrupt, SystemExit: clean up, change nothing else
        _discard_unpublished(publisher, new)
        raise
    return PublishResult(sum(counts.values()), recomputed_documents, new)


def _count_and_write(spark: SparkSession, routed: DataFrame) -> tuple[dict[str, int], int]:
    """Write the routed documents; return the count per concrete index and the recomputed."""
    routed = routed.persist()
    try:
        spark.sparkContext.setJobDescription("publish: count documents per index")
        per_index = routed.groupBy(INDEX_COLUMN, NEW_COLUMN).count().collect()
        counts: dict[str, int] = {}
        for row in per_index:
            counts[row[INDEX_COLUMN]] = counts.get(row[INDEX_COLUMN], 0) + row["count"]
        recomputed_documents = sum(r["count"] for r in per_index if r[NEW_COLUMN])
        spark.sparkContext.setJobDescription(
            f"publish: write {sum(counts.values())} documents to Elasticsearch"
        )
        write_documents(routed)
    finally:
        routed.unpersist()
        spark.sparkContext.setJobDescription(None)
    return counts, recomputed_documents


def not_published(alias: str, recomputed: Sequence[Window]) -> str:
    kinds = "/".join(sorted({window.kind for window in recomputed}))
    return (
        f"{len(recomputed)} {kinds} window(s) not published (the alias {alias} still serves "
        "the previous result; rerun to publish them)"
    )


def _discard_unpublished(publisher: Publisher, new: dict[str, str]) -> None:
    """Nothing was swapped: readers still see the previous result. Best-effort clean-up; the
    next run removes whatever is left (an index a dead server could not delete, for one)."""
    try:
        publisher.discard(new.values())
    except Exception:  # the server may be the thing that failed
        log.warning(
            "could not delete the unpublished indices %s (the next run deletes them)",
            list(new.values()),
        )
