"""Shared fixtures: one local SparkSession for the whole test session.

The session carries the connector jars that `make setup` resolved (no Ivy at test time), so unit
and integration tests share it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest
from pyspark.sql import SparkSession

from clickstream_spark.config import LOCAL_STACK_CONFIG_FILE, PROJECT_ROOT, Config, load_config
from clickstream_spark.packages import resolved_jars
from clickstream_spark.session import connector_conf

# Python workers must run the same interpreter (pandas, pyarrow) as the tests.
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)

STATE_DIR = PROJECT_ROOT / ".state"


@pytest.fixture(scope="session")
def config() -> Config:
    """The config of the local stack the tests run against (conf/local.toml over the file)."""
    return load_config(overlay=LOCAL_STACK_CONFIG_FILE)


@pytest.fixture(scope="session")
def spark(config: Config) -> Iterator[SparkSession]:
    session = (
        SparkSession.builder.master("local[2]")
        .appName("clickstream-spark-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.driver.memory", "1g")
        .config("spark.jars", ",".join(map(str, resolved_jars(STATE_DIR / "spark-jars"))))
        .config("spark.sql.extensions", "com.datastax.spark.connector.CassandraSparkExtensions")
        .config(map=connector_conf(config))
        .getOrCreate()
    )
    yield session
    session.stop()
