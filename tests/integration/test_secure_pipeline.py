"""The pipeline on the secured stack, each job as its own user: the same exact results as on the
plaintext stack, no secret printed, logged or shown, and each user held to what its job needs.

Runs only against ``make up SECURE=1`` (``make test`` does it after the plaintext suite).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import socket
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cassandra import Unauthorized
from cassandra.cluster import Session
from confluent_kafka import KafkaError, Producer
from elasticsearch import AuthorizationException, Elasticsearch
from stacklib.secure import AGGREGATE, STREAM

from clickstream_spark.config import PROJECT_ROOT, Config
from clickstream_spark.kafka_clients import librdkafka_config
from tests.integration.pipeline import (
    OpenPipeline,
    Pipeline,
    StreamRun,
    assert_cassandra_matches,
    assert_same_metrics,
    cassandra_events,
    expected_events,
    kill_hard,
    published,
    reference_documents,
)
from tests.integration.secure import (
    FILES,
    cassandra_session_as,
    grant_pipeline,
    require_secured_stack,
    run_as_job_users,
    secret_values,
    user_env,
)

pytestmark = pytest.mark.secure

DAY = dt.date(2026, 3, 14)
UI_TIMEOUT_S = 240


@dataclass(frozen=True)
class Secured:
    pipeline: Pipeline
    sent: list[dict]
    stream: StreamRun
    aggregated: str


@pytest.fixture(scope="module")
def secured(
    tmp_path_factory: pytest.TempPathFactory,
    run_id: str,
    open_pipeline: OpenPipeline,
    config: Config,
    cassandra: Session,
) -> Iterator[Secured]:
    """The plaintext pipeline test's day of messages (bad ones of every kind among them),
    generated, streamed and aggregated on the secured stack by the jobs' own users."""
    require_secured_stack()
    with open_pipeline(f"sec_{run_id}", tmp_path_factory.mktemp("secured")) as p:
        run_as_job_users(p)
        grant_pipeline(p, config, cassandra)
        sent = p.generate("day", 4000, 11, "--day", DAY.isoformat(), "--bad-fraction", "0.05")
        stream = p.run_stream("--available-now", "--max-offsets-per-trigger", "1500")
        yield Secured(p, sent, stream, p.run("aggregate"))


def test_the_secured_pipeline_gives_exactly_the_reference_results(
    secured: Secured, cassandra: Session, es: Elasticsearch
) -> None:
    sent, stream = secured.sent, secured.stream
    bad = sum(m["event"] is None for m in sent)

    assert_cassandra_matches(secured.pipeline, cassandra, sent)
    assert (stream.total("rows"), stream.total("quarantined")) == (len(sent), bad)
    assert "hour windows done" in secured.aggregated
    assert_same_metrics(published(es, secured.pipeline.alias), reference_documents(sent))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _get_json(url: str) -> object:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def _live_environment(port: int, job: object) -> str:
    """The REST environment of the application behind the Spark UI on ``port``, once it is up."""
    deadline = time.monotonic() + UI_TIMEOUT_S
    while True:
        assert job.poll() is None, "the stream ended before its UI answered"  # type: ignore[attr-defined]
        try:
            apps = _get_json(f"http://127.0.0.1:{port}/api/v1/applications")
            if apps:
                app = apps[0]["id"]  # type: ignore[index]
                url = f"http://127.0.0.1:{port}/api/v1/applications/{app}/environment"
                with urllib.request.urlopen(url, timeout=10) as response:
                    return response.read().decode()
        except (OSError, ValueError):  # not listening yet, or "Spark is starting up"
            pass
        assert time.monotonic() < deadline, f"no Spark UI on port {port} in {UI_TIMEOUT_S} s"
        time.sleep(2)


def _listen_addresses(port: int) -> set[str]:
    """The local addresses (hex, as /proc/net shows them) listening on ``port``."""
    found = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.rpartition(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


def _group_command_lines(group: int) -> list[str]:
    """The command line of every process of process group ``group`` (what ``ps`` shows)."""
    lines = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[2]) == group:
                lines.append((stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except (OSError, ValueError, IndexError):
            continue
    return lines


def _files_under(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()] if folder.exists() else []


def test_no_secret_is_printed_logged_or_shown(secured: Secured) -> None:
    """Every password of the stack, searched in the jobs' output, the servers' and the jobs'
    logs, the Spark event logs, the live Spark UI's REST environment and the jobs' command lines.
    """
    pipeline = secured.pipeline
    port = _free_port()
    job = pipeline.start(
        "stream",
        "--trigger-interval",
        "5 seconds",
        log_name="live-stream",
        conf={"spark.ui.enabled": "true", "spark.ui.port": str(port)},
    )
    try:
        environment = _live_environment(port, job)
        command_lines = _group_command_lines(job.pid)
        listening = _listen_addresses(port)
    finally:
        kill_hard(job)

    # The UI shows the connectors' settings, their secret-bearing values redacted.
    properties = dict(json.loads(environment)["sparkProperties"])
    assert properties["spark.cassandra.auth.username"] == STREAM.cassandra
    assert properties["spark.cassandra.auth.password"] == "*********(redacted)"
    # Loopback only: IPv4 127.0.0.1, or the same as IPv6's mapped form.
    assert listening and listening <= {"0100007F", "0000000000000000FFFF00000100007F"}, listening
    assert len(command_lines) >= 2  # spark-submit's JVM and the Python driver, at least

    places = {
        "the jobs' output": "\n".join(pipeline.outputs),
        "the live Spark UI's environment": environment,
        "the jobs' command lines": "\n".join(command_lines),
    }
    files = [
        *_files_under(PROJECT_ROOT / ".state" / "logs"),
        *_files_under(pipeline.event_log_dir),
        *_files_under(PROJECT_ROOT / ".state" / "spark-events"),
        pipeline.work / "live-stream.log",
    ]
    places |= {str(path): path.read_bytes().decode(errors="replace") for path in files}
    leaks = [
        f"{name} in {place}"
        for name, secret in secret_values().items()
        for place, text in places.items()
        if secret in text
    ]
    assert not leaks, leaks
    assert len(files) > 5  # the servers' logs and the event logs were there to search


def _refused_by_cassandra(session: object, statement: str) -> str:
    with pytest.raises(Unauthorized) as refused:
        session.execute(statement, timeout=30)  # type: ignore[attr-defined]
    return str(refused.value)


def test_the_stream_user_cannot_read_or_drop_tables(secured: Secured, config: Config) -> None:
    keyspace = secured.pipeline.keyspace
    with cassandra_session_as(config, str(STREAM.cassandra), FILES.password(STREAM)) as session:
        for table in ("events", "quarantine", "changed_windows", "aggregated_windows"):
            message = _refused_by_cassandra(session, f"SELECT * FROM {keyspace}.{table} LIMIT 1")
            assert "has no SELECT permission" in message
        message = _refused_by_cassandra(session, f"DROP TABLE {keyspace}.events")
        assert "has no DROP permission" in message
        message = _refused_by_cassandra(session, f"DROP KEYSPACE {keyspace}")
        assert "has no DROP permission" in message


def test_the_aggregation_user_cannot_write_events_or_other_indices(
    secured: Secured, config: Config, es: Elasticsearch
) -> None:
    keyspace = secured.pipeline.keyspace
    password = FILES.password(AGGREGATE)
    with cassandra_session_as(config, str(AGGREGATE.cassandra), password) as session:
        message = _refused_by_cassandra(
            session,
            f"INSERT INTO {keyspace}.events (hour, bucket, row_key, user_id) "
            "VALUES ('2026-03-14 10:00:00+0000', 0, 'x', 'u')",
        )
        assert "has no MODIFY permission" in message
        message = _refused_by_cassandra(session, f"TRUNCATE {keyspace}.quarantine")
        assert "has no MODIFY permission" in message

    aggregate_es = es.options(basic_auth=(str(AGGREGATE.elasticsearch), password))
    with pytest.raises(AuthorizationException):
        aggregate_es.indices.create(index="not_clickstream")


def test_the_stream_user_cannot_write_the_topic(secured: Secured, config: Config) -> None:
    stream_kafka = dataclasses.replace(
        config.kafka,
        sasl_username=user_env(STREAM)["KAFKA_SASL_USERNAME"],
        sasl_password=user_env(STREAM)["KAFKA_SASL_PASSWORD"],
    )
    errors: list[KafkaError] = []
    producer = Producer(
        {
            **librdkafka_config(stream_kafka),
            "message.timeout.ms": 20_000,
            "on_delivery": lambda err, _msg: errors.append(err),
        }
    )
    producer.produce(secured.pipeline.topic, value=b"{}")
    producer.flush(30)
    assert [err.code() for err in errors] == [KafkaError.TOPIC_AUTHORIZATION_FAILED]


def test_the_erasure_user_erases_a_user_and_republishes(
    secured: Secured, cassandra: Session, es: Elasticsearch
) -> None:
    # Last in the module: it changes the pipeline the tests above read.
    pipeline = secured.pipeline
    user = next(m["event"]["user_id"] for m in secured.sent if m["event"] is not None)
    kept = [m for m in secured.sent if m["event"] is None or m["event"]["user_id"] != user]

    output = pipeline.run("erase", "--user-id", user)

    assert "1 user(s), 1 with stored data, 0 unknown" in output
    assert cassandra_events(cassandra, pipeline.keyspace) == expected_events(kept)
    assert_same_metrics(published(es, pipeline.alias), reference_documents(kept))
