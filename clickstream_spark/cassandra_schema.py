"""The CQL of conf/cassandra/, applied to a chosen keyspace.

The files name the keyspace `clickstream` so that they run as they are in cqlsh (and in
docker-compose); the configured keyspace (tests use their own) replaces that name.
"""

from __future__ import annotations

import re
from pathlib import Path

from clickstream_spark.config import PROJECT_ROOT

CQL_DIR = PROJECT_ROOT / "conf" / "cassandra"
FILE_KEYSPACE = "clickstream"
_KEYSPACE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,47}$")
_QUALIFIED = re.compile(rf"\b{FILE_KEYSPACE}\.")
_CREATE_KEYSPACE = re.compile(rf"(KEYSPACE\s+IF\s+NOT\s+EXISTS\s+){FILE_KEYSPACE}\b", re.IGNORECASE)


def cql_scripts(
    keyspace: str = FILE_KEYSPACE, cql_dir: Path = CQL_DIR
) -> list[tuple[Path, list[str]]]:
    """Each ``cql_dir/*.cql`` file, in lexical order, with its statements for ``keyspace``."""
    if not _KEYSPACE_NAME.match(keyspace):
        raise ValueError(f"not a valid Cassandra keyspace name: {keyspace!r}")
    scripts = []
    for path in sorted(cql_dir.glob("*.cql")):
        statements = [
            _CREATE_KEYSPACE.sub(rf"\g<1>{keyspace}", _QUALIFIED.sub(f"{keyspace}.", statement))
            for statement in split_cql(path.read_text(encoding="utf-8"), str(path))
        ]
        scripts.append((path, statements))
    return scripts


def statements(keyspace: str = FILE_KEYSPACE, cql_dir: Path = CQL_DIR) -> list[str]:
    """Every statement of ``cql_dir/*.cql`` in file order, for ``keyspace``."""
    return [statement for _, script in cql_scripts(keyspace, cql_dir) for statement in script]


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
