"""The jobs on a real Spark standalone cluster (`make cluster-up`) give exactly what they give on
local[2]: same Cassandra rows, same Elasticsearch documents.

Two isolated pipelines (own topic, keyspace, alias, checkpoint, event log folder) receive the same
messages from the real generator; one runs the stream and the aggregation with
--master spark://127.0.0.1:7077, the other with local[2]. On the cluster the Python code runs in
executors launched by the worker, so equal results prove that the package (--py-files), the
Spark config, the connectors (--packages) and the project's Python (pandas, pyarrow: the system
Python has neither) all reach them.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from urllib.request import urlopen

import pytest
from cassandra.cluster import Session
from elasticsearch import Elasticsearch
from stacklib.spark_cluster import MASTER_JSON_URL, MASTER_URL

from clickstream_spark.config import PROJECT_ROOT
from clickstream_spark.tools.generate import BAD_KINDS
from tests.integration.pipeline import (
    OpenPipeline,
    Pipeline,
    cassandra_events,
    es_documents,
    expected_events,
    expected_quarantine,
)

CLUSTER_CLI = [sys.executable, "stack/cluster.py"]
CLUSTER_TIMEOUT_S = 180
DAY = dt.date(2026, 5, 9)
EVENTS = 3000
SEED = 31


# --- fixtures ------------------------------------------------------------------------------------


def cluster_cli(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLUSTER_CLI, command],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=CLUSTER_TIMEOUT_S,
        check=False,
    )


@pytest.fixture(scope="module")
def spark_cluster() -> Iterator[str]:
    """The cluster's master URL; started if it is down, and then stopped at the end."""
    started_here = cluster_cli("status").returncode != 0
    if started_here:
        up = cluster_cli("up")
        assert up.returncode == 0, f"cluster.py up failed:\n{up.stdout}{up.stderr}"
    yield MASTER_URL
    if started_here:
        down = cluster_cli("down")
        assert down.returncode == 0, f"cluster.py down failed:\n{down.stdout}{down.stderr}"


@pytest.fixture(scope="module")
def pipelines(
    spark_cluster: str,
    tmp_path_factory: pytest.TempPathFactory,
    run_id: str,
    open_pipeline: OpenPipeline,
) -> Iterator[dict[str, Pipeline]]:
    """{"cluster": ..., "local": ...}: the same jobs, two masters, nothing shared."""
    with ExitStack() as stack:
        made = {
            kind: stack.enter_context(
                open_pipeline(
                    f"cl_{run_id}_{kind}",
                    tmp_path_factory.mktemp(f"cluster-{kind}"),
                    master=master,
                )
            )
            for kind, master in (("cluster", spark_cluster), ("local", "local[2]"))
        }
        yield made


@pytest.fixture(scope="module")
def messages(pipelines: dict[str, Pipeline]) -> list[dict]:
    """The same generated messages sent to both topics (the generator is seeded)."""
    args = ("--day", DAY.isoformat(), "--bad-fraction", "0.03")
    sent = {kind: p.generate("messages", EVENTS, SEED, *args) for kind, p in pipelines.items()}
    assert sent["cluster"] == sent["local"]
    bad_kinds = {m["kind"] for m in sent["cluster"] if m["event"] is None}
    assert bad_kinds == {kind.name for kind in BAD_KINDS}  # every kind of bad message is there
    return sent["cluster"]


@pytest.fixture(scope="module")
def outputs(pipelines: dict[str, Pipeline], messages: list[dict]) -> dict[str, str]:
    """Stream then aggregate in both pipelines; each job's output by "<kind> <job>".

    The two pipelines run side by side: much of a spark-submit is starting JVMs, resolving
    packages and waiting on the servers, which overlaps well even on two cores.
    """
    assert messages
    done: dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=len(pipelines)) as pool:
        for job, args in (("stream", ("--available-now",)), ("aggregate", ())):
            runs = {kind: pool.submit(timed, p, job, *args) for kind, p in pipelines.items()}
            done.update({f"{kind} {job}": run.result() for kind, run in runs.items()})
    return done


def timed(p: Pipeline, job: str, *args: str) -> str:
    """``p.run``, printing how long the job took (pytest -s shows it; spark-submit is slow) and
    keeping its output in the pipeline's folder."""
    started = time.monotonic()
    output = p.run(job, *args)
    print(f"{p.master} {job}: {time.monotonic() - started:.0f}s")
    (p.work / f"{job}.out").write_text(output)
    return output


# --- comparisons ---------------------------------------------------------------------------------


def events_rows(cassandra: Session, keyspace: str) -> Counter:
    """Every column of every stored event."""
    return Counter(tuple(row) for row in cassandra.execute(f"SELECT * FROM {keyspace}.events"))


def quarantine_rows(cassandra: Session, keyspace: str) -> Counter:
    """Quarantined messages by Kafka coordinates, value and reason.

    Left out: the topic (each pipeline has its own) and the two timestamps, which record when
    the generator sent the message and when the stream stored it.
    """
    columns = "partition, offset, raw_value, raw_encoding, reason"
    return Counter(
        tuple(row) for row in cassandra.execute(f"SELECT {columns} FROM {keyspace}.quarantine")
    )


def assert_same_documents(got: dict[str, dict], expected: dict[str, dict]) -> None:
    """Same _ids, every field equal except computed_at; floats up to the last bits.

    A mean sums its group's rows in the order the shuffle delivered them, which differs from
    run to run (executors fetch blocks concurrently): the last bit or two of
    avg_time_on_page_s may change, on a cluster and between two local runs alike.
    """
    assert got.keys() == expected.keys()
    for doc_id, doc in got.items():
        want = expected[doc_id]
        assert doc.keys() == want.keys(), doc_id
        for field, value in doc.items():
            if field == "computed_at":
                continue
            if isinstance(value, float):
                assert value == pytest.approx(want[field], rel=1e-12), (doc_id, field)
            else:
                assert value == want[field], (doc_id, field)


def event_logs(p: Pipeline) -> dict[str, str]:
    """Application id -> event log text, for every application of the pipeline."""
    return {path.name: path.read_text() for path in sorted(p.event_log_dir.iterdir())}


# --- tests ---------------------------------------------------------------------------------------


def test_the_cluster_has_a_worker_with_two_cores(spark_cluster: str) -> None:
    with urlopen(MASTER_JSON_URL, timeout=10) as response:
        state = json.load(response)
    assert state["status"] == "ALIVE"
    assert state["url"] == spark_cluster
    assert state["aliveworkers"] >= 1
    assert state["cores"] >= 2


def test_cluster_and_local_store_the_same_cassandra_rows(
    pipelines: dict[str, Pipeline],
    messages: list[dict],
    outputs: dict[str, str],
    cassandra: Session,
) -> None:
    cluster, local = pipelines["cluster"].keyspace, pipelines["local"].keyspace

    assert events_rows(cassandra, cluster) == events_rows(cassandra, local)
    assert quarantine_rows(cassandra, cluster) == quarantine_rows(cassandra, local)
    # And both are right, not just equal.
    assert cassandra_events(cassandra, cluster) == expected_events(messages)
    stored_bad = Counter(
        (row.raw_value, row.raw_encoding, row.reason)
        for row in cassandra.execute(f"SELECT * FROM {cluster}.quarantine")
    )
    assert stored_bad == expected_quarantine(messages)


def test_cluster_and_local_publish_the_same_documents(
    pipelines: dict[str, Pipeline], outputs: dict[str, str], es: Elasticsearch
) -> None:
    cluster = es_documents(es, pipelines["cluster"].alias)
    local = es_documents(es, pipelines["local"].alias)

    assert {doc["window"] for doc in cluster.values()} == {"hour", "day"}
    assert_same_documents(cluster, local)
    assert "day windows done" in outputs["cluster aggregate"]


def test_the_cluster_applications_are_finished_in_the_event_log(
    pipelines: dict[str, Pipeline], outputs: dict[str, str]
) -> None:
    logs = event_logs(pipelines["cluster"])

    # Standalone masters name applications app-<time>-<n> (local[2] would give local-<time>);
    # no .inprogress suffix: the History Server shows them as completed.
    assert len(logs) == 2, sorted(logs)
    assert all(name.startswith("app-") and "." not in name for name in logs), sorted(logs)
    stream_log = next(text for text in logs.values() if "clickstream_ingest" in text)
    assert '"name":"clickstream_ingest"' in stream_log  # the named streaming query
    assert "clickstream_ingest batch 0: " in stream_log  # job descriptions per micro-batch
    for text in logs.values():
        assert '"Event":"SparkListenerExecutorAdded"' in text  # work ran on the worker's executor
        assert '"Event":"SparkListenerApplicationEnd"' in text
    assert finished_on_master(set(logs)) == set(logs)


def finished_on_master(app_ids: set[str], timeout_s: float = 30) -> set[str]:
    """Those of ``app_ids`` that the master lists as finished (it learns it asynchronously)."""
    deadline = time.monotonic() + timeout_s
    while True:
        with urlopen(MASTER_JSON_URL, timeout=10) as response:
            completed = json.load(response)["completedapps"]
        finished = {app["id"] for app in completed if app["state"] == "FINISHED"} & app_ids
        if finished == app_ids or time.monotonic() >= deadline:
            return finished
        time.sleep(1)
