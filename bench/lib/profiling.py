"""The stream job's per-batch profile, read back from its Spark event log.

``write_batch`` names each Spark job after its step (``<query> batch N: <step>``), so each step's
wall time, task time and CPU are read back without changing the job.
"""

from __future__ import annotations

import collections
import json
import re
import statistics
from pathlib import Path
from typing import Any

import psutil

_JOB_STEP = re.compile(r"batch (\d+): (.*)")

Metrics = dict[str, float]  # wall, task (executor run time), cpu (JVM CPU), tasks


def _no_metrics() -> Metrics:
    return {"wall": 0.0, "task": 0.0, "cpu": 0.0, "tasks": 0}


def _step_name(description: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"\d+", "", description)).strip()


class _EventLog:
    """What the profile needs from an event log's listener events, gathered in one pass."""

    def __init__(self) -> None:
        self.jobs: dict[int, tuple[int, str, float]] = {}  # job id -> (batch, step, submitted ms)
        self.stage_job: dict[int, int] = {}
        self.per_job: dict[int, Metrics] = collections.defaultdict(_no_metrics)
        self.progress: dict[int, Metrics] = {}  # batch id -> durationMs, in seconds

    def add(self, event: dict[str, Any]) -> None:
        kind = event.get("Event", "")
        if kind == "SparkListenerJobStart":
            description = (event.get("Properties") or {}).get("spark.job.description") or ""
            if match := _JOB_STEP.search(description):
                job_id = event["Job ID"]
                self.jobs[job_id] = (int(match[1]), _step_name(match[2]), event["Submission Time"])
                for stage in event.get("Stage IDs", []):
                    self.stage_job[stage] = job_id
        elif kind == "SparkListenerJobEnd" and event["Job ID"] in self.jobs:
            job_id = event["Job ID"]
            self.per_job[job_id]["wall"] = (event["Completion Time"] - self.jobs[job_id][2]) / 1000
        elif kind == "SparkListenerTaskEnd" and event.get("Stage ID") in self.stage_job:
            job = self.per_job[self.stage_job[event["Stage ID"]]]
            metrics = event.get("Task Metrics") or {}
            job["task"] += metrics.get("Executor Run Time", 0) / 1000
            job["cpu"] += metrics.get("Executor CPU Time", 0) / 1e9
            job["tasks"] += 1
        elif kind.endswith("QueryProgressEvent"):
            batch = event.get("progress", {})
            durations = batch.get("durationMs") or {}
            self.progress[batch.get("batchId", -1)] = {k: v / 1000 for k, v in durations.items()}

    def steps(self) -> dict[str, dict[int, Metrics]]:
        """Per step (in the order they ran) and batch, the sums over the step's Spark jobs."""
        steps: dict[str, dict[int, Metrics]] = {}
        for job_id, (batch_id, step, _) in sorted(self.jobs.items()):  # ids follow the steps
            into = steps.setdefault(step, {}).setdefault(batch_id, _no_metrics())
            for key, value in self.per_job[job_id].items():
                into[key] += value
        return steps


def batch_profile(event_log: Path) -> tuple[dict[str, dict[int, Metrics]], dict[int, Metrics]]:
    """Per ``write_batch`` step and batch: wall time and task time of the step's Spark jobs.

    Steps are the jobs' descriptions (``<query> batch N: <step>``, digits dropped), in the order
    they ran. Also each batch's query progress durations (``durationMs``, seconds).
    """
    log = _EventLog()
    with event_log.open(encoding="utf-8") as lines:  # JSON lines (no compression configured)
        for line in lines:
            log.add(json.loads(line))
    return log.steps(), log.progress


def profile_lines(event_log: Path, batches: list[dict[str, Any]]) -> list[str]:
    """The per-batch profile: batch 0 (warm-up) and the median of the full-size later batches."""
    cores = psutil.cpu_count() or 1
    steps, progress = batch_profile(event_log)
    biggest = max(b["rows"] for b in batches[1:]) if len(batches) > 1 else 0
    steady = [b for b in batches[1:] if b["rows"] >= biggest / 2] or batches[:1]
    ids = [b["id"] for b in steady]
    batch_s = statistics.median(b["seconds"] for b in steady)
    out = _header(batches, steady, batch_s, cores)
    out += _step_rows(steps, batches[0], ids, batch_s, cores)
    if progress:
        out.append(_progress_row(progress, batches[0]["id"], ids))
    return out


def _header(
    batches: list[dict[str, Any]], steady: list[dict[str, Any]], batch_s: float, cores: int
) -> list[str]:
    ids = [b["id"] for b in steady]
    rows = statistics.median(b["rows"] for b in steady)
    small = len(batches) - 1 - len(ids) if len(batches) > 1 else 0
    later = (
        f" and the median of batches {','.join(map(str, ids))} ({rows:,.0f} messages, "
        f"write_batch {batch_s:.2f}s)"
        if len(batches) > 1
        else " (the only batch: 'steady' repeats it)"
    )
    return [
        f"per-batch profile from the event log: batch 0 ({batches[0]['rows']:,} messages, "
        f"write_batch {batches[0]['seconds']:.2f}s){later}"
        + (f"; {small} small trailing batch(es) left out" if small else ""),
        f"  util = the step's task time / ({cores} cores x its wall time); "
        "jvm cpu excludes the Python workers",
        f"  {'step':<26}{'batch 0':>8}{'steady':>8}{'share':>7}{'task s':>8}{'jvm cpu':>8}"
        f"{'util':>6}{'tasks':>6}",
    ]


def _step_rows(
    steps: dict[str, dict[int, Metrics]],
    first: dict[str, Any],
    ids: list[int],
    batch_s: float,
    cores: int,
) -> list[str]:
    """One row per step (batch 0, then the median of the steady batches), then the driver's gap."""

    def med(values: dict[int, Metrics], key: str) -> float:
        return statistics.median(values.get(i, {}).get(key, 0.0) for i in ids)

    out = []
    covered0 = covered = 0.0
    for step, per_batch in steps.items():
        wall0 = per_batch.get(first["id"], {}).get("wall", 0.0)
        wall, task = med(per_batch, "wall"), med(per_batch, "task")
        covered0 += wall0
        covered += wall
        util = task / (cores * wall) if wall else 0.0
        out.append(
            f"  {step:<26}{wall0:8.2f}{wall:8.2f}{wall / batch_s:7.0%}{task:8.2f}"
            f"{med(per_batch, 'cpu'):8.2f}{util:6.0%}{med(per_batch, 'tasks'):6.0f}"
        )
    gap0, gap = max(0.0, first["seconds"] - covered0), max(0.0, batch_s - covered)
    out.append(f"  {'(driver, between jobs)':<26}{gap0:8.2f}{gap:8.2f}{gap / batch_s:7.0%}")
    return out


def _progress_row(progress: dict[int, Metrics], first_id: int, ids: list[int]) -> str:
    """The query's own durations per trigger, batch 0 / the median of the steady batches."""
    names = sorted({k for d in progress.values() for k in d} - {"triggerExecution"})
    first = progress.get(first_id, {})
    later = {k: statistics.median(progress.get(i, {}).get(k, 0.0) for i in ids) for k in names}
    trigger = statistics.median(progress.get(i, {}).get("triggerExecution", 0) for i in ids)
    return (
        "  query progress (s per trigger, batch 0 / steady): triggerExecution "
        f"{first.get('triggerExecution', 0):.2f} / {trigger:.2f}"
        " = " + ", ".join(f"{k} {first.get(k, 0):.2f} / {later[k]:.2f}" for k in names)
    )
