"""The common event shape decided in the JVM, without a Python worker.

Almost every message is a flat JSON object of plain strings and integers.
``clickstream.NativeEvent`` (``jvm/src``, built by ``make setup`` into the Spark jars folder)
reads those bytes once and answers only "valid, and here is the row", and only when
:func:`~clickstream_spark.ingest.contract.classify` would answer the same; every other message
(every bad one included) goes to the exact Python path unchanged. The property tests hold the two
paths to the same verdicts and rows.

Why not Spark SQL's own functions: a strict regex over the raw text, ``regexp_extract_all`` for
duplicated keys and ``from_json`` took 20 µs per message on this machine (Java's regex engine
alone 10 µs), twice the whole Python path; the scanner takes about a microsecond.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StringType, StructField, StructType

from clickstream_spark.errors import ConfigError
from clickstream_spark.schema import EVENT_FIELDS

NATIVE_CLASS = "clickstream.NativeEvent"
_FUNCTION = "clickstream_native_event"

# What the function returns: the EVENT_FIELDS, the timestamp as epoch microseconds.
NATIVE_EVENT = StructType(
    [
        StructField("timestamp_us", LongType())
        if name == "timestamp"
        else StructField(name, StringType())
        for name in EVENT_FIELDS
    ]
)


def register(spark: SparkSession) -> None:
    """Make the JVM decider callable in ``spark``'s SQL (idempotent)."""
    try:
        spark.udf.registerJavaFunction(_FUNCTION, NATIVE_CLASS, NATIVE_EVENT)
    except Exception as exc:
        if "ClassNotFoundException" in str(exc) or "Can not load class" in str(exc):
            raise ConfigError(
                f"the JVM event parser ({NATIVE_CLASS}) is not on Spark's classpath: run "
                "'make setup' (it builds it into the Spark jars folder, which spark-submit.sh "
                "passes with --jars)"
            ) from exc
        raise


def with_native_verdicts(source: DataFrame, first_us: Column, last_us: Column) -> DataFrame:
    """``source`` (binary ``value``) plus ``native``: whether the JVM decides the message, and
    ``native_event``: then its event (NATIVE_EVENT; blank optional fields null). Event times
    must lie in [first_us, last_us] (epoch microseconds).
    """
    register(source.sparkSession)
    event = F.call_function(_FUNCTION, F.col("value"), first_us.cast("long"), last_us.cast("long"))
    # A generator's output is not inlined into the filters and fields above it: the function
    # runs once per row and branch.
    decided = source.select("*", F.inline(F.array(F.struct(event.alias("native_event")))))
    return decided.withColumn("native", F.col("native_event").isNotNull())


__all__ = ["NATIVE_CLASS", "NATIVE_EVENT", "register", "with_native_verdicts"]
