"""One erasure request from start to end, and the re-publishing of what erasures changed (an
incremental aggregation run inside the erase job).

The erasure marked its windows in ``changed_windows`` like the stream does, so the aggregation's
incremental run recomputes exactly those (and any the stream marked meanwhile) and publishes them
through its atomic path. Erasure rows whose windows are published then get ``published_at``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from cassandra.cluster import Session
from pyspark.sql import SparkSession

from clickstream_spark.aggregate.lease import Lease
from clickstream_spark.aggregate.publish import check_publish_access
from clickstream_spark.aggregate.run import RunSummary, append_run_record, run_requests
from clickstream_spark.config import Config
from clickstream_spark.elastic import es_client
from clickstream_spark.erasure.request import (
    erase_users,
    mark_published,
    sweep,
    unpublished_requests,
)
from clickstream_spark.errors import ErasureError
from clickstream_spark.windows import WINDOW_KINDS, utc_now


def republish(
    spark: SparkSession, config: Config, session: Session, lease: Lease
) -> Iterator[RunSummary]:
    """Publish every window an erasure marked and no run published yet (none: no run at all)."""
    keyspace = config.cassandra.keyspace
    waiting = unpublished_requests(session, keyspace)
    if not waiting:
        return
    es = es_client(config.elasticsearch)
    try:
        check_publish_access(es, config)
        for summary in run_requests(
            spark, es, config, session, lease, [(kind, None) for kind in WINDOW_KINDS]
        ):
            append_run_record(config, summary.record())
            yield summary
    finally:
        es.close()
    mark_published(session, keyspace, waiting, utc_now())


# After publishing, the users' events are looked for again (a micro-batch in flight when they
# were listed may have stored some): at most this many times.
SWEEPS = 3


def erase(
    spark: SparkSession,
    config: Config,
    session: Session,
    lease: Lease,
    user_ids: Sequence[str],
    request_id: str,
) -> Iterator[str]:
    """Erase ``user_ids`` and re-publish; the lines to print (counts only, never a user id).

    An ErasureError says what is done and what a rerun finishes.
    """
    requested_at = utc_now()
    done = list(erase_users(spark, config, session, user_ids, request_id, requested_at))
    found = sum(erasure.found for erasure in done)
    windows = {window for erasure in done for window in erasure.windows}
    yield (
        f"erasure {request_id}: {len(done)} user(s), {found} with stored data, "
        f"{len(done) - found} unknown (nothing stored); deleted "
        f"{sum(e.events_deleted for e in done)} events and "
        f"{sum(e.quarantine_deleted for e in done)} quarantined messages; "
        f"{len(windows)} windows to re-publish"
    )
    try:
        for summary in republish(spark, config, session, lease):
            yield summary.text()
        for _ in range(SWEEPS):
            done, more = sweep(config, session, done, request_id, requested_at)
            if not more:
                break
            yield (
                f"erasure {request_id}: {more} more events, stored by a micro-batch in flight, "
                "deleted; re-publishing their windows"
            )
            for summary in republish(spark, config, session, lease):
                yield summary.text()
        else:
            raise ErasureError(
                f"erasure {request_id}: events of the users still arrive after {SWEEPS} sweeps "
                "(does a stream run without reading the erased users?)"
            )
    except ErasureError:
        raise
    except Exception as exc:
        raise ErasureError(
            f"erasure {request_id}: deleted in Cassandra, but its windows are not re-published "
            "(rerun erase.py, or aggregate.py, to publish them)"
        ) from exc
    yield f"erasure {request_id}: done; recorded in {config.cassandra.keyspace}.erasure_log"
