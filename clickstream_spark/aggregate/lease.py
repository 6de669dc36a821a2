"""One aggregation run at a time: a lease in Cassandra, taken with a lightweight transaction.

Two runs at once would race on the alias and each delete the other's unpublished indices. A run
takes the lease before it does anything (``INSERT ... IF NOT EXISTS USING TTL``); a second run is
refused at once with a line naming the holder and when its lease ends. The holder renews it from
a thread while it works and once more, synchronously, before every alias swap, so a run that
lost its lease (paused or cut off for longer than the TTL) publishes nothing more. The TTL frees
the lease of a run that was killed.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from cassandra.cluster import Session

from clickstream_spark.config import Config
from clickstream_spark.cql import cql_session
from clickstream_spark.tables import LEASE_TABLE
from clickstream_spark.windows import utc_now

log = logging.getLogger(__name__)

LEASE_NAME = "aggregate"
# The exit status of a run refused because another one holds the lease: EX_TEMPFAIL of
# sysexits.h, "try again later", so that schedulers can tell it from a failure.
LEASE_HELD_EXIT = 75
_COLUMNS = "run_id, host, pid, since"


class LeaseHeld(RuntimeError):
    """Another run holds the lease: its message is the one line the refused run prints."""


class LeaseError(RuntimeError):
    """The lease could not be taken: Cassandra unreachable, or its table missing."""


class LeaseLost(RuntimeError):
    """This run's lease ended while it worked (expired, or taken over): it must stop publishing."""


@dataclass(frozen=True)
class Holder:
    run_id: str
    host: str
    pid: int
    since: dt.datetime  # naive UTC
    ends_at: dt.datetime  # naive UTC, unless renewed

    def refusal(self) -> str:
        return (
            f"another aggregation run holds the lease: run {self.run_id} (host {self.host}, pid "
            f"{self.pid}, since {self.since:%Y-%m-%d %H:%M:%S} UTC); it ends at "
            f"{self.ends_at:%Y-%m-%d %H:%M:%S} UTC unless that run renews it. Nothing was done"
        )


class Lease:
    """The aggregation lease of ``keyspace`` for the run ``run_id``."""

    def __init__(self, session: Session, keyspace: str, run_id: str, seconds: int) -> None:
        if seconds < 3:
            raise ValueError(f"a lease must last at least 3 seconds, got {seconds}")
        self.session, self.run_id, self.seconds = session, run_id, seconds
        table = f"{keyspace}.{LEASE_TABLE}"
        self._insert = session.prepare(
            f"INSERT INTO {table} (name, {_COLUMNS}) VALUES (?, ?, ?, ?, ?) "
            "IF NOT EXISTS USING TTL ?"
        )
        self._renew = session.prepare(
            f"UPDATE {table} USING TTL ? SET run_id = ?, host = ?, pid = ?, since = ? "
            "WHERE name = ? IF run_id = ?"
        )
        self._delete = session.prepare(f"DELETE FROM {table} WHERE name = ? IF run_id = ?")
        self._holder = session.prepare(
            f"SELECT {_COLUMNS}, TTL(run_id) AS ttl FROM {table} WHERE name = ?"
        )
        self._identity = (run_id, socket.gethostname(), os.getpid(), utc_now())
        self._lost = threading.Event()

    def acquire(self) -> None:
        """Take the lease, or raise :class:`LeaseHeld` naming the run that holds it."""
        for _ in range(3):  # the holder may release it between our insert and our read
            result = self.session.execute(self._insert, (LEASE_NAME, *self._identity, self.seconds))
            if result.was_applied:
                log.info("run %s took the aggregation lease for %d s", self.run_id, self.seconds)
                return
            holder = self.holder()
            if holder is not None:
                raise LeaseHeld(holder.refusal())
        raise LeaseHeld("the aggregation lease is taken by other runs over and over: try again")

    def holder(self) -> Holder | None:
        """The run holding the lease now, if any."""
        row = self.session.execute(self._holder, (LEASE_NAME,)).one()
        if row is None:
            return None
        ends_at = utc_now() + dt.timedelta(seconds=row.ttl or 0)
        return Holder(row.run_id, row.host, row.pid, row.since, ends_at.replace(microsecond=0))

    def renew(self) -> bool:
        """Extend the lease by its full length; False if this run no longer holds it."""
        result = self.session.execute(
            self._renew, (self.seconds, *self._identity, LEASE_NAME, self.run_id)
        )
        return bool(result.was_applied)

    def check(self) -> None:
        """Renew now; raise :class:`LeaseLost` unless this run still holds the lease."""
        if self._lost.is_set() or not self.renew():
            self._lost.set()
            raise LeaseLost(
                f"the aggregation lease of run {self.run_id} ended while it worked (held more "
                f"than {self.seconds} s without renewal, or taken over)"
            )

    def release(self) -> None:
        self.session.execute(self._delete, (LEASE_NAME, self.run_id))

    # -- renewing while the run works --------------------------------------------------------

    @contextmanager
    def kept(self) -> Iterator[Lease]:
        """The taken lease renewed from a thread during the block, released after it."""
        stop = threading.Event()
        renewer = threading.Thread(
            target=self._renew_until, args=(stop,), name="aggregate-lease", daemon=True
        )
        renewer.start()
        try:
            yield self
        finally:
            stop.set()
            renewer.join(timeout=60)
            try:
                self.release()
            except Exception as exc:  # its TTL ends it anyway
                log.warning(
                    "could not release the aggregation lease (it ends within %d s): %s",
                    self.seconds,
                    exc,
                )

    def _renew_until(self, stop: threading.Event) -> None:
        while not stop.wait(self.seconds / 3):
            try:
                if not self.renew():
                    self._lost.set()
                    log.error("run %s lost the aggregation lease", self.run_id)
                    return
            except Exception as exc:  # Cassandra away for a moment: the next try may work
                log.warning("could not renew the aggregation lease: %s", exc)


@contextmanager
def open_lease(config: Config, run_id: str) -> Iterator[tuple[Session, Lease]]:
    """A Cassandra session and the aggregation lease held by ``run_id`` for the block."""
    cassandra = config.cassandra
    try:
        session = cql_session(cassandra)
    except Exception as exc:
        raise LeaseError(
            f"cannot take the aggregation lease: no Cassandra node answers at {cassandra.endpoints}"
        ) from exc
    try:
        try:
            lease = Lease(session, cassandra.keyspace, run_id, config.aggregate.lease_seconds)
            lease.acquire()
        except LeaseHeld:
            raise
        except Exception as exc:
            raise LeaseError(
                f"cannot take the aggregation lease in {cassandra.keyspace}.{LEASE_TABLE} at "
                f"{cassandra.endpoints} (its tables come from conf/cassandra/*.cql, which "
                "'make up' applies)"
            ) from exc
        with lease.kept():
            yield session, lease
    finally:
        session.cluster.shutdown()
