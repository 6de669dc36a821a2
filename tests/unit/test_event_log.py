"""Reading back an event log: one file, or the stream's rolled and compressed parts in order."""

from __future__ import annotations

from pathlib import Path

import zstandard

from clickstream_spark.event_log import log_files, log_lines


def test_a_single_file_log_is_read_as_it_is(tmp_path: Path) -> None:
    log = tmp_path / "app-1"
    log.write_text('{"Event":"a"}\n{"Event":"b"}\n')
    assert log_files(log) == [log]
    assert list(log_lines(log)) == ['{"Event":"a"}\n', '{"Event":"b"}\n']


def test_a_rolled_log_is_read_part_by_part_in_order(tmp_path: Path) -> None:
    folder = tmp_path / "eventlog_v2_app-2"
    folder.mkdir()
    (folder / "appstatus_app-2.inprogress").write_text("")
    for n in (10, 2, 1):  # numeric order, not the names' order
        data = f'{{"Event":"part {n}"}}\n'.encode()
        (folder / f"events_{n}_app-2.zstd").write_bytes(zstandard.ZstdCompressor().compress(data))
    assert [p.name for p in log_files(folder)] == [
        "events_1_app-2.zstd",
        "events_2_app-2.zstd",
        "events_10_app-2.zstd",
    ]
    assert [line.strip() for line in log_lines(folder)] == [
        '{"Event":"part 1"}',
        '{"Event":"part 2"}',
        '{"Event":"part 10"}',
    ]
