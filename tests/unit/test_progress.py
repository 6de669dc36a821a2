from __future__ import annotations

import pytest

from clickstream_spark.aggregate.progress import Progress, duration, progress_line


def test_progress_counts_earlier_runs_in_done_but_not_in_the_rate() -> None:
    progress = Progress("hour", total=8760, done=720, started=100.0)
    assert progress.advance(24, now=160.0) == (
        "hour windows: 744/8760 done (8.5%), 24.0 windows/min, about 5 h 34 min left"
    )
    assert progress.advance(8016, now=220.0) == (
        "hour windows: 8760/8760 done (100.0%), 4020.0 windows/min"
    )


def test_progress_line_without_a_rate_yet_or_near_the_end() -> None:
    assert progress_line("day", 0, 31, None) == "day windows: 0/31 done (0.0%)"
    assert progress_line("day", 30, 31, 6.0) == (
        "day windows: 30/31 done (96.8%), 6.0 windows/min, under a minute left"
    )


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(20, "under a minute"), (90, "2 min"), (3569, "59 min"), (3660, "1 h 01 min"),
     (47 * 3600, "47 h 00 min"), (50 * 3600 + 600, "2 d 02 h")],
)  # fmt: skip
def test_duration_is_rough_and_readable(seconds: float, text: str) -> None:
    assert duration(seconds) == text
