"""README's "Running against secured clusters" shows exactly the permissions the secured stack
grants (stacklib.permissions): every ACL, every CQL grant and the Elasticsearch role."""

from __future__ import annotations

import json
import re

import pytest

from clickstream_spark.config import PROJECT_ROOT, load_config
from stacklib import permissions

README = (PROJECT_ROOT / "README.md").read_text()


@pytest.fixture(scope="module")
def section() -> str:
    start = README.index("## Running against secured clusters")
    return README[start : README.index("\n## ", start + 1)]


def test_readme_shows_every_kafka_acl(section: str) -> None:
    kafka = load_config(env={}).kafka
    shown = {line.split(" --add ", 1)[1] for line in section.splitlines() if "kafka-acls" in line}
    acls = permissions.kafka_acls(kafka.topic, kafka.group_id_prefix)
    assert shown == {acl.text() for acl in acls}


def test_readme_shows_every_cql_grant(section: str) -> None:
    keyspace = load_config(env={}).cassandra.keyspace
    shown = {line.rstrip(";") for line in section.splitlines() if line.startswith("GRANT ")}
    grants = [*permissions.stream_grants(keyspace), *permissions.aggregate_grants(keyspace)]
    # Erasure's: the aggregation's under its own role (said in prose), and the additions shown.
    erase = permissions.erase_grants(keyspace)
    shared = permissions.aggregate_grants(keyspace, "clickstream_erase")
    assert erase[: len(shared)] == shared
    assert shown == {*grants, *erase[len(shared) :]}


def test_readme_shows_the_aggregation_role(section: str) -> None:
    index = load_config(env={}).elasticsearch.index
    body = re.search(r"-d '(\{.*?\})'", section, re.DOTALL)
    assert body is not None
    assert json.loads(body.group(1)) == permissions.aggregate_role(index)
