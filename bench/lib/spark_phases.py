"""The Spark phases of bench/ingest.py: the stream job (or a yardstick) and the sink's ceiling."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.ingest_ceiling import RESULT_PREFIX
from bench.lib.cpu import CpuAccount
from bench.lib.jobs import BATCH_LINE, QUERY_FINISHED, QUERY_STARTED, JobRun, run_job
from bench.lib.profiling import profile_lines
from bench.lib.resources import Bench

STREAM_JOB = "jobs/stream.py"
CEILING_SCRIPT = "bench/ingest_ceiling.py"
# Yardsticks run with the stream's harness: what the stream would do without write_batch's
# extras (bare), and the Kafka read plus parser alone (parse), for the bound in the summary.
YARDSTICKS = {
    "bare": ("bench/stream_bare.py", ()),
    "parse": ("bench/stream_bare.py", ("--sink", "noop")),
}
_IVY_DONE = re.compile(r"\d+ artifacts copied, \d+ already retrieved")
_IVY_RESOLVE = re.compile(r":: resolution report :: resolve (\d+)ms")


@dataclass
class StreamResult:
    messages: int
    valid: int
    quarantined: int
    batches: list[dict[str, Any]]
    sustained_s: float  # first batch start -> query finished
    query_s: float  # query started -> query finished
    batch_s: float  # sum of the batches' own times
    startup: dict[str, float]
    peak_rss: int
    peak_jvm: int
    peak_python: int
    cpu_line: str
    load: float
    profile: list[str]  # lines of the per-batch profile, from the event log

    @property
    def rate(self) -> float:
        return self.messages / self.sustained_s

    @property
    def batch_rate(self) -> float:
        return self.messages / self.batch_s

    @property
    def steady_rate(self) -> float | None:
        """Messages/s of the batches after the first (no worker start-up, JIT warm-up)."""
        later = self.batches[1:]
        if not later:
            return None
        return sum(b["rows"] for b in later) / sum(b["seconds"] for b in later)


@dataclass(frozen=True)
class StreamPhase:
    """One run of a streaming entry point over the bench topic (the job or a yardstick)."""

    name: str  # names the checkpoint: the phase and its repeat
    job_script: str
    job_args: Sequence[str] = ()
    max_offsets: int | None = None


def run_stream(
    bench: Bench,
    keyspace: str,
    phase: StreamPhase,
    spark_args: list[str],
    timeout_s: float,
    cpu: CpuAccount,
) -> StreamResult:
    """Run ``phase`` on a fresh checkpoint, writing into ``keyspace``; time it from its logs."""
    events_dir = bench.work / "spark-events"
    events_dir.mkdir(parents=True, exist_ok=True)
    before = set(events_dir.iterdir())
    args = [*spark_args, phase.job_script, "--available-now", *phase.job_args]
    if phase.max_offsets is not None:
        args += ["--max-offsets-per-trigger", str(phase.max_offsets)]
    env = bench.env(keyspace, bench.work / f"checkpoint-{phase.name}")
    job = run_job(args, env, timeout_s, cpu)
    if job.returncode != 0:
        raise SystemExit(f"stream job exited {job.returncode}:\n{job.tail()}")
    batches = _batches(job)
    started, finished = job.first(QUERY_STARTED), job.first(QUERY_FINISHED)
    if not batches or started is None or finished is None:
        raise SystemExit(f"stream job output lacks batch/query lines:\n{job.tail()}")
    first_start = batches[0]["ended"] - batches[0]["seconds"]
    after = sorted(set(events_dir.iterdir()) - before)
    return StreamResult(
        messages=sum(b["rows"] for b in batches),
        valid=sum(b["valid"] for b in batches),
        quarantined=sum(b["quarantined"] for b in batches),
        batches=batches,
        sustained_s=finished[0] - first_start,
        query_s=finished[0] - started[0],
        batch_s=sum(b["seconds"] for b in batches),
        startup=_startup(job, started[0], first_start, finished[0]),
        peak_rss=job.sampler.peak_rss,
        peak_jvm=job.sampler.peak_jvm,
        peak_python=job.sampler.peak_python,
        cpu_line=job.cpu_line,
        load=job.sampler.mean_load,
        profile=profile_lines(after[0], batches) if after else ["profile: no event log found"],
    )


def _batches(job: JobRun) -> list[dict[str, Any]]:
    """Each micro-batch's log line: its counts, its own seconds and when the line arrived."""
    batches = []
    for at, line in job.lines:
        if match := BATCH_LINE.search(line):
            batch = {k: int(match[k]) for k in ("id", "rows", "valid", "quarantined", "windows")}
            batch["seconds"] = float(match["seconds"])
            batch["ended"] = at
            batches.append(batch)
    return batches


def _startup(job: JobRun, started: float, first_start: float, finished: float) -> dict[str, float]:
    """The seconds spent outside the sustained rate, from launch to exit."""
    ivy = job.first(_IVY_DONE)
    resolve = job.first(_IVY_RESOLVE)
    ivy_done = ivy[0] if ivy else job.launched
    return {
        "spark-submit + Ivy": ivy_done - job.launched,
        "Ivy resolve (its own report)": int(resolve[1][1]) / 1000 if resolve else 0.0,
        "JVM/SparkContext/driver to query started": started - ivy_done,
        "query start to first batch start": first_start - started,
        "shutdown after the query": job.exited - finished,
    }


@dataclass
class CeilingResult:
    rows: int
    materialise_s: float
    write_s: list[float]
    cache_mem: int
    cache_disk: int
    partitions: int
    cpu_line: str
    load: float


def run_ceiling(
    bench: Bench, keyspace: str, spark_args: list[str], timeout_s: float, cpu: CpuAccount
) -> CeilingResult:
    """One Spark app: read, parse and cache the topic, then one timed write into ``keyspace``."""
    args = [*spark_args, CEILING_SCRIPT, "--keyspace", keyspace]
    env = bench.env(keyspace, bench.work / "ceiling-unused")
    job = run_job(args, env, timeout_s, cpu)
    found = [line for _, line in job.lines if line.startswith(RESULT_PREFIX)]
    if job.returncode != 0 or not found:
        raise SystemExit(f"ceiling job exited {job.returncode}:\n{job.tail()}")
    data = json.loads(found[-1][len(RESULT_PREFIX) :])
    return CeilingResult(
        rows=data["rows"],
        materialise_s=data["materialise_s"],
        write_s=data["write_s"],
        cache_mem=data["cache_mem_bytes"],
        cache_disk=data["cache_disk_bytes"],
        partitions=data["partitions"],
        cpu_line=job.cpu_line,
        load=job.sampler.mean_load,
    )
