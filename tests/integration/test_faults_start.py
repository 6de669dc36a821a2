"""The jobs refuse to start with one line saying what to fix: a table the stream could not write,
a Spark master that does not answer, a master that grants no executor, a bad config value."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cassandra.cluster import Session

from clickstream_spark.config import PROJECT_ROOT
from tests.integration.pipeline import JOB_TIMEOUT_S, Pipeline, stored_count


def test_a_missing_table_stops_the_stream_before_it_reads_kafka(
    pipeline: Pipeline, cassandra: Session
) -> None:
    pipeline.generate("waiting", 200, 5)
    # The table written last: without the check, a whole micro-batch of events and
    # quarantine rows would be written before the job failed on it.
    cassandra.execute(f"DROP TABLE {pipeline.keyspace}.changed_windows", timeout=60)

    code, output = pipeline.attempt("stream", "--available-now")

    errors = [line for line in output.splitlines() if line.startswith("stream.py: error:")]
    assert code == 1, output[-3000:]
    assert len(errors) == 1, output[-3000:]
    table = f"{pipeline.keyspace}.changed_windows"
    assert errors[0].startswith(f"stream.py: error: cannot write to {table} in Cassandra at ")
    assert "conf/cassandra/*.cql" in errors[0]
    assert pipeline.planned_batches() == 0  # no micro-batch was planned: Kafka was not read
    assert stored_count(cassandra, pipeline.keyspace) == 0


# --- the Spark master -----------------------------------------------------------------------------


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def submit(job: str, master: str, tmp_path: Path, **env: str) -> tuple[int, list[str]]:
    """Run ``job`` through ./spark-submit.sh on ``master``: its exit code and output lines."""
    done = subprocess.run(
        ["./spark-submit.sh", "--master", master, "--conf", "spark.ui.enabled=false",
         f"jobs/{job}.py"],
        cwd=PROJECT_ROOT,
        env={**os.environ, "CLICKSTREAM_STREAM_CHECKPOINT": str(tmp_path / "checkpoint"),
             "CLICKSTREAM_SPARK_EVENT_LOG_DIR": str(tmp_path / "events"), **env},
        capture_output=True,
        text=True,
        timeout=JOB_TIMEOUT_S,
        check=False,
    )  # fmt: skip
    return done.returncode, (done.stdout + done.stderr).splitlines()


def the_error(job: str, lines: list[str]) -> str:
    """The one error line of a failed job, checked to be alone and free of Java traces."""
    errors = [line for line in lines if line.startswith(f"{job}.py: error: ")]
    assert len(errors) == 1, "\n".join(lines[-40:])
    assert not any(line.startswith("\tat ") for line in lines), "\n".join(lines[-40:])
    return errors[0]


@pytest.mark.parametrize("job", ["stream", "aggregate"])
def test_an_unreachable_master_is_one_line_at_once(job: str, tmp_path: Path) -> None:
    master = f"spark://127.0.0.1:{free_port()}"

    code, lines = submit(job, master, tmp_path)

    assert code == 1
    # The whole output: no Java trace, and no Ivy report either (the jars were resolved once, by
    # make setup).
    assert lines == [
        f"{job}.py: error: cannot reach the Spark master {master} ({master[8:]}: Connection "
        "refused): check --master and that the master is running"
    ]


@pytest.fixture(scope="module")
def master_without_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A standalone master from the pyspark wheel, with no worker: it grants no executor."""
    port, ui_port = free_port(), free_port()
    log = tmp_path_factory.mktemp("master") / "master.log"
    with log.open("w") as out:
        master = subprocess.Popen(
            [str(PROJECT_ROOT / ".venv" / "bin" / "spark-class"),
             "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
             "--port", str(port), "--webui-port", str(ui_port)],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while "I have been elected leader" not in log.read_text():
            assert master.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"no master in 120 s:\n{log.read_text()}"
            time.sleep(0.5)
        yield f"spark://127.0.0.1:{port}"
    finally:
        os.killpg(master.pid, signal.SIGTERM)
        master.wait(timeout=60)


@pytest.mark.parametrize("job", ["stream", "aggregate"])
def test_a_master_that_grants_no_executor_is_one_line_after_the_start_timeout(
    job: str, master_without_workers: str, tmp_path: Path
) -> None:
    code, lines = submit(
        job, master_without_workers, tmp_path, CLICKSTREAM_SPARK_START_TIMEOUT_SECONDS="5"
    )

    assert code == 1
    assert the_error(job, lines).startswith(
        f"{job}.py: error: no executor granted by {master_without_workers} within 5 s: check "
        "that workers are registered and have free cores and memory for an executor"
    )


# --- a bad config value ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("job", "setting", "value", "message"),
    [
        ("stream", "STREAM_MAX_EVENT_LEAD_HOURS", "-1", "stream.max_event_lead_hours: must be "
         "between 0 and 1000000, got -1"),
        ("aggregate", "CASSANDRA_READ_CONSISTENCY", "SERIAL", "cassandra.read_consistency: "
         "expected one of ONE, TWO, THREE, QUORUM, ALL, LOCAL_ONE, LOCAL_QUORUM, got 'SERIAL'"),
    ],
)  # fmt: skip
def test_a_bad_config_value_is_one_line(
    job: str, setting: str, value: str, message: str, tmp_path: Path
) -> None:
    # Decided before any Spark session: the job's own Python, as spark-submit runs it.
    done = subprocess.run(
        [sys.executable, f"jobs/{job}.py"],
        cwd=PROJECT_ROOT,
        env={**os.environ, f"CLICKSTREAM_{setting}": value},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"{job}.py: error: bad configuration: {message}"]


def test_cluster_deploy_mode_is_refused_for_python_on_standalone() -> None:
    # Why README says to supervise client mode instead: spark-submit refuses it before any
    # connection (no master needs to run at this address).
    done = subprocess.run(
        ["./spark-submit.sh", "--master", f"spark://127.0.0.1:{free_port()}",
         "--deploy-mode", "cluster", "--supervise", "jobs/stream.py"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=JOB_TIMEOUT_S, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert (
        "Cluster deploy mode is currently not supported for python applications on standalone "
        "clusters." in done.stdout + done.stderr
    )
