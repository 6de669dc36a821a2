"""Errors as an operator reads them: what failed, where, and the JVM's own root cause."""

from __future__ import annotations


class ConfigError(ValueError):
    """Bad configuration: the message names the setting and what is wrong with it."""


class SinkError(RuntimeError):
    """The stream cannot write to its store (a micro-batch, or a table checked at start); the
    message names the store, its hosts and the cause.

    Raised inside ``foreachBatch``, i.e. in Python called back from the JVM: the query then fails
    with this message embedded in a Python traceback, which :func:`clickstream_spark.cli.one_line`
    finds again.
    """


class StartError(RuntimeError):
    """A job cannot start on its cluster (master unreachable, no executor granted); the message
    says what to check."""


def jvm_root_cause(exc: BaseException) -> str | None:
    """``Class: message`` of the innermost cause of a JVM exception raised through py4j."""
    # py4j's errors carry the JVM exception as java_exception; pyspark's own (CapturedException:
    # AnalysisException, IllegalArgumentException...) as _origin.
    java = getattr(exc, "java_exception", None) or getattr(exc, "_origin", None)
    if java is None:
        return None
    try:
        while java.getCause() is not None and java.getCause() != java:
            java = java.getCause()
        return str(java.toString())
    except Exception:  # the JVM may be gone already
        return None


def first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def root_cause_line(exc: BaseException) -> str:
    """``Class: message`` (its first line) of the JVM root cause of ``exc``, or of ``exc`` itself
    (a Python error's text often omits its class: the Cassandra driver's NoHostAvailable)."""
    jvm = jvm_root_cause(exc)
    if jvm is not None:
        return first_line(jvm) or type(exc).__name__
    message = first_line(str(exc))
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


class ErasureError(RuntimeError):
    """An erasure that deleted what it found in Cassandra but could not re-publish its windows."""
