"""What both entry points share: config loading, logging, and one-line errors."""

from __future__ import annotations

import argparse
import logging
import re
import sys
from typing import NoReturn

import elastic_transport

from clickstream_spark.access import classify, explain
from clickstream_spark.config import Config, ConfigError, load_config
from clickstream_spark.errors import SinkError, StartError, first_line, jvm_root_cause

# Root causes worth naming in the one line an operator reads, matched in the JVM's message.
_KNOWN_CAUSES = (
    ("NoHostAvailableException", "Cassandra is unreachable"),
    ("AllNodesFailedException", "Cassandra is unreachable"),
    ("NoNodeAvailableException", "Cassandra is unreachable"),
    # The connector's driver, asked for a table's schema while no node answers.
    ("Control channel not available", "Cassandra is unreachable"),
    # The Cassandra driver's connections failing under a write (which one shows depends on the
    # moment Cassandra died): its own connection errors and its shaded Netty's channel errors.
    ("com.datastax.oss.driver.api.core.connection.", "Cassandra is unreachable"),
    ("com.datastax.oss.driver.shaded.netty.channel.", "Cassandra is unreachable"),
    # The Python driver's (the aggregation's lease and records, the stream's erased users):
    # at connect, and on a request once every node is down.
    ("Unable to connect to any servers", "Cassandra is unreachable"),
    ("Unable to complete the operation against any hosts", "Cassandra is unreachable"),
    ("EsHadoopNoNodesLeftException", "Elasticsearch is unreachable"),
    ("Cannot detect ES version", "Elasticsearch is unreachable"),
    ("Connection refused", "a server refused the connection"),
    ("TimeoutException: Timed out waiting for a node assignment", "Kafka is unreachable"),
    ("UnknownTopicOrPartitionException", "the Kafka topic does not exist"),
    # A spark:// URL that accepts connections but is no master: Spark gives up after a minute.
    (
        "Cannot call methods on a stopped SparkContext",
        "the Spark application was stopped (the reason is in the log above; at start, "
        "--master is often not a Spark master's URL)",
    ),
)


def configure_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # py4j logs every JVM call at INFO.
    logging.getLogger("py4j").setLevel(logging.WARNING)
    # One line per HTTP request to Elasticsearch is noise at INFO.
    logging.getLogger("elastic_transport").setLevel(logging.WARNING)


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="config file (default: $CLICKSTREAM_CONFIG or conf/clickstream.toml)",
    )
    parser.add_argument("--verbose", action="store_true", help="debug logging")


def load_or_exit(parser: argparse.ArgumentParser, path: str | None) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        parser.exit(2, f"{parser.prog}: error: bad configuration: {exc}\n")


# foreachBatch code is Python called back from the JVM: when it raises, the query's JVM error
# carries the Python traceback as its message, after this marker.
_PYTHON_PROXY = "An exception was raised by the Python Proxy. Return Message: "
# The exception line a Python traceback ends with: `[module.]Class: message`.
_EXCEPTION_LINE = re.compile(r"(?:[A-Za-z_][\w.]*\.)?([A-Za-z_]\w*): (.+)")
# Ours already say what failed and where; the class name would add nothing.
_OWN_ERRORS = {SinkError.__name__}


def _python_error(text: str) -> str | None:
    """The last exception line of a Python traceback embedded in a JVM error, if there is one."""
    _, found, traceback = text.partition(_PYTHON_PROXY)
    if not found:
        return None
    last = None
    for line in traceback.splitlines():
        match = _EXCEPTION_LINE.fullmatch(line.rstrip())
        if match:
            last = match
    if last is None:
        return None
    name, message = last.groups()
    return message if name in _OWN_ERRORS else f"{name}: {message}"


# The Python Elasticsearch client's network failures (index creation, alias swap, counts): its
# text names urllib3 and "Connection refused", not Elasticsearch.
_ES_CLIENT_NETWORK_ERRORS = (elastic_transport.ConnectionError, elastic_transport.ConnectionTimeout)


def one_line(exc: BaseException, config: Config | None = None) -> str:
    """A single line that says what went wrong, for a job's exit message.

    One of this package's exceptions raised ``from`` another one (``raise PublishError("...")
    from exc``) says what the failure means for the job, its cause says why: both go on the line,
    context first. Other libraries' chains stay out: their causes repeat their own message. A
    SinkError already carries its root cause in its message. With ``config``, a refused access
    (credentials, permission, TLS trust) also names the server, the user and what to change.
    """
    cause = exc.__cause__
    own = type(exc).__module__.startswith(f"{__package__}.")
    if cause is not None and own and not isinstance(exc, SinkError):
        return f"{_describe(exc)}: {one_line(cause, config)}"
    return _describe(exc, None if own else config)


def _describe(exc: BaseException, config: Config | None = None) -> str:
    text = jvm_root_cause(exc) or str(exc)
    embedded = _python_error(text)  # ours already says what to fix
    explanation = explain(exc, config) if config is not None and not embedded else None
    if explanation:
        return explanation
    cause = next((label for marker, label in _KNOWN_CAUSES if marker in text), None)
    if isinstance(exc, StartError):  # its message already says what failed and what to check
        cause = None
    if isinstance(exc, _ES_CLIENT_NETWORK_ERRORS):
        cause = "Elasticsearch is unreachable"
    if classify(text):  # a server that refused a client is not unreachable
        cause = None
    first = embedded or first_line(text) or type(exc).__name__
    if len(first) > 600:  # room for a refused access: server, user, what to fix, and why
        first = first[:600] + "..."
    if cause and first.startswith(f"{cause}:"):  # ours may say it already
        cause = None
    return f"{cause}: {first}" if cause else first


def fail(prog: str, message: str, code: int = 1) -> NoReturn:
    print(f"{prog}: error: {message}", file=sys.stderr)
    sys.exit(code)
