"""The users erased (``clickstream.erased_users``): added by jobs/erase.py, kept out by the stream.

The list only grows. The stream holds it in the driver and, before each micro-batch, reads just
the rows added since the last one (a slice of one partition ordered by ``erased_at``), so a long
list costs one read at start and then almost nothing per micro-batch.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from cassandra.cluster import Session
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from clickstream_spark.tables import ERASED_USERS_TABLE

SHARD = 0  # the table's one partition
# Each refresh reads again this far before the newest erasure it saw: erase runs take turns (the
# aggregation lease), so this only covers a host clock stepped back between two of them.
REREAD = dt.timedelta(minutes=10)


def add_erased(session: Session, keyspace: str, user_ids: Iterable[str], at: dt.datetime) -> None:
    """Record ``user_ids`` as erased at ``at`` (naive UTC): from the stream's next micro-batch on,
    their events are not stored."""
    insert = session.prepare(
        f"INSERT INTO {keyspace}.{ERASED_USERS_TABLE} (shard, erased_at, user_id) VALUES (?, ?, ?)"
    )
    for user_id in user_ids:
        session.execute(insert, (SHARD, at, user_id))


def message_user(parsed: DataFrame) -> Column:
    """The user a parsed message names: a valid event's ``user_id``; for a bad message, the
    ``user_id`` of its JSON, or of its text when it is not JSON (a plain string value)."""
    text = F.col("raw_value")
    in_text = F.regexp_extract(text, r'"user_id"\s*:\s*"([^"\\]+)"', 1)
    from_raw = F.coalesce(F.get_json_object(text, "$.user_id"), F.when(in_text != "", in_text))
    utf8 = F.col("raw_encoding") == "utf8"
    return F.when(F.col("reason").isNull(), F.col("user_id")).when(utf8, from_raw)


def mark_erased(parsed: DataFrame, erased: DataFrame | None) -> DataFrame:
    """``parsed`` with a boolean column ``erased``: the message is one of an erased user (an
    event, or a bad message that names the user: :func:`message_user`).

    ``erased`` holds one ``user_id`` column (None: nobody is erased, and no join is planned).
    """
    if erased is None:
        return parsed.withColumn("erased", F.lit(False))
    flagged = erased.select(F.col("user_id").alias("_erased_user")).distinct()
    joined = parsed.join(
        F.broadcast(flagged.withColumn("erased", F.lit(True))),
        on=message_user(parsed) == F.col("_erased_user"),
        how="left",
    )
    return joined.select(*parsed.columns, F.coalesce(F.col("erased"), F.lit(False)).alias("erased"))


class ErasedUsers:
    """The stream's copy of the list, refreshed from Cassandra before each micro-batch."""

    def __init__(self, spark: SparkSession, session: Session, keyspace: str) -> None:
        self._spark = spark
        self._session = session
        self._all = session.prepare(
            f"SELECT erased_at, user_id FROM {keyspace}.{ERASED_USERS_TABLE} WHERE shard = ?"
        )
        self._since = session.prepare(
            f"SELECT erased_at, user_id FROM {keyspace}.{ERASED_USERS_TABLE} "
            "WHERE shard = ? AND erased_at >= ?"
        )
        self.users: set[str] = set()
        self._newest: dt.datetime | None = None
        self._frame: DataFrame | None = None

    def refresh(self) -> DataFrame | None:
        """The erased users as a one-column DataFrame (None while there are none), with every
        erasure recorded before this call."""
        if self._newest is None:
            rows = self._session.execute(self._all, (SHARD,))
        else:
            rows = self._session.execute(self._since, (SHARD, self._newest - REREAD))
        added = False
        for row in rows:
            if self._newest is None or row.erased_at > self._newest:
                self._newest = row.erased_at
            if row.user_id not in self.users:
                self.users.add(row.user_id)
                added = True
        if added:  # a local relation: planned with each batch, broadcast to its tasks
            ids = [(user_id,) for user_id in sorted(self.users)]
            self._frame = self._spark.createDataFrame(ids, "user_id string")
        return self._frame
