"""Event times in the contract: the ISO-8601 profile, the representable range, and how far from
the moment the message is read an event time may lie (:class:`EventTimeLimits`).

Kept apart from :mod:`clickstream_spark.ingest.contract` so that the timestamp rule reads as one
piece: it is the rule any other implementation of the contract must decide the same way.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from clickstream_spark.schema import EPOCH

# The accepted ISO-8601 profile: extended calendar date, 'T', hh:mm[:ss[.fraction]], and a zone
# that is 'Z' or ±hh:mm. datetime.fromisoformat alone would also take week dates, basic format,
# '+0530', '+05' and seconds offsets, and reads "+05:60" as +06:00 (hence minutes 00-59 here).
# Fraction digits beyond microseconds are truncated (EVENT_SCHEMA is microsecond precision).
ISO_8601 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?"
    r"(?:Z|[+-][0-9]{2}:[0-5][0-9])"
)
ONE_US = timedelta(microseconds=1)
# Accepted instants: 1970-01-01 to the end of 2099, UTC. No click predates the epoch, and the bound
# keeps every window (and the 30 minutes before an event) inside what Spark, Python's datetime and
# Cassandra all represent (a year-1 event would make windows in year 0, which PySpark cannot
# collect). Outside it a timestamp is bad, as ISO text or as epoch milliseconds.
MIN_TIMESTAMP_US = 0
MAX_TIMESTAMP_US = (datetime(2100, 1, 1, tzinfo=UTC) - EPOCH) // ONE_US - 1
MAX_EPOCH_MS_DIGITS = 16  # longer integer text is out of range: no need to build the int


class EventTimeLimits(NamedTuple):
    """How far an event time may lie from the moment the stream reads the message.

    Accepted: ``read_at - max_age <= timestamp <= read_at + max_lead`` (both ends included, and
    always within 1970..2099). A client with a broken clock would otherwise open windows across a
    century; an operator replaying older history widens ``max_age`` for that run.
    """

    max_age: timedelta = timedelta(days=365)
    max_lead: timedelta = timedelta(days=1)

    def accepted_us(self, read_at_us: int) -> tuple[int, int]:
        """The first and last accepted event time, in microseconds since the epoch (UTC)."""
        return (
            max(MIN_TIMESTAMP_US, read_at_us - self.max_age // ONE_US),
            min(MAX_TIMESTAMP_US, read_at_us + self.max_lead // ONE_US),
        )


DEFAULT_EVENT_TIME_LIMITS = EventTimeLimits()


def epoch_micros(moment: datetime) -> int:
    """An aware datetime in microseconds since the epoch."""
    if moment.tzinfo is None:
        raise ValueError(f"expected an aware datetime, got {moment!r}")
    return (moment - EPOCH) // ONE_US
