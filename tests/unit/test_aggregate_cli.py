"""The aggregation's command line refuses bad dates with a usage error, before it starts Spark."""

from __future__ import annotations

import subprocess
import sys

import pytest

from clickstream_spark.config import PROJECT_ROOT


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--date", "9999-12-31"], "'9999-12-31' is out of range"),
        (["--window", "hour", "--date", "1969-12-31"], "'1969-12-31' is out of range"),
        (["--from", "2026-01-01T00", "--to", "10000-01-01T00"], "is not a UTC hour"),
        (["--date", "2026-01-01", "--to", "2026-01-05"], "--to needs --from"),
        (["--hour", "2026-01-01T05", "--to", "2026-01-01T07"], "--to needs --from"),
    ],
)
def test_bad_dates_are_usage_errors(args: list[str], message: str) -> None:
    done = subprocess.run(
        [sys.executable, "jobs/aggregate.py", *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    last = done.stderr.splitlines()[-1]
    assert last.startswith("aggregate.py: error: ") and message in last, done.stderr
    assert "Traceback" not in done.stderr
