"""The one line a failed job prints: what failed, where, and the root cause."""

from __future__ import annotations

import argparse
import dataclasses
import ssl
from pathlib import Path

import elastic_transport
import pytest
from pyspark.sql import SparkSession

from clickstream_spark.aggregate.publish import PublishError
from clickstream_spark.cli import load_or_exit, one_line
from clickstream_spark.config import Config
from clickstream_spark.errors import SinkError, StartError, root_cause_line

# The shape of a stream's error when foreachBatch raised (pyspark 3.5, abridged from a real run
# with Cassandra killed): the Python traceback is the message of the JVM's root cause.
PROXY_ERROR = """\
An exception was raised by the Python Proxy. Return Message: Traceback (most recent call last):
  File "/x/clickstream_spark/tables.py", line 34, in append_to_table
    .save()
py4j.protocol.Py4JJavaError: An error occurred while calling o590.save.
: java.lang.IllegalStateException: Control channel not available, aborting schema refresh
\tat com.datastax.oss.driver.internal.core.metadata.MetadataManager.refreshSchema(X.java:1)
Caused by: java.io.IOException: Connection reset

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "/x/clickstream_spark/ingest/batch.py", line 108, in write
    raise SinkError(
clickstream_spark.errors.SinkError: micro-batch 2 not written to Cassandra at 10.0.0.1:9042 \
(clickstream.events; the next start replays it): java.lang.IllegalStateException: Control \
channel not available, aborting schema refresh
"""


def test_an_error_raised_in_foreach_batch_is_its_own_message_with_the_known_cause() -> None:
    assert one_line(RuntimeError(PROXY_ERROR)) == (
        "Cassandra is unreachable: micro-batch 2 not written to Cassandra at 10.0.0.1:9042 "
        "(clickstream.events; the next start replays it): java.lang.IllegalStateException: "
        "Control channel not available, aborting schema refresh"
    )


def test_a_connection_closed_under_a_write_names_cassandra() -> None:
    # Seen when Cassandra was killed in the middle of a write (the kill's moment decides which).
    closed = "com.datastax.oss.driver.shaded.netty.channel.StacklessClosedChannelException"
    message = (
        "micro-batch 2 not written to Cassandra at 10.0.0.1:9042 (clickstream.events; the next "
        f"start replays it): {closed}"
    )
    assert one_line(SinkError(message)) == f"Cassandra is unreachable: {message}"


def test_another_python_error_in_foreach_batch_keeps_its_class_name() -> None:
    text = (
        PROXY_ERROR.split("The above")[0].replace(
            "py4j.protocol.Py4JJavaError: An error occurred while calling o590.save.\n", ""
        )
        + "ValueError: bad batch\n"
    )
    assert one_line(RuntimeError(text)) == "Cassandra is unreachable: ValueError: bad batch"


def test_a_plain_error_is_its_first_line() -> None:
    assert one_line(SinkError("first\nsecond")) == "first"
    assert one_line(ValueError("")) == "ValueError"


class FakeJavaException:
    """The py4j side of a JVM exception: a cause chain and toString()."""

    def __init__(self, text: str, cause: FakeJavaException | None = None) -> None:
        self.text, self.cause = text, cause

    def getCause(self) -> FakeJavaException | None:
        return self.cause

    def toString(self) -> str:
        return self.text


class FakePy4JError(Exception):
    def __init__(self, java: FakeJavaException) -> None:
        super().__init__("An error occurred while calling o123.save.\n: org.apache...")
        self.java_exception = java


ES_HADOOP_DOWN = (
    "org.elasticsearch.hadoop.rest.EsHadoopNoNodesLeftException: Connection error (check network "
    "and/or proxy settings)- all nodes failed; tried [[127.0.0.1:9200]]"
)


def jvm_error(root: str) -> FakePy4JError:
    job = FakeJavaException(
        "org.apache.spark.SparkException: Job aborted due to stage failure: ...\nat ...",
        FakeJavaException(root),
    )
    return FakePy4JError(job)


def test_the_jvm_root_cause_is_named() -> None:
    assert one_line(jvm_error(ES_HADOOP_DOWN)) == f"Elasticsearch is unreachable: {ES_HADOOP_DOWN}"


def test_the_python_client_failing_to_connect_names_elasticsearch() -> None:
    # How the client reports a refused connection (its text comes from ``errors``).
    refused = OSError("[Errno 111] Connection refused")
    error = elastic_transport.ConnectionError("Connection error", errors=(refused,))
    assert one_line(error) == (
        "Elasticsearch is unreachable: Connection error caused by: "
        "OSError([Errno 111] Connection refused)"
    )


def test_a_package_error_puts_its_context_before_the_cause() -> None:
    try:
        try:
            raise jvm_error(ES_HADOOP_DOWN)
        except FakePy4JError as exc:
            raise PublishError("3 hour window(s) not published") from exc
    except PublishError as exc:
        line = one_line(exc)
    assert line == (
        f"3 hour window(s) not published: Elasticsearch is unreachable: {ES_HADOOP_DOWN}"
    )
    assert "\n" not in line


def test_other_libraries_chains_are_not_repeated() -> None:
    try:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except ConnectionRefusedError as exc:
            raise elastic_transport.ConnectionError("Connection error", errors=(exc,)) from exc
    except elastic_transport.ConnectionError as exc:
        line = one_line(exc)
    assert line == (
        "Elasticsearch is unreachable: Connection error caused by: "
        "ConnectionRefusedError([Errno 111] Connection refused)"
    )


def test_a_long_message_is_cut_to_its_first_line_and_600_characters() -> None:
    line = one_line(RuntimeError("x" * 700 + "\nsecond line"))
    assert line == "x" * 600 + "..."


def test_a_start_error_is_its_own_message_without_a_cause_label() -> None:
    # "Connection refused" would otherwise add "a server refused the connection" in front.
    message = "cannot reach the Spark master spark://h:1 (h:1: Connection refused): check --master"
    assert one_line(StartError(message)) == message


def test_a_bad_config_file_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    defaults = Path(__file__).parents[2] / "conf" / "clickstream.toml"
    bad = tmp_path / "bad.toml"
    text = defaults.read_text().replace("max_event_age_days = 365", "max_event_age_days = -1")
    bad.write_text(text)
    with pytest.raises(SystemExit) as exited:
        load_or_exit(argparse.ArgumentParser(prog="stream.py"), str(bad))
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "stream.py: error: bad configuration: stream.max_event_age_days: must be between 0 and "
        "100000, got -1"
    ]


def test_a_pyspark_error_is_named_by_its_jvm_root_cause(spark: SparkSession) -> None:
    # pyspark converts some JVM errors to its own classes, whose first line can be a wrapper's
    # ("Error while instantiating ..."): the root cause says what to fix.
    with pytest.raises(Exception) as raised:
        spark.conf.set("spark.sql.shuffle.partitions", "abc")
    assert one_line(raised.value) == (
        "java.lang.IllegalArgumentException: "
        "spark.sql.shuffle.partitions should be int, but was abc"
    )


def test_a_stopped_context_says_where_to_look() -> None:
    error = RuntimeError(
        "java.lang.IllegalStateException: Cannot call methods on a stopped SparkContext."
    )
    assert one_line(error).startswith(
        "the Spark application was stopped (the reason is in the log above; at start, --master is "
        "often not a Spark master's URL): java.lang.IllegalStateException: Cannot call methods"
    )


def _python_driver_error(error: Exception) -> Exception:
    from cassandra.cluster import NoHostAvailable

    return NoHostAvailable("Unable to connect to any servers", {"10.0.0.1:9042": error})


def test_the_python_driver_refusing_credentials_names_cassandra_and_the_variables(
    config: Config,
) -> None:
    from cassandra import AuthenticationFailed

    anonymous = dataclasses.replace(config.cassandra, username=None, password=None)
    refused = _python_driver_error(AuthenticationFailed("Remote end requires authentication"))
    assert one_line(refused, dataclasses.replace(config, cassandra=anonymous)) == (
        f"Cassandra at {config.cassandra.endpoints} refused a client without credentials: wrong "
        "or missing credentials (check CASSANDRA_USERNAME and CASSANDRA_PASSWORD): "
        "AuthenticationFailed('Remote end requires authentication')})"
    )


def test_the_python_driver_distrusting_a_certificate_names_cassandra_not_elasticsearch(
    config: Config,
) -> None:
    untrusted = ssl.SSLCertVerificationError(
        1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate"
    )
    assert one_line(_python_driver_error(untrusted), config) == (
        f"Cassandra at {config.cassandra.endpoints}: its TLS certificate is not trusted (set "
        "CASSANDRA_SSL_CA to the PEM file of the CA that signed it): certificate verify failed: "
        "self-signed certificate"
    )


def test_a_request_with_every_node_down_names_cassandra_once() -> None:
    from cassandra.cluster import NoHostAvailable

    down = NoHostAvailable("Unable to complete the operation against any hosts", {})
    assert root_cause_line(down) == f"NoHostAvailable: {down}"  # its text omits its class
    message = (
        "micro-batch 3 not written to Cassandra at 10.0.0.1:9042 (clickstream.erased_users; the "
        f"next start replays it): {root_cause_line(down)}"
    )
    assert one_line(SinkError(message)) == f"Cassandra is unreachable: {message}"
    said = f"Cassandra is unreachable: no node answers at 10.0.0.1:9042: {down}"
    assert one_line(SinkError(said)) == said
