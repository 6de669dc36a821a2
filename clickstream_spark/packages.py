"""The Spark connector packages, from ``conf/versions.env`` and the installed pyspark.

``python -m clickstream_spark.packages`` prints them for shell scripts, on two lines: the
comma-separated coordinates, then the comma-separated exclusions.
"""

from __future__ import annotations

import sys
from importlib.metadata import version
from pathlib import Path

from clickstream_spark.config import PROJECT_ROOT

VERSIONS_FILE = PROJECT_ROOT / "conf" / "versions.env"

# elasticsearch-spark-30's POM names runtime dependencies that are not published
# (elasticsearch-hadoop-mr, elasticsearch-spark_2.12) and drags spark-yarn 3.4.x, which must not
# mix with the pyspark jars; its own jar is self-contained, so these are excluded.
ES_SPARK_EXCLUDES = (
    "org.elasticsearch:elasticsearch-hadoop-mr",
    "org.elasticsearch:elasticsearch-spark_{scala}",
    "org.apache.spark:spark-yarn_{scala}",
)


def read_versions(path: Path = VERSIONS_FILE) -> dict[str, str]:
    """Parse the ``KEY=VALUE`` lines of the versions file (comments and blanks ignored)."""
    versions: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ValueError(f"{path}: not a KEY=VALUE line: {line!r}")
        versions[key.strip()] = value.strip()
    return versions


def spark_packages(versions: dict[str, str] | None = None) -> list[str]:
    """Maven coordinates of the Kafka source, Cassandra connector and ES-Hadoop."""
    v = versions or read_versions()
    scala = v["SCALA_BINARY"]
    # The Kafka source must match the Spark it runs in, so it follows the installed pyspark.
    spark_version = version("pyspark")
    return [
        f"org.apache.spark:spark-sql-kafka-0-10_{scala}:{spark_version}",
        f"com.datastax.spark:spark-cassandra-connector_{scala}:{v['SPARK_CASSANDRA_CONNECTOR_VERSION']}",
        f"org.elasticsearch:elasticsearch-spark-30_{scala}:{v['ELASTICSEARCH_SPARK_VERSION']}",
    ]


def spark_excludes(versions: dict[str, str] | None = None) -> list[str]:
    v = versions or read_versions()
    return [exclude.format(scala=v["SCALA_BINARY"]) for exclude in ES_SPARK_EXCLUDES]


def main() -> int:
    print(",".join(spark_packages()))
    print(",".join(spark_excludes()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
