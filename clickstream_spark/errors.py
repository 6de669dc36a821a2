"""Errors as an operator reads them: what failed, where, and the JVM's own root cause."""

from __future__ import annotations


class SinkError(RuntimeError):
    """A micro-batch could not be written; the message names the store, its hosts and the cause.

    Raised inside ``foreachBatch``, i.e. in Python called back from the JVM: the query then fails
    with this message embedded in a Python traceback, which :func:`clickstream_spark.cli.one_line`
    finds again.
    """


def jvm_root_cause(exc: BaseException) -> str | None:
    """``Class: message`` of the innermost cause of a JVM exception raised through py4j."""
    java = getattr(exc, "java_exception", None)
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
