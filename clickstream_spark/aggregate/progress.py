"""A run's progress: windows done out of the total, rate and time left; where a backfill stopped.

A backfill (``--date``, ``--hour``, ``--from/--to``) publishes shelf by shelf in time order and
writes, after each shelf, the last window start it published. A rerun of the same request after a
killed one skips every window up to there; a finished backfill, run again, starts over.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field

from cassandra.cluster import Session

from clickstream_spark.tables import BACKFILLS_TABLE
from clickstream_spark.windows import WindowKind, utc_now

log = logging.getLogger(__name__)

UNDER_A_MINUTE = "under a minute"


class Backfill:
    """The progress, in Cassandra, of the request for the ``kind`` windows ``first``..``last``."""

    def __init__(
        self,
        session: Session,
        keyspace: str,
        kind: WindowKind,
        first: dt.datetime,
        last: dt.datetime,
    ) -> None:
        self.session = session
        self.key = (kind, first, last)
        table = f"{keyspace}.{BACKFILLS_TABLE}"
        where = "WHERE window = ? AND first_start = ? AND last_start = ?"
        self._read = session.prepare(
            f"SELECT run_id, started_at, published_through, finished_at FROM {table} {where}"
        )
        self._start = session.prepare(
            f"INSERT INTO {table} (window, first_start, last_start, run_id, started_at, "
            "published_through, finished_at) VALUES (?, ?, ?, ?, ?, null, null)"
        )
        self._published = session.prepare(f"UPDATE {table} SET published_through = ? {where}")
        self._finished = session.prepare(f"UPDATE {table} SET finished_at = ? {where}")

    def begin(self, run_id: str) -> dt.datetime | None:
        """Start or resume: the last window start an unfinished earlier run published, if any."""
        row = self.session.execute(self._read, self.key).one()
        if row is not None and row.finished_at is None:
            log.info(
                "resuming the backfill started at %s UTC by run %s: published through %s",
                row.started_at,
                row.run_id,
                row.published_through or "nothing yet",
            )
            return row.published_through
        self.session.execute(self._start, (*self.key, run_id, utc_now()))
        return None

    def published(self, through: dt.datetime) -> None:
        self.session.execute(self._published, (through, *self.key))

    def finish(self) -> None:
        self.session.execute(self._finished, (utc_now(), *self.key))


@dataclass
class Progress:
    """Windows done out of ``total``; the rate counts only what this run did."""

    kind: WindowKind
    total: int
    done: int = 0  # earlier runs' published windows included
    started: float = field(default_factory=time.monotonic)
    done_here: int = 0

    def advance(self, windows: int, now: float | None = None) -> str:
        """Count ``windows`` more as done; the progress line to log."""
        self.done += windows
        self.done_here += windows
        elapsed = (time.monotonic() if now is None else now) - self.started
        per_minute = self.done_here / elapsed * 60 if elapsed > 0 else None
        return progress_line(self.kind, self.done, self.total, per_minute)


def progress_line(kind: WindowKind, done: int, total: int, per_minute: float | None) -> str:
    """``hour windows: 1512/8760 done (17.3%), 35.2 windows/min, about 3 h 26 min left``."""
    line = f"{kind} windows: {done}/{total} done ({100 * done / max(total, 1):.1f}%)"
    if per_minute:
        line += f", {per_minute:.1f} windows/min"
        if done < total:
            left = duration((total - done) / per_minute * 60)
            line += f", {left} left" if left == UNDER_A_MINUTE else f", about {left} left"
    return line


def duration(seconds: float) -> str:
    """A rough human duration: ``under a minute``, ``12 min``, ``3 h 05 min``, ``2 d 04 h``."""
    minutes = round(seconds / 60)
    if minutes < 1:
        return UNDER_A_MINUTE
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours:02d} h"
