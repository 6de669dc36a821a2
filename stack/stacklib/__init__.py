"""The local server stack (Kafka, Cassandra, Elasticsearch) behind ``stack/stackctl.py``, and
the Spark standalone cluster behind ``stack/cluster.py``."""

from __future__ import annotations

import argparse
from collections.abc import Callable


class StackError(Exception):
    """A situation the user must fix: a one-line message, and optional lines of evidence."""

    def __init__(self, message: str, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.details = details or []


def run_command(args: argparse.Namespace, report: Callable[[StackError], None]) -> int:
    """Run a CLI's chosen handler: a StackError or OS error is one reported line and exit 1."""
    try:
        return args.handler(args)
    except StackError as error:
        report(error)
        return 1
    except OSError as error:
        report(StackError(str(error)))
        return 1
    except KeyboardInterrupt:
        return 130
