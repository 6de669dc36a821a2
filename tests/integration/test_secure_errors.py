"""Each way a job can be refused by the secured stack ends it within seconds, with one line that
names the server, the user and what to fix, and a non-zero exit; what a refused run left, a rerun
repairs. One short spark-submit per case (`--durations` shows what each took).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from cassandra.cluster import Session
from elasticsearch import Elasticsearch
from stacklib import permissions
from stacklib.secure import AGGREGATE, STREAM

from clickstream_spark.aggregate.publish import INDEX_PRIVILEGES
from clickstream_spark.config import Config
from tests.integration.pipeline import OpenPipeline, Pipeline, assert_cassandra_matches
from tests.integration.secure import (
    cassandra_role,
    es_user,
    grant_pipeline,
    require_secured_stack,
    run_as_job_users,
    user_env,
)

pytestmark = pytest.mark.secure

KAFKA = "Kafka at 127.0.0.1:9092"
CASSANDRA = "Cassandra at 127.0.0.1:9042"
ELASTICSEARCH = "Elasticsearch at https://127.0.0.1:9200"


@dataclass(frozen=True)
class Refusal:
    """A job run with its user's variables changed (None: unset), and what its line says."""

    job: str
    changes: dict[str, str | None]
    says: tuple[str, ...]
    code: int = 1
    kind: str = field(default="error")  # "error: bad configuration" is refused before Spark


CASES = {
    "wrong Kafka password": Refusal(
        "stream",
        {"KAFKA_SASL_PASSWORD": "not-the-password"},
        (f"{KAFKA} refused user clickstream_stream", "KAFKA_SASL_PASSWORD", "invalid credentials"),
    ),
    "wrong Cassandra password": Refusal(
        "stream",
        {"CASSANDRA_PASSWORD": "not-the-password"},
        (f"{CASSANDRA} refused user clickstream_stream", "CASSANDRA_PASSWORD", "incorrect"),
    ),
    "wrong Elasticsearch password": Refusal(
        "aggregate",
        {"ES_PASSWORD": "not-the-password"},
        (f"{ELASTICSEARCH} refused user clickstream_aggregate", "ES_PASSWORD", "401"),
    ),
    "missing Kafka credentials": Refusal(
        "stream",
        {"KAFKA_SASL_USERNAME": None, "KAFKA_SASL_PASSWORD": None},
        ("SCRAM-SHA-512 needs credentials", "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"),
        code=2,
        kind="error: bad configuration",
    ),
    "missing Cassandra credentials": Refusal(
        "stream",
        {"CASSANDRA_USERNAME": None, "CASSANDRA_PASSWORD": None},
        (f"{CASSANDRA} refused a client without credentials", "CASSANDRA_USERNAME"),
    ),
    "missing Elasticsearch credentials": Refusal(
        "aggregate",
        {"ES_USERNAME": None, "ES_PASSWORD": None},
        (f"{ELASTICSEARCH} refused a client without credentials", "ES_USERNAME"),
    ),
    "untrusted Kafka certificate": Refusal(
        "stream",
        {"KAFKA_SSL_CA_LOCATION": None},
        (f"{KAFKA}: its TLS certificate is not trusted", "KAFKA_SSL_CA_LOCATION"),
    ),
    "untrusted Cassandra certificate": Refusal(
        "stream",
        {"CASSANDRA_SSL_CA": None, "CLICKSTREAM_CASSANDRA_SSL": "true"},
        (f"{CASSANDRA}: its TLS certificate is not trusted", "CASSANDRA_SSL_CA", "PKIX"),
    ),
    "untrusted Elasticsearch certificate": Refusal(
        "aggregate",
        {"ES_SSL_CA": None},
        (f"{ELASTICSEARCH}: its TLS certificate is not trusted", "ES_SSL_CA"),
    ),
}


@dataclass(frozen=True)
class Waiting:
    pipeline: Pipeline
    sent: list[dict]


@pytest.fixture(scope="module")
def waiting(
    tmp_path_factory: pytest.TempPathFactory,
    run_id: str,
    open_pipeline: OpenPipeline,
    config: Config,
    cassandra: Session,
) -> Iterator[Waiting]:
    """A pipeline with a few hundred messages, bad ones among them, not streamed yet."""
    require_secured_stack()
    with open_pipeline(f"ref_{run_id}", tmp_path_factory.mktemp("refused")) as p:
        run_as_job_users(p)
        grant_pipeline(p, config, cassandra)
        yield Waiting(p, p.generate("few", 400, 21, "--bad-fraction", "0.1"))


def attempt_as(
    pipeline: Pipeline, job: str, env: dict[str, str], *args: str
) -> tuple[int, str, float]:
    """Run ``job`` with ``env`` as its user's variables: exit code, output, seconds."""
    saved = pipeline.job_env[job]
    pipeline.job_env[job] = env
    started = time.monotonic()
    try:
        code, output = pipeline.attempt(job, *args)
    finally:
        pipeline.job_env[job] = saved
    return code, output, time.monotonic() - started


def one_error_line(output: str, job: str, kind: str = "error") -> str:
    lines = [line for line in output.splitlines() if line.startswith(f"{job}.py: {kind}: ")]
    assert len(lines) == 1, output[-4000:]
    return lines[0]


def job_args(pipeline: Pipeline, job: str, name: str) -> list[str]:
    """A fresh checkpoint per stream run: each refusal is a first start."""
    checkpoint = pipeline.work / "checkpoints" / name.replace(" ", "-")
    return ["--available-now", "--checkpoint", str(checkpoint)] if job == "stream" else []


@pytest.mark.parametrize("name", CASES)
def test_a_refused_job_ends_with_one_line_saying_what_to_fix(waiting: Waiting, name: str) -> None:
    refused = waiting.pipeline
    case = CASES[name]
    user = STREAM if case.job == "stream" else AGGREGATE
    env = user_env(user)
    for variable, value in case.changes.items():
        if value is None:
            env.pop(variable, None)
        else:
            env[variable] = value

    code, output, seconds = attempt_as(refused, case.job, env, *job_args(refused, case.job, name))

    line = one_error_line(output, case.job, case.kind)
    print(f"{name}: exit {code} after {seconds:.0f} s: {line}")
    assert code == case.code, output[-4000:]
    for words in case.says:
        assert words in line, line


def test_a_stream_user_without_write_on_quarantine_stops_and_a_rerun_repairs(
    waiting: Waiting, cassandra: Session, run_id: str
) -> None:
    refused = waiting.pipeline
    role = f"t_noquarantine_{run_id}"
    keyspace = refused.keyspace
    grants = permissions.stream_grants(
        keyspace, role, tables=tuple(t for t in permissions.STREAM_WRITES if t != "quarantine")
    )
    checkpoint = refused.work / "checkpoints" / "no-quarantine"
    args = ("--available-now", "--checkpoint", str(checkpoint))
    with cassandra_role(cassandra, role, grants) as password:
        env = {**user_env(STREAM), "CASSANDRA_USERNAME": role, "CASSANDRA_PASSWORD": password}
        code, output, seconds = attempt_as(refused, "stream", env, *args)

    line = one_error_line(output, "stream")
    print(f"stream without MODIFY on quarantine: exit {code} after {seconds:.0f} s: {line}")
    assert code == 1
    for words in (f"{CASSANDRA} refused user {role}", f"{keyspace}.quarantine", "MODIFY"):
        assert words in line, line

    # The stream's own user, with every permission it needs, replays the refused micro-batch.
    refused.run("stream", *args)
    assert_cassandra_matches(refused, cassandra, waiting.sent)


def test_an_aggregation_user_without_rights_on_the_alias_stops_before_any_work(
    waiting: Waiting, es: Elasticsearch, config: Config, run_id: str
) -> None:
    refused = waiting.pipeline
    user = f"t_noalias_{run_id}"
    without_manage = tuple(p for p in INDEX_PRIVILEGES if p != "manage")
    role = permissions.aggregate_role(config.elasticsearch.index, without_manage)
    with es_user(es, user, role) as password:
        env = {**user_env(AGGREGATE), "ES_USERNAME": user, "ES_PASSWORD": password}
        code, output, seconds = attempt_as(refused, "aggregate", env)

    line = one_error_line(output, "aggregate")
    print(f"aggregation without manage on the alias: exit {code} after {seconds:.0f} s: {line}")
    assert code == 1
    for words in (f"{ELASTICSEARCH} refused user {user}", "manage", refused.alias):
        assert words in line, line
    assert "events read" not in output  # stopped before reading anything
    assert not es.indices.get(index=f"{refused.alias}-*", expand_wildcards="all")
