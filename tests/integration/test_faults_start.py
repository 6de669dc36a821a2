"""The stream refuses to start, with one line, when it could not write what it reads."""

from __future__ import annotations

from cassandra.cluster import Session

from tests.integration.pipeline import Pipeline, stored_count


def test_a_missing_table_stops_the_stream_before_it_reads_kafka(
    pipeline: Pipeline, cassandra: Session
) -> None:
    pipeline.generate("waiting", 200, 5)
    # The table written last: without the check, a whole micro-batch of events and
    # quarantine rows would be written before the job failed on it.
    cassandra.execute(f"DROP TABLE {pipeline.keyspace}.changed_windows", timeout=60)

    code, output = pipeline.attempt("stream", "--available-now")

    errors = [line for line in output.splitlines() if line.startswith("stream.py: error:")]
    assert code == 1, output[-3000:]
    assert len(errors) == 1, output[-3000:]
    table = f"{pipeline.keyspace}.changed_windows"
    assert errors[0].startswith(f"stream.py: error: cannot write to {table} in Cassandra at ")
    assert "conf/cassandra/*.cql" in errors[0]
    assert pipeline.planned_batches() == 0  # no micro-batch was planned: Kafka was not read
    assert stored_count(cassandra, pipeline.keyspace) == 0
