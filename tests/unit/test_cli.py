"""The one line a failed job prints: what failed, where, and the root cause."""

from __future__ import annotations

from clickstream_spark.cli import one_line
from clickstream_spark.errors import SinkError

# The shape of a stream's error when foreachBatch raised (pyspark 3.5, abridged from a real run
# with Cassandra killed): the Python traceback is the message of the JVM's root cause.
PROXY_ERROR = """\
An exception was raised by the Python Proxy. Return Message: Traceback (most recent call last):
  File "/x/clickstream_spark/ingest.py", line 88, in _write_cassandra
    .save()
py4j.protocol.Py4JJavaError: An error occurred while calling o590.save.
: java.lang.IllegalStateException: Control channel not available, aborting schema refresh
\tat com.datastax.oss.driver.internal.core.metadata.MetadataManager.refreshSchema(X.java:1)
Caused by: java.io.IOException: Connection reset

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "/x/clickstream_spark/ingest.py", line 92, in _write_cassandra
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
