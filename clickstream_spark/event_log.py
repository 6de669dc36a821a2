"""Reading back the event logs the jobs write (History Server format), for tests and benchmarks.

One application's log is a file (``app-…``, JSON lines), or, for the stream, a folder
``eventlog_v2_<app>`` of rolled parts ``events_<n>_<app>[.zstd]`` (see
:func:`clickstream_spark.session.stream_conf`).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

_PART = re.compile(r"events_(\d+)_")


def log_files(path: Path) -> list[Path]:
    """The files of one application's event log, in order."""
    if not path.is_dir():
        return [path]
    parts = [p for p in path.iterdir() if _PART.match(p.name)]
    return sorted(parts, key=lambda p: int(_PART.match(p.name)[1]))  # type: ignore[index]


def log_lines(path: Path) -> Iterator[str]:
    """Every JSON line of one application's event log, decompressed (zstd: needs ``zstandard``,
    a development dependency)."""
    for file in log_files(path):
        with file.open("rb") as raw:
            if file.suffix == ".zstd":
                import zstandard

                stream = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
                yield from io.TextIOWrapper(stream, encoding="utf-8")
            else:
                yield from io.TextIOWrapper(raw, encoding="utf-8")
