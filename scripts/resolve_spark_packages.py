"""Resolve the connector packages, prove their classes load, and copy their jars into one folder.

Run by `make setup` through spark-submit with --packages (the only Ivy resolution of the project):
the folder it fills (argument 1) holds exactly the resolved jars and a stamp naming the package
set (argument 2), and every job starts from it with --jars.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from urllib.parse import urlparse

from pyspark.sql import SparkSession

from clickstream_spark.packages import JARS_STAMP

CONNECTOR_CLASSES = (
    "org.apache.spark.sql.kafka010.KafkaSourceProvider",
    "com.datastax.spark.connector.CassandraSparkExtensions",
    "org.elasticsearch.spark.sql.DefaultSource",
)


def main() -> int:
    jars_dir, package_set = Path(sys.argv[1]), sys.argv[2]
    spark = SparkSession.builder.appName("resolve-spark-packages").getOrCreate()
    try:
        # --packages jars are on the context class loader, not the system one.
        loader = spark.sparkContext._jvm.java.lang.Thread.currentThread().getContextClassLoader()
        for name in CONNECTOR_CLASSES:
            loader.loadClass(name)
        jars = spark.sparkContext.getConf().get("spark.jars", "")
        resolved = [Path(urlparse(uri).path) for uri in jars.split(",") if uri]
    finally:
        spark.stop()
    if jars_dir.exists():
        shutil.rmtree(jars_dir)
    jars_dir.mkdir(parents=True)
    for jar in resolved:
        shutil.copy2(jar, jars_dir / jar.name)
    (jars_dir / JARS_STAMP).write_text(package_set + "\n", encoding="utf-8")
    size_mb = sum(jar.stat().st_size for jar in resolved) / 1e6
    print(
        f"spark packages ready: {len(CONNECTOR_CLASSES)} connectors load, "
        f"{len(resolved)} jars ({size_mb:.0f} MB) in {jars_dir}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
