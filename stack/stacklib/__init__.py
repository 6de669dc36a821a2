"""The local server stack (Kafka, Cassandra, Elasticsearch) behind ``stack/stackctl.py``."""


class StackError(Exception):
    """A situation the user must fix: a one-line message, and optional lines of evidence."""

    def __init__(self, message: str, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.details = details or []
