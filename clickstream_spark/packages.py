"""The Spark connector packages, from ``conf/versions.env`` and the installed pyspark, and the
folder of their resolved jars that every job starts from.

``make setup`` resolves the packages once with Ivy and copies the jars into one folder
(``.state/spark-jars``) with a stamp naming the package set; jobs pass that folder's jars with
``--jars`` and never resolve. For shell scripts:

    python -m clickstream_spark.packages coordinates   # packages, then exclusions (two lines)
    python -m clickstream_spark.packages jars DIR      # DIR's jars, comma-separated
"""

from __future__ import annotations

import argparse
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


# In the jars folder: the coordinates and exclusions its jars were resolved from.
JARS_STAMP = ".packages"


def package_set() -> str:
    """The packages and exclusions, as one line: what a jars folder must have been resolved from."""
    return f"{','.join(spark_packages())} {','.join(spark_excludes())}"


def resolved_jars(jars_dir: Path) -> list[Path]:
    """The jars of ``jars_dir``, if they were resolved from the current package set."""
    stamp = jars_dir / JARS_STAMP
    if not stamp.is_file():
        raise FileNotFoundError(f"no resolved Spark jars in {jars_dir}: run 'make setup'")
    if stamp.read_text(encoding="utf-8").strip() != package_set():
        raise FileNotFoundError(
            f"the Spark jars in {jars_dir} were resolved for other versions: run 'make setup'"
        )
    jars = sorted(jars_dir.glob("*.jar"))
    if not jars:
        raise FileNotFoundError(f"no jar in {jars_dir}: run 'make setup'")
    return jars


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clickstream_spark.packages")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("coordinates", help="packages, then exclusions, comma-separated")
    jars = commands.add_parser("jars", help="the resolved jars of DIR, comma-separated")
    jars.add_argument("dir", type=Path)
    args = parser.parse_args(argv)
    if args.command == "coordinates":
        print(",".join(spark_packages()))
        print(",".join(spark_excludes()))
        return 0
    try:
        print(",".join(str(jar) for jar in resolved_jars(args.dir)))
    except FileNotFoundError as exc:
        print(f"spark-submit.sh: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
