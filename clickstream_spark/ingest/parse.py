"""Kafka rows → parsed messages in Spark: the event contract run over Arrow batches.

:func:`parse_kafka` lets the JVM decide the common event shape
(:mod:`clickstream_spark.ingest.native`, which answers only what ``classify`` would) and sends
every other message value through :func:`clickstream_spark.ingest.contract.classify_batch` with
``mapInArrow`` (no pandas on either side), so the stream gives exactly the verdicts of the plain
``classify``. :func:`valid_events`
and :func:`quarantine_rows` select the two outputs; messages over the size limit can instead be
decided natively and quarantined straight from Kafka (:func:`oversized_quarantine`).

Event times are judged against the moment the messages are read: in a stream,
``current_timestamp()`` of the micro-batch, which Spark records in the checkpoint's offset log, so
a replayed micro-batch is judged as it was the first time. That moment, and the quarantine's
``ingested_at``, are :func:`uncompiled`: the same Java code then serves every micro-batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StringType, StructField, StructType

from clickstream_spark.ingest.contract import (
    CLASSIFIED_FIELDS,
    JSON_WHITESPACE,
    MAX_MESSAGE_BYTES,
    Reason,
    classify_batch,
)
from clickstream_spark.ingest.event_time import (
    DEFAULT_EVENT_TIME_LIMITS,
    MAX_TIMESTAMP_US,
    MIN_TIMESTAMP_US,
    ONE_US,
    EventTimeLimits,
)
from clickstream_spark.ingest.native import NATIVE_EVENT, with_native_verdicts
from clickstream_spark.schema import EVENT_SCHEMA, OPTIONAL_FIELDS, PARSED_SCHEMA

# Rows per Arrow batch between the JVM and the Python parser (the stream sets
# spark.sql.execution.arrow.maxRecordsPerBatch to it). Spark 3.5 sizes these batches by rows only,
# and the JVM side of a batch is one direct-memory buffer: at Spark's default of 10,000 rows of up
# to MAX_MESSAGE_BYTES a task could ask for 640 MiB, and an OutOfMemoryError there leaves the task
# waiting for ever. 1,000 rows bound a batch to 64 MiB.
ARROW_BATCH_ROWS = 1000

# The Kafka coordinates pass through the Python worker untouched (Arrow buffers, no per-row work).
_COORDINATES = ("topic", "partition", "offset", "kafka_timestamp")


_Batches = Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]


def _classifier(limits: EventTimeLimits) -> _Batches:
    """The mapInArrow function: each Arrow batch classified as read at its ``read_at_us``."""

    def classify_batches(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            names = batch.schema.names
            oversized = batch.column("oversized") if "oversized" in names else None
            read_at_us = _one_moment(batch.column("read_at_us"))
            classified = classify_batch(batch.column("value"), read_at_us, limits, oversized)
            yield pa.RecordBatch.from_arrays(
                [batch.column(name) for name in _COORDINATES] + classified.columns,
                names=[*_COORDINATES, *classified.schema.names],
            )

    return classify_batches


def _one_moment(read_at_us: pa.Array) -> int:
    """The read moment of a batch: one value for all its rows (an empty batch has none)."""
    if len(read_at_us) == 0:
        return 0
    bounds = pc.min_max(read_at_us)
    first, last = bounds["min"].as_py(), bounds["max"].as_py()
    if first is None or first != last:
        raise ValueError(f"read_at must be one moment per batch, got {first} to {last}")
    return first


def _mapped_schema() -> StructType:
    coordinates = {f.name: f.dataType for f in PARSED_SCHEMA.fields if f.name in _COORDINATES}
    spark_types = {pa.string(): StringType(), pa.int64(): LongType()}
    return StructType(
        [StructField(name, coordinates[name], True) for name in _COORDINATES]
        + [StructField(name, spark_types[t], True) for name, t in CLASSIFIED_FIELDS]
    )


def _only_json_whitespace() -> Column:
    return F.length(F.btrim(F.col("value").cast("string"), F.lit(JSON_WHITESPACE))) == 0


def _oversized(source: DataFrame) -> DataFrame:
    """The verdict of messages over MAX_MESSAGE_BYTES, natively: the same as ``classify``'s.

    Only JSON whitespace is ``empty_value`` (at any size), anything else ``too_large``; the raw
    copy is the text when the bytes are UTF-8 (Java's decoder, like Python's, refuses malformed
    and surrogate sequences, so decode-then-encode gives the bytes back exactly when they are
    UTF-8), base64 otherwise.
    """
    text = F.col("value").cast("string")  # the bytes as they are: no decoding, no copy of them
    blank = _only_json_whitespace()
    utf8 = F.encode(F.decode(F.col("value"), "UTF-8"), "UTF-8") == F.col("value")
    # Spark 3.5's base64() breaks lines every 76 characters unless
    # spark.sql.chunkBase64String.enabled is false; the alphabet has no CR or LF, so dropping them
    # gives Python's b64encode whatever the session says.
    base64 = F.translate(F.base64(F.col("value")), "\r\n", "")
    nothing = F.lit(None)
    return source.select(
        nothing.cast("string").alias("row_key"),
        nothing.cast("string").alias("user_id"),
        nothing.cast("timestamp").alias("timestamp"),
        nothing.cast("string").alias("url"),
        *(nothing.cast("string").alias(name) for name in OPTIONAL_FIELDS),
        F.when(blank, F.lit(Reason.EMPTY_VALUE.value))
        .otherwise(F.lit(Reason.TOO_LARGE.value))
        .alias("reason"),
        F.when(utf8, text).otherwise(base64).alias("raw_value"),
        F.when(utf8, F.lit("utf8")).otherwise(F.lit("base64")).alias("raw_encoding"),
        *(F.col(name) for name in _COORDINATES),
    )


def parse_kafka(
    kafka: DataFrame,
    limits: EventTimeLimits = DEFAULT_EVENT_TIME_LIMITS,
    *,
    read_at: Column | None = None,
    oversized_raw: bool = True,
) -> DataFrame:
    """Kafka source rows → one row per message with the event columns, ``reason`` and provenance.

    Input: the Kafka source columns (``value``, ``topic``, ``partition``, ``offset``,
    ``timestamp``; others are ignored). Output: one PARSED_SCHEMA row per input row; select the
    outputs with :func:`valid_events` and :func:`quarantine_rows` (``persist()`` first when
    writing both, or the classifier runs once per output).

    ``read_at`` is the moment the messages are read, one value for the whole query (default
    ``current_timestamp()``: the micro-batch's in a stream); event times must lie within
    ``limits`` of it.

    ``oversized_raw=False`` is for a stream that caches its micro-batches: values over
    MAX_MESSAGE_BYTES never reach Python (what crosses to a worker stays under
    ``ARROW_BATCH_ROWS x MAX_MESSAGE_BYTES`` whatever producers send) and their rows carry the
    reason without a raw copy; :func:`oversized_quarantine` writes those from Kafka.
    """
    moment = uncompiled(F.current_timestamp() if read_at is None else read_at)
    source = _kafka_columns(kafka).withColumn("read_at_us", F.unix_micros(moment))
    if not oversized_raw:
        fits = F.col("value").isNull() | (F.length("value") <= MAX_MESSAGE_BYTES)
        source = source.select(
            F.when(fits, F.col("value")).alias("value"),
            F.when(~fits, _only_json_whitespace()).alias("oversized"),
            F.col("read_at_us"),
            *(F.col(name) for name in _COORDINATES),
        )
    first_us, last_us = _accepted_us(F.col("read_at_us"), limits)
    decided = with_native_verdicts(source, first_us, last_us)
    nothing = F.lit(None).cast("string")
    native = decided.filter(F.col("native")).select(
        nothing.alias("reason"),
        *(F.col(f"native_event.{name}") for name in NATIVE_EVENT.fieldNames()),
        nothing.alias("raw_value"),
        nothing.alias("raw_encoding"),
        *(F.col(name) for name in _COORDINATES),
    )
    to_python = decided.filter(~F.col("native")).drop("native", "native_event")
    mapped = to_python.mapInArrow(_classifier(limits), _mapped_schema())
    return native.unionByName(mapped).select(
        F.col("row_key"),
        F.col("user_id"),
        F.timestamp_micros(F.col("timestamp_us")).alias("timestamp"),
        F.col("url"),
        *(F.col(name) for name in OPTIONAL_FIELDS),
        F.col("reason"),
        F.col("raw_value"),
        F.col("raw_encoding"),
        *(F.col(name) for name in _COORDINATES),
    )


def uncompiled(value: Column) -> Column:
    """``value``, evaluated by Spark's interpreter instead of in the Java code it generates.

    For values that change with every micro-batch (its moment): Spark writes a timestamp literal
    into the generated code, so each micro-batch would compile new classes, which the JVM then
    runs interpreted until its JIT has compiled them again (bench/README.md, "Ingest: one code
    for every micro-batch"). Spark 3.5 generates no code for a higher-order function
    (``CodegenFallback``): the generated code refers to it and stays the same. Evaluated per row,
    it costs the parse yardstick about 10 % (measured, same bench/README.md section); test_ingest
    holds micro-batches after the first to no compilation.
    """
    return F.aggregate(F.array().cast("array<int>"), value, lambda moment, _: moment)


def _accepted_us(read_at_us: Column, limits: EventTimeLimits) -> tuple[Column, Column]:
    """:meth:`EventTimeLimits.accepted_us` as columns."""
    return (
        F.greatest(F.lit(MIN_TIMESTAMP_US), read_at_us - limits.max_age // ONE_US),
        F.least(F.lit(MAX_TIMESTAMP_US), read_at_us + limits.max_lead // ONE_US),
    )


def _kafka_columns(kafka: DataFrame) -> DataFrame:
    return kafka.select(
        F.col("value"),
        F.col("topic"),
        F.col("partition"),
        F.col("offset"),
        F.col("timestamp").alias("kafka_timestamp"),
    )


def oversized_quarantine(kafka: DataFrame, ingested_at_col: Column) -> DataFrame:
    """QUARANTINE_SCHEMA rows of the messages over MAX_MESSAGE_BYTES in ``kafka``, raw copy
    included: computed row by row from the source, never cached or sent to Python."""
    source = _kafka_columns(kafka)
    oversized = _oversized(source.filter(F.length("value") > MAX_MESSAGE_BYTES))
    return quarantine_rows(oversized, ingested_at_col)


def valid_events(parsed: DataFrame) -> DataFrame:
    """The valid events of :func:`parse_kafka`'s output: the EVENT_SCHEMA columns, in order.

    Names and types are EVENT_SCHEMA's; Spark reports the columns as nullable (it cannot infer
    that a filter on ``reason`` makes them non-null), which the writers do not care about.
    """
    return parsed.filter(F.col("reason").isNull()).select(
        *(F.col(field.name) for field in EVENT_SCHEMA.fields)
    )


def raw_left_out() -> Column:
    """The bad messages whose raw copy :func:`parse_kafka` left out (``oversized_raw=False``):
    a reason but a null ``raw_encoding`` (every other bad message has one, tombstones ``none``)."""
    return F.col("reason").isNotNull() & F.col("raw_encoding").isNull()


def quarantine_rows(parsed: DataFrame, ingested_at_col: Column) -> DataFrame:
    """The bad messages of :func:`parse_kafka`'s output, as QUARANTINE_SCHEMA rows.

    ``ingested_at_col`` is one moment for the whole micro-batch (:func:`uncompiled` here).
    """
    # A message whose raw copy was left out gets its row from oversized_quarantine.
    bad = F.col("reason").isNotNull() & ~raw_left_out()
    return parsed.filter(bad).select(
        F.col("topic"),
        F.col("partition"),
        F.col("offset"),
        F.col("raw_value"),
        F.col("raw_encoding"),
        F.col("reason"),
        F.col("kafka_timestamp"),
        uncompiled(ingested_at_col).alias("ingested_at"),
    )


__all__ = [
    "ARROW_BATCH_ROWS",
    "oversized_quarantine",
    "parse_kafka",
    "quarantine_rows",
    "raw_left_out",
    "uncompiled",
    "valid_events",
]
