"""Benchmark: the stream job vs a plain Python consumer vs the sink's ceiling, same events.

    .venv/bin/python bench/ingest.py                       # 1M events (~5 minutes)
    .venv/bin/python bench/ingest.py --events 100000 --plain-events 10000
    .venv/bin/python bench/ingest.py --repeats 3 --wait-quiet 1200   # medians, quiet machine

Puts ``--events`` generated messages (fixed seed, ``--bad-fraction`` bad ones) into the bench's
own Kafka topic (3 partitions), then measures, against the same Cassandra:

stream
    the real job, ``./spark-submit.sh --master local[2] jobs/stream.py --available-now``, on a
    fresh checkpoint, with its own topic, keyspace and event-log folder given through the
    ``CLICKSTREAM_*`` environment variables. The **sustained rate** is the messages of all
    micro-batches (valid + quarantined) divided by the wall time from the start of the first
    micro-batch (its ``batch 0 ... in S s`` log line's arrival time minus S) to the job's
    ``query ... finished`` line. So it holds every batch, the first one's warm-up included, and
    everything between batches (offset log, planning, commits), but not the JVM start-up, Ivy
    resolution, SparkContext and query start, nor the shutdown: those are reported on their own
    lines. Peak memory is the sum of the RSS of the job's JVM and Python processes (driver and
    workers), sampled every 0.2 s (forked Python workers share pages: the sum over-counts).
ceiling
    a Spark batch job (bench/ingest_ceiling.py, through ./spark-submit.sh, so the same
    spark-defaults.conf connector settings) reads the topic, parses it as the stream does,
    caches and counts the table rows, and times only the Cassandra write of the valid events.
plain
    what a user would write instead: a confluent-kafka consumer that classifies each message with
    ``clickstream_spark.ingest.parse.classify`` and inserts it (events or quarantine) with one
    synchronous ``session.execute(prepared, ...)`` per message, over the first
    ``--plain-events`` messages. An extra line reports the same with 64 concurrent
    ``execute_async`` inserts (not used in the ratios).
bare, parse (yardsticks, not in the last line)
    bench/stream_bare.py with the stream's harness: the bare query (parse, valid events to
    Cassandra, nothing else: what the stream would cost without quarantine and bookkeeping) and
    the Kafka read plus parser alone (noop sink). Parser and sink share the cores, so
    ``parse/(parse + ceiling)`` bounds what stream/ceiling can reach on this machine.

Each timed phase writes into a keyspace of its own (``<run>_stream0``, ``<run>_ceiling0``,
``<run>_plain``), created from conf/cassandra/*.cql before it and dropped after it, outside the
timings, so that no phase pays for flushing what an earlier one left in Cassandra's memtables
(with ``--keep`` nothing is dropped, and later phases do pay for it).

The per-batch profile comes from the stream job's own Spark event log: each step of
``write_batch`` is a Spark job whose description names the step, so the time of each step (and
the CPU its tasks used) is read back without changing the job. Each Spark phase also prints
where the machine's CPU went (the job, Cassandra, Kafka, other processes, idle).

Topic, keyspaces, checkpoints and event logs are removed at the end unless ``--keep``. The last
line is ``stream/plain: X.XX stream/ceiling: Y.YY``.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime as dt
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from clickstream_spark.cassandra_schema import statements  # noqa: E402
from clickstream_spark.config import Config, load_config  # noqa: E402
from clickstream_spark.ingest.contract import classify  # noqa: E402
from clickstream_spark.schema import EVENT_BUCKETS  # noqa: E402
from clickstream_spark.tools.generate import generate_messages  # noqa: E402

PERIOD_START = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
PERIOD_END = PERIOD_START + dt.timedelta(days=1)
SAMPLE_S = 0.2
THREAD_SAMPLE_S = 1.0
STREAM_JOB = "jobs/stream.py"
CEILING_SCRIPT = "bench/ingest_ceiling.py"
PHASES = ("stream", "ceiling", "plain", "bare", "parse")
# Yardsticks run with the stream's harness: what the stream would do without write_batch's
# extras (bare), and the Kafka read plus parser alone (parse), for the bound in the report.
YARDSTICKS = {
    "bare": ("bench/stream_bare.py", ()),
    "parse": ("bench/stream_bare.py", ("--sink", "noop")),
}
CEILING_RESULT = "CEILING_RESULT "
ASYNC_CONCURRENCY = 64

_BATCH_LINE = re.compile(
    r"batch (?P<id>\d+): offsets \[(?P<offsets>[^\]]*)\] rows (?P<rows>\d+) valid (?P<valid>\d+) "
    r"quarantined (?P<quarantined>\d+) windows (?P<windows>\d+) in (?P<seconds>[\d.]+)s"
)
_IVY_DONE = re.compile(r"\d+ artifacts copied, \d+ already retrieved")
_IVY_RESOLVE = re.compile(r":: resolution report :: resolve (\d+)ms")
_QUERY_STARTED = re.compile(r"query \S+ started")
_QUERY_FINISHED = re.compile(r"query \S+ finished")
_JOB_STEP = re.compile(r"batch (\d+): (.*)")


def say(message: str) -> None:
    print(message, flush=True)


# --- process-tree sampling ---------------------------------------------------------------------


# JVM threads by what they do, from their names (Linux truncates them to 15 characters).
_THREAD_KINDS = (
    ("JIT compilers", re.compile(r"CompilerThre")),
    ("executor tasks", re.compile(r"^Executor task")),
    ("Arrow feeders to Python", re.compile(r"^stdout writer")),
    ("GC", re.compile(r"^(GC Thread|G1 |VM Thread)")),
)
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def thread_cpu(pid: int) -> dict[int, tuple[str, float]]:
    """CPU seconds of each live thread of ``pid``: tid -> (name, seconds), from /proc."""
    threads: dict[int, tuple[str, float]] = {}
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
                name = stat[stat.index("(") + 1 : stat.rindex(")")]
                fields = stat[stat.rindex(")") + 2 :].split()
                threads[int(tid)] = (name, (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS)
    return threads


@dataclass
class TreeSampler:
    """RSS of a process and all its descendants every SAMPLE_S, plus their CPU seconds, and
    every THREAD_SAMPLE_S the CPU of each JVM thread (a thread that ends between two samples
    loses at most that much)."""

    root_pid: int
    peak_rss: int = 0
    peak_jvm: int = 0
    peak_python: int = 0
    cpu_s: dict[int, float] = field(default_factory=dict)  # last seen per pid
    python_pids: set[int] = field(default_factory=set)
    jvm_threads: dict[int, tuple[str, float]] = field(default_factory=dict)  # last seen per tid
    threads_sampled_at: float = 0.0
    loads: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(SAMPLE_S)

    def sample(self) -> None:
        try:
            # A new Process each time: the root execs (bash -> java) and psutil caches names.
            root = psutil.Process(self.root_pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        jvm = python = 0
        for proc in procs:
            try:
                with proc.oneshot():
                    rss = proc.memory_info().rss
                    times = proc.cpu_times()
                    name = proc.name()
            except psutil.NoSuchProcess:
                continue
            self.cpu_s[proc.pid] = times.user + times.system
            # The JVM starts processes (the Python daemon, Hadoop's shell helpers) through vfork'd
            # children that show its whole RSS for an instant: count the largest java only, and
            # only the JVM and Python processes (the bash wrappers are a few MB).
            if name == "java":
                jvm = max(jvm, rss)
                if rss == jvm and time.monotonic() - self.threads_sampled_at >= THREAD_SAMPLE_S:
                    self.threads_sampled_at = time.monotonic()
                    self.jvm_threads.update(thread_cpu(proc.pid))
            elif name.startswith("python"):
                python += rss
                self.python_pids.add(proc.pid)
        total = jvm + python
        if total > self.peak_rss:
            self.peak_rss, self.peak_jvm, self.peak_python = total, jvm, python
        self.loads.append(os.getloadavg()[0])

    def breakdown(self) -> str:
        """The job's CPU by JVM thread kind and in the Python processes, core-seconds."""
        kinds: collections.Counter[str] = collections.Counter()
        for name, seconds in self.jvm_threads.values():
            kind = next((k for k, pattern in _THREAD_KINDS if pattern.search(name)), "other")
            kinds[kind] += seconds
        python = sum(self.cpu_s.get(pid, 0.0) for pid in self.python_pids)
        parts = [f"{k} {kinds[k]:.0f}" for k, _ in _THREAD_KINDS] + [f"other {kinds['other']:.0f}"]
        return f"job's JVM threads: {', '.join(parts)}; Python processes {python:.0f} core-s"


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


# --- set-up and clean-up -----------------------------------------------------------------------


@dataclass
class Bench:
    """The run's resources: one topic, and a fresh keyspace for each timed phase.

    Every phase writes into a keyspace of its own, created just before it and (unless
    ``keep``) dropped right after it, outside the timings: a drop flushes or discards the
    keyspace's memtables, so no phase pays for flushing what an earlier one wrote.
    """

    config: Config
    run: str
    work: Path
    keep: bool
    session: Any = None
    created: list[str] = field(default_factory=list)  # keyspaces not dropped yet
    kept: list[str] = field(default_factory=list)

    @property
    def topic(self) -> str:
        return self.run

    def env(self, keyspace: str, checkpoint: Path) -> dict[str, str]:
        return {
            **os.environ,
            "CLICKSTREAM_KAFKA_TOPIC": self.topic,
            "CLICKSTREAM_CASSANDRA_KEYSPACE": keyspace,
            "CLICKSTREAM_STREAM_CHECKPOINT": str(checkpoint),
            "CLICKSTREAM_SPARK_EVENT_LOG_DIR": str(self.work / "spark-events"),
            "PYTHONUNBUFFERED": "1",
        }

    def connect(self) -> None:
        from cassandra.auth import PlainTextAuthProvider
        from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
        from cassandra.policies import DCAwareRoundRobinPolicy

        c = self.config.cassandra
        auth = PlainTextAuthProvider(c.username, c.password or "") if c.username else None
        profile = ExecutionProfile(
            load_balancing_policy=DCAwareRoundRobinPolicy(local_dc=c.local_dc), request_timeout=120
        )
        cluster = Cluster(
            c.hosts.split(","),
            port=c.port,
            auth_provider=auth,
            execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        )
        self.session = cluster.connect()

    def create_topic(self) -> None:
        from confluent_kafka.admin import AdminClient, NewTopic

        kafka = self.config.kafka
        admin = AdminClient({"bootstrap.servers": kafka.bootstrap_servers})
        topic = NewTopic(self.topic, num_partitions=3, replication_factor=kafka.replication_factor)
        for future in admin.create_topics([topic], operation_timeout=30).values():
            future.result()
        self.work.mkdir(parents=True, exist_ok=True)
        say(f"created topic {self.topic} (3 partitions)")

    def new_keyspace(self, suffix: str) -> str:
        """Create ``<run>_<suffix>`` with the project's tables (conf/cassandra/*.cql)."""
        keyspace = f"{self.run}_{suffix}"
        self.created.append(keyspace)
        for statement in statements(keyspace):
            self.session.execute(statement, timeout=120)
        return keyspace

    def release_keyspace(self, keyspace: str) -> None:
        """Drop a phase's keyspace once it is measured (kept with ``--keep``)."""
        self.created.remove(keyspace)
        if self.keep:
            self.kept.append(keyspace)
            return
        try:
            self.session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=300)
        except Exception as exc:
            say(f"could not drop keyspace {keyspace}: {exc}")

    def close(self) -> None:
        """Remove what is left (everything but the kept keyspaces with ``--keep``)."""
        if self.session is not None:
            for keyspace in list(self.created):
                self.release_keyspace(keyspace)
            self.session.cluster.shutdown()
        if self.keep:
            say(f"kept: topic {self.topic}, keyspaces {', '.join(self.kept)}, {self.work}")
            return
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self.config.kafka.bootstrap_servers})
        for name, future in admin.delete_topics([self.topic], operation_timeout=30).items():
            try:
                future.result()
            except Exception as exc:
                say(f"could not delete topic {name}: {exc}")
        shutil.rmtree(self.work, ignore_errors=True)
        say(f"removed topic {self.topic}, the keyspaces {self.run}_* and {self.work}")


# --- producing ---------------------------------------------------------------------------------


def produce(bench: Bench, events: int, bad_fraction: float, seed: int) -> collections.Counter:
    """Send the generated messages to the bench topic; returns the count of each kind."""
    from confluent_kafka import Producer

    failures: list[str] = []
    producer = Producer(
        {
            "bootstrap.servers": bench.config.kafka.bootstrap_servers,
            "linger.ms": 20,
            "batch.num.messages": 10_000,
            "compression.type": "lz4",
            "queue.buffering.max.messages": 1_000_000,
            "enable.idempotence": True,
            "delivery.report.only.error": True,
            "on_delivery": lambda err, _msg: failures.append(str(err)) if err else None,
        }
    )
    kinds: collections.Counter = collections.Counter()
    started = time.monotonic()
    messages = generate_messages(
        events, start=PERIOD_START, end=PERIOD_END, bad_fraction=bad_fraction, seed=seed
    )
    with tqdm(total=events, unit="ev", unit_scale=True, desc="produce", mininterval=2) as bar:
        for i, message in enumerate(messages, 1):
            while True:
                try:
                    producer.produce(bench.topic, value=message.value, key=message.key)
                    break
                except BufferError:
                    producer.poll(0.05)
            kinds[message.kind] += 1
            if i % 8192 == 0:
                producer.poll(0)
                bar.update(8192)
        bar.update(events % 8192)
    left = producer.flush(120)
    if left or failures:
        raise SystemExit(f"produce: {left} unacknowledged, failures {failures[:3]}")
    elapsed = time.monotonic() - started
    bad = events - kinds["valid"]
    say(f"produced {events} messages ({bad} bad) in {elapsed:.1f}s: {events / elapsed:,.0f}/s")
    return kinds


# --- running Spark jobs through spark-submit.sh ------------------------------------------------


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


def _kill_group(pid: int) -> None:
    """SIGKILL the job's own process group (it was started in a new session): JVM and workers."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, 9)


def run_job(
    args: Sequence[str],
    env: dict[str, str],
    timeout_s: float,
    cpu: CpuAccount,
    echo: Callable[[str], bool],
) -> JobRun:
    """Run ``./spark-submit.sh ARGS``, timestamping each output line as it arrives."""
    command = ["./spark-submit.sh", *args]
    lines: list[tuple[float, str]] = []
    cpu.begin()
    launched = time.monotonic()
    process = subprocess.Popen(
        command,
        cwd=ROOT,
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
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.rstrip("\n")
            lines.append((time.monotonic(), line))
            if echo(line):
                text = line.split(" INFO ", 1)[-1]  # drop the logger's date and level
                say(f"  [{time.monotonic() - launched:6.1f}s] {text[:200]}")
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


def _echo_job_line(line: str) -> bool:
    return bool(
        _BATCH_LINE.search(line)
        or _QUERY_STARTED.search(line)
        or _QUERY_FINISHED.search(line)
        or " ERROR " in line
        or "Traceback" in line
        or "error:" in line
        or "bench.ceiling" in line
    )


# --- the stream --------------------------------------------------------------------------------


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


def run_stream(
    bench: Bench,
    keyspace: str,
    index: str,
    spark_args: list[str],
    job_script: str,
    max_offsets: int | None,
    timeout_s: float,
    cpu: CpuAccount,
    job_args: Sequence[str] = (),
) -> StreamResult:
    checkpoint = bench.work / f"checkpoint-{index}"
    events_dir = bench.work / "spark-events"
    events_dir.mkdir(parents=True, exist_ok=True)
    before = set(events_dir.iterdir())
    args = [*spark_args, job_script, "--available-now", *job_args]
    if max_offsets is not None:
        args += ["--max-offsets-per-trigger", str(max_offsets)]
    job = run_job(args, bench.env(keyspace, checkpoint), timeout_s, cpu, _echo_job_line)
    if job.returncode != 0:
        raise SystemExit(f"stream job exited {job.returncode}:\n{job.tail()}")

    batches = []
    for at, line in job.lines:
        if match := _BATCH_LINE.search(line):
            batch = {k: int(match[k]) for k in ("id", "rows", "valid", "quarantined", "windows")}
            batch["seconds"] = float(match["seconds"])
            batch["ended"] = at
            batches.append(batch)
    started = job.first(_QUERY_STARTED)
    finished = job.first(_QUERY_FINISHED)
    if not batches or started is None or finished is None:
        raise SystemExit(f"stream job output lacks batch/query lines:\n{job.tail()}")
    first_start = batches[0]["ended"] - batches[0]["seconds"]
    ivy = job.first(_IVY_DONE)
    resolve = job.first(_IVY_RESOLVE)
    startup = {
        "spark-submit + Ivy": (ivy[0] if ivy else job.launched) - job.launched,
        "Ivy resolve (its own report)": int(resolve[1][1]) / 1000 if resolve else 0.0,
        "JVM/SparkContext/driver to query started": started[0] - (ivy[0] if ivy else job.launched),
        "query start to first batch start": first_start - started[0],
        "shutdown after the query": job.exited - finished[0],
    }
    after = sorted(set(events_dir.iterdir()) - before)
    profile = profile_lines(after[0], batches) if after else ["profile: no event log found"]
    return StreamResult(
        messages=sum(b["rows"] for b in batches),
        valid=sum(b["valid"] for b in batches),
        quarantined=sum(b["quarantined"] for b in batches),
        batches=batches,
        sustained_s=finished[0] - first_start,
        query_s=finished[0] - started[0],
        batch_s=sum(b["seconds"] for b in batches),
        startup=startup,
        peak_rss=job.sampler.peak_rss,
        peak_jvm=job.sampler.peak_jvm,
        peak_python=job.sampler.peak_python,
        cpu_line=job.cpu_line,
        load=statistics.mean(job.sampler.loads) if job.sampler.loads else os.getloadavg()[0],
        profile=profile,
    )


# --- the per-batch profile, from the stream job's event log --------------------------------------


def _step_name(description: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"\d+", "", description)).strip()


_Metrics = dict[str, float]  # wall, task (executor run time), cpu (JVM CPU), tasks


def batch_profile(event_log: Path) -> tuple[dict[str, dict[int, _Metrics]], dict[int, _Metrics]]:
    """Per ``write_batch`` step and batch: wall time and task time of the step's Spark jobs.

    Steps are the jobs' descriptions (``<query> batch N: <step>``, digits dropped), in the order
    they ran. Also each batch's query progress durations (``durationMs``, seconds).
    """
    jobs: dict[int, tuple[int, str, float]] = {}  # job id -> (batch, step, submitted ms)
    stage_job: dict[int, int] = {}
    per_job: dict[int, _Metrics] = collections.defaultdict(
        lambda: {"wall": 0.0, "task": 0.0, "cpu": 0.0, "tasks": 0}
    )
    progress: dict[int, _Metrics] = {}
    with event_log.open(encoding="utf-8") as lines:  # JSON lines (no compression configured)
        for line in lines:
            event = json.loads(line)
            kind = event.get("Event", "")
            if kind == "SparkListenerJobStart":
                description = (event.get("Properties") or {}).get("spark.job.description") or ""
                if match := _JOB_STEP.search(description):
                    job_id = event["Job ID"]
                    jobs[job_id] = (int(match[1]), _step_name(match[2]), event["Submission Time"])
                    for stage in event.get("Stage IDs", []):
                        stage_job[stage] = job_id
            elif kind == "SparkListenerJobEnd" and event["Job ID"] in jobs:
                job_id = event["Job ID"]
                per_job[job_id]["wall"] = (event["Completion Time"] - jobs[job_id][2]) / 1000
            elif kind == "SparkListenerTaskEnd" and event.get("Stage ID") in stage_job:
                job_id = stage_job[event["Stage ID"]]
                metrics = event.get("Task Metrics") or {}
                per_job[job_id]["task"] += metrics.get("Executor Run Time", 0) / 1000
                per_job[job_id]["cpu"] += metrics.get("Executor CPU Time", 0) / 1e9
                per_job[job_id]["tasks"] += 1
            elif kind.endswith("QueryProgressEvent"):
                batch = event.get("progress", {})
                durations = batch.get("durationMs") or {}
                progress[batch.get("batchId", -1)] = {k: v / 1000 for k, v in durations.items()}
    steps: dict[str, dict[int, _Metrics]] = {}
    for job_id, (batch_id, step, _) in sorted(jobs.items()):  # job ids follow the steps' order
        into = steps.setdefault(step, {}).setdefault(
            batch_id, {"wall": 0.0, "task": 0.0, "cpu": 0.0, "tasks": 0}
        )
        for key, value in per_job[job_id].items():
            into[key] += value
    return steps, progress


def profile_lines(event_log: Path, batches: list[dict[str, Any]]) -> list[str]:
    """The per-batch profile: batch 0 (warm-up) and the median of the full-size later batches."""
    cores = psutil.cpu_count() or 1
    steps, progress = batch_profile(event_log)
    biggest = max(b["rows"] for b in batches[1:]) if len(batches) > 1 else 0
    steady = [b for b in batches[1:] if b["rows"] >= biggest / 2] or batches[:1]
    ids = [b["id"] for b in steady]
    first_s = batches[0]["seconds"]
    batch_s = statistics.median(b["seconds"] for b in steady)
    rows = statistics.median(b["rows"] for b in steady)
    small = len(batches) - 1 - len(ids) if len(batches) > 1 else 0
    later = (
        f" and the median of batches {','.join(map(str, ids))} ({rows:,.0f} messages, "
        f"write_batch {batch_s:.2f}s)"
        if len(batches) > 1
        else " (the only batch: 'steady' repeats it)"
    )
    out = [
        f"per-batch profile from the event log: batch 0 ({batches[0]['rows']:,} messages, "
        f"write_batch {first_s:.2f}s){later}"
        + (f"; {small} small trailing batch(es) left out" if small else ""),
        f"  util = the step's task time / ({cores} cores x its wall time); "
        "jvm cpu excludes the Python workers",
        f"  {'step':<26}{'batch 0':>8}{'steady':>8}{'share':>7}{'task s':>8}{'jvm cpu':>8}"
        f"{'util':>6}{'tasks':>6}",
    ]

    def med(values: dict[int, _Metrics], key: str) -> float:
        return statistics.median(values.get(i, {}).get(key, 0.0) for i in ids)

    covered0 = covered = 0.0
    for step, per_batch in steps.items():
        wall0 = per_batch.get(batches[0]["id"], {}).get("wall", 0.0)
        wall, task = med(per_batch, "wall"), med(per_batch, "task")
        covered0 += wall0
        covered += wall
        util = task / (cores * wall) if wall else 0.0
        out.append(
            f"  {step:<26}{wall0:8.2f}{wall:8.2f}{wall / batch_s:7.0%}{task:8.2f}"
            f"{med(per_batch, 'cpu'):8.2f}{util:6.0%}{med(per_batch, 'tasks'):6.0f}"
        )
    gap0, gap = max(0.0, first_s - covered0), max(0.0, batch_s - covered)
    out.append(f"  {'(driver, between jobs)':<26}{gap0:8.2f}{gap:8.2f}{gap / batch_s:7.0%}")
    if progress:
        names = sorted({k for d in progress.values() for k in d} - {"triggerExecution"})
        first = progress.get(batches[0]["id"], {})
        later = {k: statistics.median(progress.get(i, {}).get(k, 0.0) for i in ids) for k in names}
        out.append(
            "  query progress (s per trigger, batch 0 / steady): triggerExecution "
            f"{first.get('triggerExecution', 0):.2f} / "
            f"{statistics.median(progress.get(i, {}).get('triggerExecution', 0) for i in ids):.2f}"
            " = " + ", ".join(f"{k} {first.get(k, 0):.2f} / {later[k]:.2f}" for k in names)
        )
    return out


# --- the ceiling -------------------------------------------------------------------------------


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
    job = run_job(args, env, timeout_s, cpu, _echo_job_line)
    found = [line for _, line in job.lines if line.startswith(CEILING_RESULT)]
    if job.returncode != 0 or not found:
        raise SystemExit(f"ceiling job exited {job.returncode}:\n{job.tail()}")
    data = json.loads(found[-1][len(CEILING_RESULT) :])
    return CeilingResult(
        rows=data["rows"],
        materialise_s=data["materialise_s"],
        write_s=data["write_s"],
        cache_mem=data["cache_mem_bytes"],
        cache_disk=data["cache_disk_bytes"],
        partitions=data["partitions"],
        cpu_line=job.cpu_line,
        load=statistics.mean(job.sampler.loads) if job.sampler.loads else os.getloadavg()[0],
    )


# --- the plain consumer ------------------------------------------------------------------------

_P1, _P2, _P3 = 0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9
_P4, _P5 = 0x85EBCA77C2B2AE63, 0x27D4EB2F165667C5
_M64 = (1 << 64) - 1


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (64 - r))) & _M64


def _round(acc: int, lane: int) -> int:
    return (_rotl((acc + lane * _P2) & _M64, 31) * _P1) & _M64


def xxhash64(data: bytes, seed: int = 42) -> int:
    """XXH64 (unsigned), as Spark's ``xxhash64`` computes it for a string (seed 42)."""
    n, i = len(data), 0
    if n >= 32:
        v = [(seed + _P1 + _P2) & _M64, (seed + _P2) & _M64, seed, (seed - _P1) & _M64]
        while i + 32 <= n:
            for j in range(4):
                v[j] = _round(v[j], int.from_bytes(data[i + 8 * j : i + 8 * j + 8], "little"))
            i += 32
        h = (_rotl(v[0], 1) + _rotl(v[1], 7) + _rotl(v[2], 12) + _rotl(v[3], 18)) & _M64
        for lane in v:
            h = (((h ^ _round(0, lane)) * _P1) + _P4) & _M64
    else:
        h = (seed + _P5) & _M64
    h = (h + n) & _M64
    while i + 8 <= n:
        h ^= _round(0, int.from_bytes(data[i : i + 8], "little"))
        h = (_rotl(h, 27) * _P1 + _P4) & _M64
        i += 8
    if i + 4 <= n:
        h ^= (int.from_bytes(data[i : i + 4], "little") * _P1) & _M64
        h = (_rotl(h, 23) * _P2 + _P3) & _M64
        i += 4
    while i < n:
        h ^= (data[i] * _P5) & _M64
        h = (_rotl(h, 11) * _P1) & _M64
        i += 1
    h ^= h >> 33
    h = (h * _P2) & _M64
    h ^= h >> 29
    h = (h * _P3) & _M64
    return h ^ (h >> 32)


def bucket(row_key: str) -> int:
    """``pmod(xxhash64(row_key), EVENT_BUCKETS)``: the same bucket the Spark writer picks."""
    return xxhash64(row_key.encode("utf-8")) % EVENT_BUCKETS


_INSERT_EVENT = (
    "INSERT INTO {ks}.events (hour, bucket, row_key, user_id, ts, url, country, city, browser, "
    "os, device) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_QUARANTINE = (
    "INSERT INTO {ks}.quarantine (topic, partition, offset, raw_value, raw_encoding, reason, "
    "kafka_timestamp, ingested_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def _to_statement(message: Any, events: Any, quarantine: Any) -> tuple[Any, tuple]:
    """The prepared statement and values a plain consumer writes for one Kafka message."""
    verdict = classify(message.value())
    if verdict.valid:
        ts = verdict.timestamp.replace(tzinfo=None)  # naive UTC, as the driver wants
        values = (
            ts.replace(minute=0, second=0, microsecond=0),
            bucket(verdict.row_key),
            verdict.row_key,
            verdict.user_id,
            ts,
            verdict.url,
            verdict.country,
            verdict.city,
            verdict.browser,
            verdict.os,
            verdict.device,
        )
        return events, values
    _, kafka_ms = message.timestamp()
    values = (
        message.topic(),
        message.partition(),
        message.offset(),
        verdict.raw_value,
        verdict.raw_encoding,
        verdict.reason,
        dt.datetime.fromtimestamp(kafka_ms / 1000, dt.UTC).replace(tzinfo=None),
        dt.datetime.now(dt.UTC).replace(tzinfo=None),
    )
    return quarantine, values


def _messages(bench: Bench, limit: int, group: str) -> Iterator[Any]:
    """The first ``limit`` messages of the topic, for a new consumer group."""
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": bench.config.kafka.bootstrap_servers,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([bench.topic])
    try:
        seen, idle_since = 0, time.monotonic()
        while seen < limit:
            message = consumer.poll(1.0)
            if message is None:
                if time.monotonic() - idle_since > 60:
                    raise SystemExit(f"plain consumer: nothing more after {seen} messages")
                continue
            if message.error():
                raise SystemExit(f"plain consumer: {message.error()}")
            idle_since = time.monotonic()
            seen += 1
            yield message
    finally:
        consumer.close()


def run_plain(bench: Bench, keyspace: str, limit: int, concurrency: int) -> float:
    """Messages/s of the plain consumer; concurrency 1 is the synchronous one."""
    session = bench.session
    events = session.prepare(_INSERT_EVENT.format(ks=keyspace))
    quarantine = session.prepare(_INSERT_QUARANTINE.format(ks=keyspace))
    group = f"{bench.run}-plain-{concurrency}-{uuid.uuid4().hex[:6]}"
    pending: collections.deque = collections.deque()
    started: float | None = None
    desc = "plain sync" if concurrency == 1 else f"plain async x{concurrency}"
    with tqdm(total=limit, unit="ev", unit_scale=True, desc=desc, mininterval=2) as bar:
        for n, message in enumerate(_messages(bench, limit, group), 1):
            if started is None:
                started = time.perf_counter()  # after connecting and joining the group
            statement, values = _to_statement(message, events, quarantine)
            if concurrency == 1:
                session.execute(statement, values)
            else:
                if len(pending) >= concurrency:
                    pending.popleft().result()
                pending.append(session.execute_async(statement, values))
            if n % 1000 == 0:
                bar.update(1000)
        while pending:
            pending.popleft().result()
        bar.update(limit % 1000)
    assert started is not None
    return limit / (time.perf_counter() - started)


# --- the command -------------------------------------------------------------------------------


def _mb(n: int) -> str:
    return f"{n / 2**20:,.0f} MB"


def _median(values: Sequence[float]) -> float:
    return statistics.median(values)


def _spread(values: Sequence[float]) -> str:
    if len(values) < 2:
        return ""
    return f" (median of {len(values)}: {', '.join(f'{v:,.0f}' for v in values)})"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/ingest.py",
        description=(
            "Stream job (Kafka -> Cassandra, end to end) vs a plain Python consumer vs the "
            "Cassandra sink's ceiling, on the same events and the same Cassandra. Last line: "
            "'stream/plain: X.XX stream/ceiling: Y.YY'."
        ),
    )
    parser.add_argument("--events", type=int, default=1_000_000, help="messages to produce (1M)")
    parser.add_argument(
        "--plain-events",
        type=int,
        default=50_000,
        help="prefix of the topic the plain consumer processes (50000)",
    )
    parser.add_argument(
        "--max-offsets-per-trigger",
        type=int,
        metavar="N",
        help="passed to the stream job (default: the job's own, conf/clickstream.toml)",
    )
    parser.add_argument("--bad-fraction", type=float, default=0.01, help="bad messages (0.01)")
    parser.add_argument("--seed", type=int, default=7, help="generator seed (7)")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each phase; medians (1)")
    parser.add_argument("--master", default="local[2]", help="Spark master (local[2])")
    parser.add_argument(
        "--conf",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra Spark setting for both Spark jobs (stream and ceiling), e.g. to try a "
        "connector setting; repeatable",
    )
    parser.add_argument(
        "--job",
        default=STREAM_JOB,
        help=f"stream entry point to run ({STREAM_JOB}); another one only to measure a variant "
        "of it with the same harness (it must log the same batch lines)",
    )
    parser.add_argument(
        "--phases",
        default=",".join(PHASES),
        help=f"comma-separated subset of {','.join(PHASES)} (all); the last line's ratios need "
        "stream, ceiling and plain; bare and parse are yardsticks for the report",
    )
    parser.add_argument(
        "--no-async", action="store_true", help="skip the extra 64-concurrent plain variant"
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before the timed phases, wait up to this long for the 1-min load to drop",
    )
    parser.add_argument("--quiet-load", type=float, default=1.5, help="the load to wait for")
    parser.add_argument("--timeout", type=float, default=1800, help="per Spark job, s (1800)")
    parser.add_argument("--keep", action="store_true", help="keep topic, keyspaces and files")
    args = parser.parse_args(argv)
    if args.events < 1 or not 1 <= args.plain_events <= args.events:
        parser.error("need 1 <= --plain-events <= --events")
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    args.phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    if not args.phases or set(args.phases) - set(PHASES):
        parser.error(f"--phases: choose from {','.join(PHASES)}")
    if any("=" not in c for c in args.conf):
        parser.error("--conf takes KEY=VALUE")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config = load_config()
    run = f"bench_ingest_{uuid.uuid4().hex[:8]}"
    bench = Bench(config, run, ROOT / ".state" / "bench" / run, args.keep)
    cores = psutil.cpu_count() or 1
    load_start = os.getloadavg()
    say(
        f"bench {run}: {args.events:,} events, plain prefix {args.plain_events:,}, "
        f"bad fraction {args.bad_fraction}, seed {args.seed}, master {args.master}, "
        f"{cores} cores, load {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f}"
    )
    cassandra_pid = listener_pid(config.cassandra.port)
    kafka_pid = listener_pid(int(config.kafka.bootstrap_servers.rsplit(":", 1)[-1]))
    spark_args = ["--master", args.master, "--conf", "spark.ui.enabled=false"]
    for setting in args.conf:
        spark_args += ["--conf", setting]
    streams: list[StreamResult] = []
    ceilings: list[CeilingResult] = []
    plain_rates: list[float] = []
    async_rates: list[float] = []
    yardsticks: dict[str, list[float]] = {}
    try:
        bench.connect()
        bench.create_topic()
        kinds = produce(bench, args.events, args.bad_fraction, args.seed)
        wait_quiet(args.wait_quiet, args.quiet_load)

        # The stream and the yardsticks run with the same harness and the same checks.
        harnessed = [("stream", args.job, ())] if "stream" in args.phases else []
        harnessed += [(p, *YARDSTICKS[p]) for p in YARDSTICKS if p in args.phases]
        for phase, job, job_args in harnessed:
            for i in range(args.repeats):
                keyspace = bench.new_keyspace(f"{phase}{i}")
                waited = wait_settled(cassandra_pid)
                say(
                    f"{phase} run {i + 1}/{args.repeats} into {keyspace} "
                    f"(Cassandra settled after {waited:.0f}s)"
                )
                result = run_stream(
                    bench,
                    keyspace,
                    f"{phase}{i}",
                    spark_args,
                    job,
                    args.max_offsets_per_trigger,
                    args.timeout,
                    CpuAccount(cassandra_pid, kafka_pid),
                    job_args,
                )
                bench.release_keyspace(keyspace)
                if result.messages != args.events:
                    say(f"WARNING: {phase} read {result.messages} messages, not {args.events}")
                if result.valid != kinds["valid"]:
                    say(f"WARNING: {result.valid} valid, the generator made {kinds['valid']}")
                say(
                    f"  {phase}: {result.messages:,} messages in {result.sustained_s:.1f}s = "
                    f"{result.rate:,.0f}/s; {len(result.batches)} batches, load {result.load:.2f}"
                )
                say(f"  {result.cpu_line}")
                if phase == "stream":
                    streams.append(result)
                else:
                    yardsticks.setdefault(phase, []).append(result.rate)

        for i in range(args.repeats if "ceiling" in args.phases else 0):
            keyspace = bench.new_keyspace(f"ceiling{i}")
            waited = wait_settled(cassandra_pid)
            say(
                f"ceiling run {i + 1}/{args.repeats} into {keyspace} "
                f"(Cassandra settled after {waited:.0f}s)"
            )
            cpu = CpuAccount(cassandra_pid, kafka_pid)
            ceilings.append(run_ceiling(bench, keyspace, spark_args, args.timeout, cpu))
            bench.release_keyspace(keyspace)
            say(f"  {ceilings[-1].cpu_line}")

        if "plain" in args.phases:
            keyspace = bench.new_keyspace("plain")
            for i in range(args.repeats):
                waited = wait_settled(cassandra_pid)
                say(
                    f"plain consumer run {i + 1}/{args.repeats} into {keyspace} "
                    f"(Cassandra settled after {waited:.0f}s)"
                )
                plain_rates.append(run_plain(bench, keyspace, args.plain_events, 1))
                if not args.no_async:
                    async_rates.append(
                        run_plain(bench, keyspace, args.plain_events, ASYNC_CONCURRENCY)
                    )
    finally:
        bench.close()
    report(args, streams, ceilings, plain_rates, async_rates, yardsticks, load_start)
    return 0


def report(
    args: argparse.Namespace,
    streams: list[StreamResult],
    ceilings: list[CeilingResult],
    plain_rates: list[float],
    async_rates: list[float],
    yardsticks: dict[str, list[float]],
    load_start: tuple[float, float, float],
) -> None:
    say("")
    say("=" * 100)
    say(
        f"N = {args.events:,} messages, bad fraction {args.bad_fraction}, seed {args.seed}, "
        f"master {args.master}, maxOffsetsPerTrigger "
        f"{args.max_offsets_per_trigger or 'job default'}"
        + (f", extra conf {' '.join(args.conf)}" if args.conf else "")
        + (f", job {args.job}" if args.job != STREAM_JOB else "")
        + f"; load at start {load_start[0]:.2f}"
    )
    stream_rate = ceiling_rate = plain_rate = None
    if streams:
        stream_rate = _median([s.rate for s in streams])
        middle = sorted(streams, key=lambda s: s.rate)[len(streams) // 2]
        say(
            f"stream: {middle.valid:,} valid, {middle.quarantined:,} quarantined, "
            f"{len(middle.batches)} micro-batches; mean 1-min load during the runs "
            f"{_median([s.load for s in streams]):.2f}"
        )
        say("  start-up (not in the rate), s:")
        for name in middle.startup:
            say(f"    {name:<44}{_median([s.startup[name] for s in streams]):7.1f}")
        say(
            f"  sustained rate (first batch start -> query finished): {stream_rate:,.0f} "
            f"messages/s{_spread([s.rate for s in streams])}"
        )
        steady = [r for s in streams if (r := s.steady_rate) is not None]
        from_query_start = _median([s.messages / s.query_s for s in streams])
        say(
            f"  for reference: from query start {from_query_start:,.0f}/s"
            f"; write_batch times only {_median([s.batch_rate for s in streams]):,.0f}/s"
            + (f"; batches after the first {_median(steady):,.0f}/s" if steady else "")
        )
        say(
            f"  peak RSS of the job's process tree: {_mb(_median([s.peak_rss for s in streams]))} "
            f"(at that peak: JVM {_mb(middle.peak_jvm)}, Python {_mb(middle.peak_python)})"
        )
        say(
            "  "
            + "; ".join(
                f"batch {b['id']} {b['rows'] / 1000:,.0f}k in {b['seconds']:.1f}s"
                for b in middle.batches
            )
        )
    if ceilings:
        rates = [c.rows / c.write_s[0] for c in ceilings]
        ceiling_rate = _median(rates)
        ceiling = sorted(ceilings, key=lambda c: c.rows / c.write_s[0])[len(ceilings) // 2]
        say(
            f"ceiling, Spark batch write of {ceiling.rows:,} parsed events: {ceiling_rate:,.0f} "
            f"rows/s{_spread(rates)}; mean 1-min load {_median([c.load for c in ceilings]):.2f}"
        )
        say(
            f"  (its write {ceiling.write_s[0]:.1f}s; parse + cache {ceiling.materialise_s:.1f}s "
            f"not counted; cache {_mb(ceiling.cache_mem)} in memory, "
            f"{_mb(ceiling.cache_disk)} on disk, {ceiling.partitions} partitions)"
        )
    if plain_rates:
        plain_rate = _median(plain_rates)
        say(
            f"plain consumer, one synchronous insert per message, first {args.plain_events:,}: "
            f"{plain_rate:,.0f} messages/s{_spread(plain_rates)}"
        )
    if async_rates:
        say(
            f"  extra: {ASYNC_CONCURRENCY} concurrent async inserts: "
            f"{_median(async_rates):,.0f} messages/s{_spread(async_rates)}"
        )
    bare, parse = (_median(yardsticks[p]) if p in yardsticks else None for p in YARDSTICKS)
    if bare:
        say(
            f"yardstick, bare query (parse, valid events to Cassandra; no cache, quarantine or "
            f"windows): {bare:,.0f} messages/s{_spread(yardsticks['bare'])}"
            + (f"; stream/bare {stream_rate / bare:.2f}" if stream_rate else "")
            + (f"; bare/ceiling {bare / ceiling_rate:.2f}" if ceiling_rate else "")
        )
    if parse:
        say(
            f"yardstick, Kafka read and parser alone (noop sink): {parse:,.0f} messages/s"
            f"{_spread(yardsticks['parse'])}"
            + (
                # Parser and sink share the cores: at best 1/(1/parse + 1/ceiling) per second.
                f"; bound for stream/ceiling, parse/(parse + ceiling): "
                f"{parse / (parse + ceiling_rate):.2f}"
                if ceiling_rate
                else ""
            )
        )
    if streams:
        for line in middle.profile:
            say(line)

    def ratio(other: float | None) -> str:
        return f"{stream_rate / other:.2f}" if stream_rate and other else "n/a"

    say(f"stream/plain: {ratio(plain_rate)} stream/ceiling: {ratio(ceiling_rate)}")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
