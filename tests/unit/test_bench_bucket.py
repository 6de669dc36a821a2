"""The plain consumer of bench/ingest.py puts each event in the bucket the Spark writer picks."""

from __future__ import annotations

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from bench.lib.plain_consumer import bucket, spark_xxhash64
from clickstream_spark.events_table import bucket_of

# Lengths around XXH64's 4-, 8- and 32-byte steps, a row key, and multi-byte UTF-8.
KEYS = [
    "",
    "a",
    "abc",
    "abcd",
    "abcdefgh",
    "0123456789abcdef0123456789abcde",
    "0123456789abcdef0123456789abcdef",
    "5f0c2c1e-7d2a-4b7e-9c3d-2a1b0c9d8e7f",
    "Montréal ü 東京",
    "x" * 100,
]


def test_hash_and_bucket_are_sparks(spark: SparkSession) -> None:
    rows = (
        spark.createDataFrame([(k,) for k in KEYS], "row_key string")
        .select("row_key", F.xxhash64("row_key").alias("hash"), bucket_of(F.col("row_key")))
        .collect()
    )
    assert [tuple(r) for r in rows] == [(k, spark_xxhash64(k), bucket(k)) for k in KEYS]


def test_hash_of_known_keys() -> None:
    # Spark 3.5.7: SELECT xxhash64('abc'), xxhash64('') (a signed long; seed 42).
    assert spark_xxhash64("abc") == 1423657621850124518
    assert spark_xxhash64("") == -7444071767201028348
