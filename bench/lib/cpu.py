"""Where the machine's CPU goes during a phase, and waiting for a quiet machine before one."""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass

import psutil

from bench.lib.console import say


def listener_pid(port: int) -> int | None:
    """The local process listening on ``port`` (for the servers' CPU use), if any."""
    with contextlib.suppress(psutil.AccessDenied):
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
                return conn.pid
    return None


def cpu_seconds(pid: int | None) -> float:
    if pid is None:
        return 0.0
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.NoSuchProcess:
        return 0.0
    return times.user + times.system


def busy_seconds() -> float:
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


@dataclass
class CpuAccount:
    """Where the machine's CPU went during a phase: the job, Cassandra, Kafka, everything else."""

    cassandra_pid: int | None
    kafka_pid: int | None
    start_busy: float = 0.0
    start_cassandra: float = 0.0
    start_kafka: float = 0.0
    wall_start: float = 0.0

    def begin(self) -> None:
        self.start_busy = busy_seconds()
        self.start_cassandra = cpu_seconds(self.cassandra_pid)
        self.start_kafka = cpu_seconds(self.kafka_pid)
        self.wall_start = time.monotonic()

    def end(self, job_cpu_s: float) -> str:
        wall = time.monotonic() - self.wall_start
        busy = busy_seconds() - self.start_busy
        cassandra = cpu_seconds(self.cassandra_pid) - self.start_cassandra
        kafka = cpu_seconds(self.kafka_pid) - self.start_kafka
        other = max(0.0, busy - job_cpu_s - cassandra - kafka)
        cores = psutil.cpu_count() or 1
        return (
            f"cpu over {wall:.0f}s wall ({cores} cores = {cores * wall:.0f} core-s): job "
            f"{job_cpu_s:.0f}, cassandra {cassandra:.0f}, kafka {kafka:.0f}, other {other:.0f}, "
            f"idle {max(0.0, cores * wall - busy):.0f} core-s"
        )


def wait_settled(pid: int | None, limit_s: float = 60.0, below: float = 0.15) -> float:
    """Wait (at most ``limit_s``) until the server uses < ``below`` of a core over 1 s.

    A write-heavy phase leaves Cassandra flushing and compacting for a while; the next timed phase
    should not pay for it. Returns the seconds waited.
    """
    if pid is None:
        return 0.0
    started = time.monotonic()
    with contextlib.suppress(psutil.NoSuchProcess):
        proc = psutil.Process(pid)
        proc.cpu_percent(None)
        while time.monotonic() - started < limit_s:
            time.sleep(1.0)
            if proc.cpu_percent(None) < below * 100:
                break
    return time.monotonic() - started


def wait_quiet(limit_s: float, below: float) -> None:
    """Wait (at most ``limit_s``) for the 1-minute load average to drop below ``below``."""
    if limit_s <= 0:
        return
    started = time.monotonic()
    load = os.getloadavg()[0]
    while load >= below and time.monotonic() - started < limit_s:
        say(f"  load {load:.2f} >= {below}: waiting for a quieter moment")
        time.sleep(min(30.0, limit_s))
        load = os.getloadavg()[0]
    say(f"  load {load:.2f} after waiting {time.monotonic() - started:.0f}s")
