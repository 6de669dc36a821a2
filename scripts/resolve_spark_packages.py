"""Resolve the connector packages into the project's Ivy cache and prove their classes load.

Run through spark-submit.sh by `make setup`, so that later jobs and tests resolve nothing.
"""

from __future__ import annotations

import sys

from pyspark.sql import SparkSession

CONNECTOR_CLASSES = (
    "org.apache.spark.sql.kafka010.KafkaSourceProvider",
    "com.datastax.spark.connector.CassandraSparkExtensions",
    "org.elasticsearch.spark.sql.DefaultSource",
)


def main() -> int:
    spark = SparkSession.builder.appName("resolve-spark-packages").getOrCreate()
    try:
        # --packages jars are on the context class loader, not the system one.
        loader = spark.sparkContext._jvm.java.lang.Thread.currentThread().getContextClassLoader()
        for name in CONNECTOR_CLASSES:
            loader.loadClass(name)
        print(f"spark packages ready: {len(CONNECTOR_CLASSES)} connectors load")
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
