"""Running a Spark job through ./spark-submit.sh, with its output lines timed as they arrive."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bench.lib.console import say
from bench.lib.cpu import CpuAccount
from bench.lib.sampling import TreeSampler
from clickstream_spark.config import PROJECT_ROOT

BATCH_LINE = re.compile(
    r"batch (?P<id>\d+): offsets \[(?P<offsets>[^\]]*)\] rows (?P<rows>\d+) valid (?P<valid>\d+) "
    r"quarantined (?P<quarantined>\d+) erased (?P<erased>\d+) windows (?P<windows>\d+) "
    r"in (?P<seconds>[\d.]+)s"
)
QUERY_STARTED = re.compile(r"query \S+ started")
QUERY_FINISHED = re.compile(r"query \S+ finished")


@dataclass
class JobRun:
    """A spark-submit.sh run: its output lines with arrival times, exit code and memory."""

    lines: list[tuple[float, str]]
    launched: float
    exited: float
    returncode: int
    sampler: TreeSampler
    cpu_line: str

    def first(self, pattern: re.Pattern[str]) -> tuple[float, re.Match[str]] | None:
        for at, line in self.lines:
            if match := pattern.search(line):
                return at, match
        return None

    def tail(self, n: int = 40) -> str:
        return "\n".join(line for _, line in self.lines[-n:])


def echo_job_line(line: str) -> bool:
    """Whether a job's output line is shown while it runs: progress and errors."""
    return bool(
        BATCH_LINE.search(line)
        or QUERY_STARTED.search(line)
        or QUERY_FINISHED.search(line)
        or " ERROR " in line
        or "Traceback" in line
        or "error:" in line
        or "bench.ceiling" in line
    )


def _kill_group(pid: int) -> None:
    """SIGKILL the job's own process group (it was started in a new session): JVM and workers."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, 9)


def run_job(
    args: Sequence[str],
    env: dict[str, str],
    timeout_s: float,
    cpu: CpuAccount,
    echo: Callable[[str], bool] = echo_job_line,
) -> JobRun:
    """Run ``./spark-submit.sh ARGS``, timestamping each output line as it arrives."""
    cpu.begin()
    launched = time.monotonic()
    process = subprocess.Popen(
        ["./spark-submit.sh", *args],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        start_new_session=True,
    )
    sampler = TreeSampler(process.pid)
    sampler.start()
    timer = threading.Timer(timeout_s, _kill_group, (process.pid,))
    timer.start()
    try:
        lines = _read_lines(process, launched, echo)
        returncode = process.wait()
    except BaseException:
        _kill_group(process.pid)
        process.wait()
        raise
    finally:
        timer.cancel()
        sampler.stop()
    exited = time.monotonic()
    cpu_line = f"{cpu.end(sum(sampler.cpu_s.values()))}\n  {sampler.breakdown()}"
    return JobRun(lines, launched, exited, returncode, sampler, cpu_line)


def _read_lines(
    process: subprocess.Popen[str], launched: float, echo: Callable[[str], bool]
) -> list[tuple[float, str]]:
    """The process's output lines with their arrival times, echoing those ``echo`` picks."""
    lines: list[tuple[float, str]] = []
    assert process.stdout is not None
    for raw in process.stdout:
        line = raw.rstrip("\n")
        lines.append((time.monotonic(), line))
        if echo(line):
            text = line.split(" INFO ", 1)[-1]  # drop the logger's date and level
            say(f"  [{time.monotonic() - launched:6.1f}s] {text[:200]}")
    return lines
