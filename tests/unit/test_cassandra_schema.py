from __future__ import annotations

import pytest

from clickstream_spark.cassandra_schema import main, split_cql, statements

# --- splitting --------------------------------------------------------------------------------


def test_split_cql_splits_on_semicolons_and_drops_comments() -> None:
    script = """
    -- a keyspace
    CREATE KEYSPACE IF NOT EXISTS k WITH replication = {'class': 'SimpleStrategy'};
    /* a table; with a semicolon in the comment */
    CREATE TABLE IF NOT EXISTS k.t (id int PRIMARY KEY); // trailing
    """
    assert split_cql(script) == [
        "CREATE KEYSPACE IF NOT EXISTS k WITH replication = {'class': 'SimpleStrategy'}",
        "CREATE TABLE IF NOT EXISTS k.t (id int PRIMARY KEY)",
    ]


def test_split_cql_keeps_semicolons_and_comment_marks_inside_strings() -> None:
    script = "INSERT INTO t (a, b) VALUES ('x;--y', 'it''s; fine');\nSELECT $$a;b$$ FROM t"
    assert split_cql(script) == [
        "INSERT INTO t (a, b) VALUES ('x;--y', 'it''s; fine')",
        "SELECT $$a;b$$ FROM t",
    ]


def test_split_cql_reports_an_unclosed_string_with_its_line() -> None:
    with pytest.raises(ValueError, match=r"f.cql:2: ' is never closed"):
        split_cql("SELECT 1;\nSELECT 'oops", "f.cql")


def test_split_cql_of_only_comments_is_empty() -> None:
    assert split_cql("-- nothing\n/* here */\n;;") == []


def test_statements_target_the_chosen_keyspace() -> None:
    result = statements("clickstream_it_x")
    assert result[0].split()[:6] == [
        "CREATE",
        "KEYSPACE",
        "IF",
        "NOT",
        "EXISTS",
        "clickstream_it_x",
    ]
    tables = [s for s in result if s.startswith("CREATE TABLE")]
    assert {s.split()[5] for s in tables} == {
        "clickstream_it_x.events",
        "clickstream_it_x.quarantine",
        "clickstream_it_x.changed_windows",
        "clickstream_it_x.aggregated_windows",
        "clickstream_it_x.aggregate_lease",
        "clickstream_it_x.backfills",
        "clickstream_it_x.ingest_history",
        "clickstream_it_x.erased_users",
        "clickstream_it_x.erasure_log",
    }
    created = ("CREATE TABLE", "CREATE KEYSPACE")
    others = [" ".join(s.split()[:8]) for s in result if not s.startswith(created)]
    assert others == [
        "CREATE CUSTOM INDEX IF NOT EXISTS events_user_id ON",
        "ALTER TABLE clickstream_it_x.ingest_history ADD IF NOT EXISTS erased",
    ]
    assert not any("clickstream." in s for s in result)


def test_statements_refuse_a_bad_keyspace_name() -> None:
    with pytest.raises(ValueError, match="not a valid Cassandra keyspace"):
        statements("x; DROP KEYSPACE clickstream")


def test_the_keyspace_gets_the_replication_asked_for() -> None:
    asked = statements("ks", replication={"eu-west": 3, "us_east": 2})
    assert asked[0] == (
        "CREATE KEYSPACE IF NOT EXISTS ks\n  WITH replication = "
        "{'class': 'NetworkTopologyStrategy', 'eu-west': 3, 'us_east': 2}"
    )
    assert asked[1:] == statements("ks")[1:]  # the tables do not change
    # Without one, the file's own: the local stack's single replica (cqlsh, docker-compose).
    assert statements("ks")[0].endswith("{'class': 'NetworkTopologyStrategy', 'datacenter1': 1}")


def test_the_rendered_cql_follows_the_config(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CLICKSTREAM_CASSANDRA_KEYSPACE", "prod")
    monkeypatch.setenv("CLICKSTREAM_CASSANDRA_REPLICATION", "dc1:3,dc2:3")
    assert main([]) == 0
    cql = capsys.readouterr().out
    assert cql.startswith(
        "CREATE KEYSPACE IF NOT EXISTS prod\n  WITH replication = "
        "{'class': 'NetworkTopologyStrategy', 'dc1': 3, 'dc2': 3};\n"
    )
    assert cql.count(";\n") == len(statements("prod"))
