"""The CQL of conf/cassandra/, applied to a chosen keyspace with a chosen replication.

The files name the keyspace `clickstream` and give it the local stack's replication so that they
run as they are in cqlsh (and in docker-compose); the configured keyspace (tests use their own)
replaces that name, and ``[cassandra] replication`` the replication map.

    python -m clickstream_spark.cassandra_schema [--config FILE]   # the CQL, for cqlsh
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from clickstream_spark.config import PROJECT_ROOT, ConfigError, load_config

CQL_DIR = PROJECT_ROOT / "conf" / "cassandra"
FILE_KEYSPACE = "clickstream"
_KEYSPACE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,47}$")
_QUALIFIED = re.compile(rf"\b{FILE_KEYSPACE}\.")
_CREATE_KEYSPACE = re.compile(rf"(KEYSPACE\s+IF\s+NOT\s+EXISTS\s+){FILE_KEYSPACE}\b", re.IGNORECASE)
# The replication map of a CREATE KEYSPACE statement (the files' maps hold no nested braces).
_REPLICATION = re.compile(r"(\bWITH\s+replication\s*=\s*)\{[^}]*\}", re.IGNORECASE)


def replication_map(factors: dict[str, int]) -> str:
    """The CQL replication map of NetworkTopologyStrategy with these replicas per data centre."""
    per_dc = "".join(f", '{dc}': {count}" for dc, count in factors.items())
    return f"{{'class': 'NetworkTopologyStrategy'{per_dc}}}"


def cql_scripts(
    keyspace: str = FILE_KEYSPACE,
    cql_dir: Path = CQL_DIR,
    replication: dict[str, int] | None = None,
) -> list[tuple[Path, list[str]]]:
    """Each ``cql_dir/*.cql`` file, in lexical order, with its statements for ``keyspace`` (and
    ``replication``, data centre -> replicas, when given; else the files' own)."""
    if not _KEYSPACE_NAME.match(keyspace):
        raise ValueError(f"not a valid Cassandra keyspace name: {keyspace!r}")
    scripts = []
    for path in sorted(cql_dir.glob("*.cql")):
        statements = []
        for statement in split_cql(path.read_text(encoding="utf-8"), str(path)):
            statement = _QUALIFIED.sub(f"{keyspace}.", statement)
            if _CREATE_KEYSPACE.search(statement):
                statement = _CREATE_KEYSPACE.sub(rf"\g<1>{keyspace}", statement)
                if replication is not None:
                    statement = _REPLICATION.sub(
                        lambda m: m[1] + replication_map(replication), statement
                    )
            statements.append(statement)
        scripts.append((path, statements))
    return scripts


def statements(
    keyspace: str = FILE_KEYSPACE,
    cql_dir: Path = CQL_DIR,
    replication: dict[str, int] | None = None,
) -> list[str]:
    """Every statement of ``cql_dir/*.cql`` in file order, for ``keyspace`` (and
    ``replication``)."""
    return [s for _, script in cql_scripts(keyspace, cql_dir, replication) for s in script]


def split_cql(text: str, source: str = "<cql>") -> list[str]:
    """Split a CQL script on ``;`` outside comments, quoted strings and ``$$`` blocks.

    Comments (``--``, ``//``, ``/* */``) are dropped; empty statements are skipped.
    """
    statements: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(text):
        pair = text[i : i + 2]
        if pair in ("--", "//"):
            newline = text.find("\n", i)
            i = len(text) if newline < 0 else newline
        elif pair == "/*":
            i = _end_of(text, i, "/*", "*/", source)
            current.append(" ")
        elif pair == "$$" or text[i] in "'\"":
            delimiter = "$$" if pair == "$$" else text[i]
            end = _end_of(text, i, delimiter, delimiter, source)
            current.append(text[i:end])
            i = end
        elif text[i] == ";":
            statements.append("".join(current))
            current = []
            i += 1
        else:
            current.append(text[i])
            i += 1
    statements.append("".join(current))
    return [statement.strip() for statement in statements if statement.strip()]


def _end_of(text: str, start: int, opening: str, closing: str, source: str) -> int:
    """Index just past the ``closing`` that ends the block opened at ``start``.

    Inside quotes a doubled quote (``''``) is an escaped quote, not the end.
    """
    i = start + len(opening)
    while True:
        end = text.find(closing, i)
        if end < 0:
            line = text.count("\n", 0, start) + 1
            raise ValueError(f"{source}:{line}: {opening} is never closed")
        after = end + len(closing)
        if closing in "'\"" and text.startswith(closing, after):
            i = after + 1
            continue
        return after


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m clickstream_spark.cassandra_schema",
        description="Print the CQL of conf/cassandra/ for the configured keyspace and "
        "replication ([cassandra] keyspace, replication), e.g. for cqlsh -f.",
    )
    parser.add_argument("--config", metavar="FILE", help="config file (as the jobs take it)")
    args = parser.parse_args(argv)
    try:
        cassandra = load_config(args.config).cassandra
        cql = statements(cassandra.keyspace, replication=cassandra.replication_factors)
    except (ConfigError, ValueError) as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    print("\n".join(f"{statement};" for statement in cql))
    return 0


if __name__ == "__main__":
    sys.exit(main())
