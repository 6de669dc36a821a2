"""One erasure request in Cassandra: keep the users out, delete what they left, mark its windows.

In this order, so that a failure at any point leaves nothing that a rerun would not finish: the
users go on the erased list first (the stream stops storing them), then their events are found
through the ``user_id`` index and deleted, then the quarantined messages that carry their id,
then the windows those events touched are marked changed (the aggregation re-publishes them),
and last each user's row goes into ``erasure_log`` with ``published_at`` still null.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from cassandra.cluster import Session
from cassandra.concurrent import execute_concurrent_with_args
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from clickstream_spark.config import Config
from clickstream_spark.erasure.erased_users import add_erased
from clickstream_spark.tables import (
    CHANGED_WINDOWS_TABLE,
    ERASURE_LOG_TABLE,
    EVENTS_TABLE,
    QUARANTINE_TABLE,
    read_table,
)
from clickstream_spark.windows import MAX_GAP_S, Window, utc_now, window_start, windows_of_hours

log = logging.getLogger(__name__)

# The batch_id of a window mark written by an erasure, not by a micro-batch of the stream.
ERASURE_BATCH_ID = -1
_CONCURRENCY = 64  # deletes in flight
_GAP = dt.timedelta(seconds=MAX_GAP_S)
# "user_id": "..." or "user_id": 123 anywhere in a text, for messages that are not valid JSON.
_USER_ID_TEXT = re.compile(r'"user_id"\s*:\s*(?:"((?:[^"\\]|\\.)*)"|(-?\d+))')


@dataclass(frozen=True)
class UserErasure:
    """What one request did for one user (the user id itself goes only to erasure_log)."""

    user_id: str
    events_deleted: int
    quarantine_deleted: int
    windows: list[Window]

    @property
    def found(self) -> bool:
        return bool(self.events_deleted or self.quarantine_deleted)


def read_user_ids(values: list[str], files: list[str]) -> list[str]:
    """The ids of the command line and of the files (one per line, blank lines skipped), each
    once, in order; a ValueError names what is wrong."""
    ids = list(values)
    for name in files:
        try:
            text = Path(name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"--from-file {name}: {exc}") from None
        ids += [line.rstrip("\r") for line in text.split("\n") if line.strip()]
    if not ids:
        raise ValueError("no user to erase: give --user-id or --from-file")
    if any(not user_id.strip() for user_id in ids):
        raise ValueError("an empty --user-id matches no stored event")
    return list(dict.fromkeys(ids))


def touched_windows(timestamps: Iterable[dt.datetime]) -> list[Window]:
    """The hour and day windows whose results events at ``timestamps`` entered: each event's own
    hour and those of the instants 30 minutes before and after it (its user's previous and next
    events, whose time on page, entrance or exit it decided) — the stream's ``touched_hours``."""
    hours = {
        window_start("hour", instant) for ts in timestamps for instant in (ts - _GAP, ts, ts + _GAP)
    }
    return windows_of_hours(hours)


def ids_in_message(raw: str) -> set[str]:
    """Every ``user_id`` value a quarantined message carries, as stored text: from its JSON at any
    depth (duplicated keys included) or, when it is not JSON, from its text."""
    found: set[str] = set()

    def pairs(items: list[tuple[str, object]]) -> dict:
        for key, value in items:
            if key == "user_id" and isinstance(value, str | int) and not isinstance(value, bool):
                found.add(str(value))
        return dict(items)

    try:
        json.loads(raw, object_pairs_hook=pairs)
    except (ValueError, RecursionError):
        for text, number in _USER_ID_TEXT.findall(raw):
            if number:
                found.add(number)
            else:
                try:
                    found.add(json.loads(f'"{text}"'))
                except ValueError:
                    found.add(text)
    return found


def _find_events(session: Session, keyspace: str, user_id: str) -> list[tuple]:
    """(hour, bucket, row_key, ts) of every stored event of ``user_id``, through its index."""
    query = session.prepare(
        f"SELECT hour, bucket, row_key, ts FROM {keyspace}.{EVENTS_TABLE} WHERE user_id = ?"
    )
    return [tuple(row) for row in session.execute(query, (user_id,))]


def delete_events(session: Session, keyspace: str, user_id: str) -> list[dt.datetime]:
    """Delete every stored event of ``user_id``; their event times."""
    found = _find_events(session, keyspace, user_id)
    delete = session.prepare(
        f"DELETE FROM {keyspace}.{EVENTS_TABLE} WHERE hour = ? AND bucket = ? AND row_key = ?"
    )
    keys = [(hour, bucket, row_key) for hour, bucket, row_key, _ in found]
    _execute_all(session, delete, keys)
    return [ts for *_, ts in found]


def attributable_quarantine(
    spark: SparkSession, config: Config, user_ids: Sequence[str]
) -> dict[str, list[tuple[str, int, int]]]:
    """user_id -> Kafka coordinates of the quarantined messages that carry it.

    One scan of the quarantine table (its rows live ``quarantine_ttl_days``): Spark keeps the
    rows whose text contains one of the ids, the driver decides which ones carry it as user_id.
    """
    text = F.col("raw_value")
    contains = F.lit(False)
    for user_id in user_ids:
        contains = contains | (F.instr(text, user_id) > 0)
    candidates = (
        read_table(spark, config, QUARANTINE_TABLE)
        .where((F.col("raw_encoding") == "utf8") & contains)
        .select("topic", "partition", "offset", "raw_value")
        .collect()
    )
    wanted = set(user_ids)
    by_user: dict[str, list[tuple[str, int, int]]] = {user_id: [] for user_id in user_ids}
    for row in candidates:
        for user_id in ids_in_message(row["raw_value"]) & wanted:
            by_user[user_id].append((row["topic"], row["partition"], row["offset"]))
    return by_user


class _Statements:
    """The request's prepared statements, on the configured keyspace."""

    def __init__(self, session: Session, keyspace: str) -> None:
        self.session = session
        self.keyspace = keyspace
        self.delete_message = session.prepare(
            f"DELETE FROM {keyspace}.{QUARANTINE_TABLE} WHERE topic = ? AND partition = ? "
            "AND offset = ?"
        )
        self.mark = session.prepare(
            f"INSERT INTO {keyspace}.{CHANGED_WINDOWS_TABLE} (window, window_start, changed_at, "
            "batch_id) VALUES (?, ?, ?, ?)"
        )
        self.record = session.prepare(
            f"INSERT INTO {keyspace}.{ERASURE_LOG_TABLE} (request_id, user_id, requested_at, "
            "events_deleted, quarantine_deleted, windows, published_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)"
        )

    def mark_and_record(
        self, request_id: str, erasure: UserErasure, requested_at: dt.datetime, new: bool
    ) -> None:
        """Mark the erasure's windows changed (``new``: it found events now) and write its log
        row; a row with nothing to re-publish is done as it is written."""
        if new:  # a fresh changed_at: a mark equal to a published one would count as published
            marked_at = utc_now()
            marks = [(kind, start, marked_at, ERASURE_BATCH_ID) for kind, start in erasure.windows]
            _execute_all(self.session, self.mark, marks)
        pending = new and bool(erasure.windows)
        values = (request_id, erasure.user_id, requested_at, erasure.events_deleted)
        windows = len(erasure.windows)
        published_at = None if pending else requested_at
        self.session.execute(
            self.record, (*values, erasure.quarantine_deleted, windows, published_at)
        )


def erase_users(
    spark: SparkSession,
    config: Config,
    session: Session,
    user_ids: Sequence[str],
    request_id: str,
    now: dt.datetime,
) -> Iterator[UserErasure]:
    """Erase ``user_ids`` in Cassandra (module docstring: the order), one user at a time."""
    statements = _Statements(session, config.cassandra.keyspace)
    add_erased(session, statements.keyspace, user_ids, now)
    quarantined = attributable_quarantine(spark, config, user_ids)
    for user_id in user_ids:
        timestamps = delete_events(session, statements.keyspace, user_id)
        _execute_all(session, statements.delete_message, quarantined[user_id])
        windows = touched_windows(timestamps)
        erasure = UserErasure(user_id, len(timestamps), len(quarantined[user_id]), windows)
        statements.mark_and_record(request_id, erasure, now, new=bool(timestamps))
        yield erasure


def sweep(
    config: Config,
    session: Session,
    erasures: Sequence[UserErasure],
    request_id: str,
    requested_at: dt.datetime,
) -> tuple[list[UserErasure], int]:
    """Look for the users' events again and delete what is found: events a micro-batch already
    in flight when the users were listed stored after the first deletion. The request's
    erasures updated, and how many events this sweep deleted (0: nothing left)."""
    statements = _Statements(session, config.cassandra.keyspace)
    updated, found = [], 0
    for erasure in erasures:
        timestamps = delete_events(session, statements.keyspace, erasure.user_id)
        if timestamps:
            windows = sorted(set(erasure.windows) | set(touched_windows(timestamps)))
            erasure = UserErasure(
                erasure.user_id,
                erasure.events_deleted + len(timestamps),
                erasure.quarantine_deleted,
                windows,
            )
            statements.mark_and_record(request_id, erasure, requested_at, new=True)
            found += len(timestamps)
        updated.append(erasure)
    return updated, found


def unpublished_requests(session: Session, keyspace: str) -> list[tuple[str, str]]:
    """(request_id, user_id) of the erasure_log rows whose windows are not yet re-published."""
    rows = session.execute(
        f"SELECT request_id, user_id, windows, published_at FROM {keyspace}.{ERASURE_LOG_TABLE}"
    )
    return [(r.request_id, r.user_id) for r in rows if r.published_at is None]


def mark_published(
    session: Session, keyspace: str, rows: Sequence[tuple[str, str]], at: dt.datetime
) -> None:
    """Record that the windows of these erasure_log rows are re-published."""
    update = session.prepare(
        f"UPDATE {keyspace}.{ERASURE_LOG_TABLE} SET published_at = ? "
        "WHERE request_id = ? AND user_id = ?"
    )
    _execute_all(session, update, [(at, request_id, user_id) for request_id, user_id in rows])


def _execute_all(session: Session, statement: object, parameters: Sequence[tuple]) -> None:
    if not parameters:
        return
    results = execute_concurrent_with_args(
        session, statement, parameters, concurrency=_CONCURRENCY, raise_on_first_error=True
    )
    assert all(ok for ok, _ in results)
